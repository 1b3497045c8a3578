"""Settings of the Failure Analyzer: thresholds, statistics, search limits and sandbox plans.

``FAILURE_THRESHOLD`` (the relative loss that counts as a failure) comes from the project
settings; everything else has a default chosen so that the analysis of a typical test needs no
configuration. Every :class:`~twinloop.analysis.analyzer.FailureAnalysis` carries the settings
that produced it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from twinloop.analysis.localizer.models import LocalizerSettings
from twinloop.config import Settings
from twinloop.contract import FrozenModel
from twinloop.stats.inputs import CompareSettings

SeverityLevel = Literal["none", "low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[SeverityLevel, int] = {
    "none": 0,
    "low": 1,
    "medium": 2,
    "high": 3,
    "critical": 4,
}


class AnalyzerSettings(FrozenModel):
    """How an A/B result is analysed; see docs/analyzer.md for what every number means."""

    failure_threshold: float = Field(
        default=0.1, gt=0.0, lt=1.0, description="FAILURE_THRESHOLD: relative loss = a failure"
    )
    statistics: CompareSettings = Field(
        default_factory=CompareSettings, description="alpha, correction, SRM threshold, …"
    )
    money_thresholds: tuple[float, float, float] = Field(
        default=(1_000.0, 10_000.0, 100_000.0),
        description="money lost per month from which severity is medium, high, critical",
    )
    days_per_month: float = Field(default=30.0, gt=0.0)
    localizer: LocalizerSettings = Field(
        default_factory=lambda: LocalizerSettings(significance=1e-3, max_elements=5)
    )
    max_localized_metrics: int = Field(
        default=8, ge=0, le=50, description="metrics whose segments are searched (key first)"
    )
    novelty_days: float = Field(
        default=3.0, gt=0.0, description="the first days compared with the rest for novelty"
    )
    novelty_alpha: float = Field(default=0.001, gt=0.0, lt=1.0)
    similarity_threshold: float = Field(
        default=0.5, gt=0.0, le=1.0, description="weighted Jaccard from which analyses match"
    )
    max_matches: int = Field(default=5, ge=0, le=100)
    max_root_causes: int = Field(default=10, ge=1, le=100)
    max_hypotheses: int = Field(default=5, ge=1, le=50)
    sandbox_environment: str = Field(
        default="sales", description="domain preset the validation plans run in"
    )
    sandbox_days: float = Field(default=30.0, gt=0.0, le=3650.0)
    sandbox_replicates: int | None = Field(
        default=None, ge=2, description="replicates per plan; None = MONTE_CARLO_RUNS"
    )
    sandbox_seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> AnalyzerSettings:
        low, mid, high = self.money_thresholds
        if not 0 < low < mid < high:
            raise ValueError(f"money_thresholds must be increasing and > 0, got {low, mid, high}")
        return self

    @classmethod
    def from_settings(cls, settings: Settings, **changes: object) -> AnalyzerSettings:
        """Analyzer settings that take ``FAILURE_THRESHOLD`` from the project settings."""
        return cls.model_validate({"failure_threshold": settings.failure_threshold, **changes})


def severity_of_loss(relative_loss: float, threshold: float) -> SeverityLevel:
    """Severity of a relative loss in units of ``FAILURE_THRESHOLD`` (t).

    ``none`` below 0, ``low`` below t, ``medium`` below 2t, ``high`` below 4t, else ``critical``.
    """
    if not relative_loss > 0:
        return "none"
    ratio = relative_loss / threshold
    if ratio < 1:
        return "low"
    if ratio < 2:
        return "medium"
    return "high" if ratio < 4 else "critical"


def severity_of_money(per_month: float, thresholds: tuple[float, float, float]) -> SeverityLevel:
    """Severity of money lost per month against the three thresholds (medium, high, critical)."""
    if not per_month > 0:
        return "none"
    low, mid, high = thresholds
    if per_month < low:
        return "low"
    if per_month < mid:
        return "medium"
    return "high" if per_month < high else "critical"


def worst(*levels: SeverityLevel) -> SeverityLevel:
    """The most severe of ``levels`` (``none`` when empty)."""
    return max(levels, key=SEVERITY_ORDER.__getitem__, default="none")
