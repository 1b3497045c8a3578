"""Contracts of anomaly detection: its settings, per-point scores, anomalies and known patterns.

The defaults of ``AnomalySettings`` are one global setting for every series (no per-series
tuning). The score is the mean over 36 settings around the centre (``ensemble``): picking one
setting by cross-validation on seven NAB categories overfit (nested estimate 66.1), averaging
the grid instead scores 71.9 under the same nested protocol (``bench/anomaly_ensemble.py``);
the usual level and cooldown are the ones that protocol picks, and ``threshold`` is the value
the NAB standard profile picks for the ensemble on the development subset
(``docs/anomalies.md``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from twinloop.contract import FrozenModel

AnomalyKind = Literal["spike", "dip", "level_shift", "trend_change", "variance_change"]
ANOMALY_KINDS: tuple[AnomalyKind, ...] = (
    "spike",
    "dip",
    "level_shift",
    "trend_change",
    "variance_change",
)
Channel = Literal["novelty", "context", "none"]
# The θ NAB's standard profile picks on the development subset for the default setting alone
# (``ensemble=False``); the ensemble's own θ is ``AnomalySettings().threshold``.
SINGLE_THRESHOLD = 0.6597
Direction = Literal["up", "down"]


class AnomalySettings(FrozenModel):
    """Knobs of the streaming detector; every length is counted in points (rows), not time."""

    history: int = Field(default=4000, ge=10, description="points the novelty test remembers")
    exclusion: int = Field(
        default=2, ge=0, description="latest points the novelty test does not compare with"
    )
    neighbours: int = Field(
        default=5, ge=1, le=50, description="neighbours that measure local density"
    )
    warmup: int = Field(default=50, ge=2, description="points seen before any score is given")
    learning: int = Field(
        default=1500, ge=1, description="points over which evidence ramps up to full weight"
    )
    cooldown: int = Field(
        default=60, ge=0, description="points after a score in which weaker scores are zeroed"
    )
    usual_quantile: float | None = Field(
        default=0.99,
        gt=0,
        lt=1,
        description="evidence counts only above this quantile of the last usual_window raw "
        "values (what is usually new in this series is not news); None = no such baseline",
    )
    usual_window: int = Field(
        default=1000, ge=50, description="raw values the usual_quantile is taken over"
    )
    score_scale: float = Field(
        default=0.01, gt=0, description="raw evidence that maps to score 0.5 (fraction of range)"
    )
    threshold: float = Field(
        default=0.547097, gt=0, le=1, description="score at or above which a point is anomalous"
    )
    surprise_floor: float | None = Field(
        default=7.0,
        ge=0,
        description="−log10 p below which the context channel stays silent; None = the channel "
        "adds no evidence",
    )
    tail_history: int = Field(
        default=4000, ge=50, description="points of each statistic's tail history"
    )
    level_alpha: float = Field(default=0.05, gt=0, lt=1, description="level smoothing per point")
    seasonal_gamma: float = Field(
        default=0.2, gt=0, le=1, description="seasonal-profile smoothing per visit of a phase"
    )
    seasonal_gain: float = Field(
        default=0.8, gt=0, le=1, description="error ratio a seasonal baseline must beat"
    )
    confirm: int = Field(
        default=48, ge=4, description="points after onset used to classify an anomaly"
    )
    timestamp_order: Literal["strict", "row_order"] = Field(
        default="strict",
        description="'strict' refuses a timestamp earlier than the previous one; 'row_order' "
        "keeps the row order as the truth (NAB files step back at daylight-saving changes)",
    )
    min_similarity: float = Field(
        default=0.5, ge=0, le=1, description="similarity from which a known pattern matches"
    )
    ensemble: bool = Field(
        default=True,
        description="score = the mean score of 36 settings around this one (history and "
        "learning × ½, 1, 2; neighbours × 1, 2; context weight × 1, 2), so no single choice "
        "of those knobs decides; False = this setting alone",
    )


class AnomalyScore(FrozenModel):
    """One point's verdict, computed from this point and the points before it only."""

    index: int = Field(ge=0)
    timestamp: datetime
    value: float
    score: float = Field(ge=0, le=1, description="alert score after the cooldown")
    raw: float = Field(ge=0, description="evidence before the cooldown, in fractions of range")
    is_anomaly: bool
    channel: Channel
    direction: Direction | None = None


class PatternSignature(FrozenModel):
    """The shape of an anomaly window in units of the pre-anomaly noise scale.

    ``peak`` is the largest deviation (signed); ``shift`` the median deviation at the end of
    the window; ``drift`` the change a straight line fitted to the window makes across it;
    ``spread`` the log ratio of the noise after to before; ``duration`` the share of points
    after onset that deviate by more than 3 scales.
    """

    peak: float
    shift: float
    drift: float
    spread: float
    duration: float = Field(ge=0, le=1)


class AnomalyPattern(FrozenModel):
    """A known pattern: a named signature, optionally tied to one kind of anomaly."""

    name: str = Field(min_length=1, max_length=120)
    kind: AnomalyKind | None = None
    signature: PatternSignature
    description: str = ""


class PatternMatch(FrozenModel):
    """The known pattern an anomaly resembles most, and how much (1 = identical signature)."""

    name: str
    similarity: float = Field(ge=0, le=1)


class Anomaly(FrozenModel):
    """A detected anomaly: onset, strength, what kind it is and which known pattern it matches."""

    index: int = Field(ge=0, description="row of the first anomalous point")
    timestamp: datetime
    value: float
    score: float = Field(ge=0, le=1, description="highest score while the anomaly lasted")
    kind: AnomalyKind
    signature: PatternSignature
    pattern: PatternMatch | None = None
    points_seen: int = Field(ge=1, description="points after onset the label is based on")


class AnomalyResult(FrozenModel):
    """A whole series scored: the per-point score stream and the anomalies found in it."""

    settings: AnomalySettings
    n_points: int = Field(ge=1)
    scores: list[float]
    anomalies: list[Anomaly]
    patterns_used: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _scores_cover_series(self) -> AnomalyResult:
        if len(self.scores) != self.n_points:
            raise ValueError(f"{len(self.scores)} scores for {self.n_points} points")
        return self
