"""Bodies of the metric-replication routes: what-if, correlations, anomalies, calibration,
synthetic data."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serve_apps.limits import Limits, check_limit
from serve_apps.schemas.base import EDGE_CONFIG, EdgeModel
from serve_apps.tables import JsonTable
from twinloop.replication.anomaly.models import Anomaly, AnomalyPattern, AnomalySettings
from twinloop.replication.calibration.models import CalibrationResult, CalibrationSettings
from twinloop.replication.correlation import CorrelationSettings
from twinloop.replication.synthetic.generate import EdgeCase, SyntheticResult
from twinloop.replication.whatif.analytic import WhatIfSpec
from twinloop.replication.whatif.counterfactual import CounterfactualSpec

# --- metrics ----------------------------------------------------------------------------------


class WhatIfRequest(EdgeModel, WhatIfSpec):
    """``POST /metrics/what-if``: the core's ``WhatIfSpec`` (the seed's ``baseMetrics`` +
    ``changes``, optionally a graph) and a KPI history to fit the edge strengths on."""

    model_config = EDGE_CONFIG

    history: JsonTable | None = Field(
        default=None, description="KPI history (records or columns) to fit edge strengths."
    )
    timestamp: str | None = Field(default=None, description="Timestamp column of the history.")

    def check(self, limits: Limits) -> None:
        check_limit("base_metrics", len(self.base_metrics), limits.max_columns)
        if self.graph is not None:
            check_limit("graph.edges", len(self.graph.edges), limits.max_list)

    def bounded(self) -> bool:
        return self.history is None

    def to_spec(self) -> WhatIfSpec:
        """The core spec: the request without the history it is fitted on."""
        return WhatIfSpec(**{name: getattr(self, name) for name in WhatIfSpec.model_fields})


class CounterfactualRequest(EdgeModel, CounterfactualSpec):
    """``POST /metrics/what-if/counterfactual``: the core's ``CounterfactualSpec`` (one unit's
    ``observed`` metrics, the ``setValues`` it would have had, optionally a graph) and the KPI
    history the graph is fitted on (with or without a timestamp column)."""

    model_config = EDGE_CONFIG

    history: JsonTable = Field(description="KPI history (records or columns) to fit the graph.")
    timestamp: str | None = Field(default=None, description="Default: detected, or none.")

    def check(self, limits: Limits) -> None:
        check_limit("observed", len(self.observed), limits.max_columns)
        if self.graph is not None:
            check_limit("graph.edges", len(self.graph.edges), limits.max_list)

    def to_spec(self) -> CounterfactualSpec:
        """The core spec: the request without the history it is fitted on."""
        return CounterfactualSpec(
            **{name: getattr(self, name) for name in CounterfactualSpec.model_fields}
        )


class CorrelationsRequest(EdgeModel):
    """``POST /metrics/correlations``: lagged, de-trended, FDR-corrected correlations."""

    history: JsonTable = Field(description="KPI history: records or columns with a timestamp.")
    settings: CorrelationSettings = CorrelationSettings()
    metrics: list[str] | None = Field(default=None, description="Default: every metric.")
    timestamp: str | None = Field(default=None, description="Default: detected.")
    segment: dict[str, str] = Field(
        default_factory=dict, description="Keep one value per segment column."
    )
    collapse: Literal["sum", "mean"] | None = Field(
        default=None, description="Aggregate over segments instead of selecting one."
    )

    def check(self, limits: Limits) -> None:
        check_limit("settings.max_lag", self.settings.max_lag, limits.max_lag)
        if self.metrics is not None:
            check_limit("metrics", len(self.metrics), limits.max_columns)


class AnomaliesRequest(EdgeModel):
    """``POST /metrics/anomalies``: detect and label anomalies in one KPI series."""

    series: JsonTable = Field(description="Timestamp column and the metric (records or columns).")
    value_column: str | None = Field(default=None, description="Needed when several metrics.")
    timestamp: str | None = Field(default=None, description="Default: detected.")
    settings: AnomalySettings = AnomalySettings()
    patterns: list[AnomalyPattern] = Field(
        default_factory=list, description="Known patterns besides the built-in library."
    )
    use_stored_patterns: bool = Field(
        default=True, description="Also match the patterns kept in the Store."
    )
    learn: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="Save the strongest anomaly as a known pattern of this name.",
    )
    include_scores: bool = Field(default=False, description="Return every point's score too.")

    def check(self, limits: Limits) -> None:
        check_limit("patterns", len(self.patterns), limits.max_list)


class AnomaliesResponse(BaseModel):
    """The anomalies of the series, the patterns matched against, and any pattern learned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value_column: str
    n_points: int
    settings: AnomalySettings
    patterns_used: list[str]
    anomalies: list[Anomaly]
    scores: list[float] | None = None
    learned: AnomalyPattern | None = None


class CalibrateRequest(EdgeModel):
    """``POST /metrics/calibrate``: fit the twin to a daily KPI history (a background run)."""

    history: JsonTable = Field(description="Daily KPIs: timestamp, new, churned, revenue, …")
    timestamp: str | None = Field(default=None, description="Default: detected.")
    settings: CalibrationSettings = CalibrationSettings()
    save: bool = Field(
        default=True, description="Store the calibrated environment (GET /environments/{id})."
    )


class CalibrateResponse(BaseModel):
    """The calibration, and the environment id it was stored under (when saved)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment_id: str | None
    result: CalibrationResult


class SyntheticRequest(EdgeModel):
    """``POST /synthetic``: rows that keep a source table's marginals and rank correlations."""

    source: JsonTable = Field(description="Population or history to imitate.")
    rows: int = Field(ge=1, description="Rows to generate.")
    seed: int = Field(default=0, ge=0, lt=2**63)
    edge_cases: list[EdgeCase | str] = Field(
        default_factory=list,
        description='Edge cases as objects ({"kind": "drift", "magnitude": 0.5}) or '
        'NAME:MAGNITUDE[:COLUMN] text ("surge:3:traffic").',
    )
    keep_missing: bool = True

    def check(self, limits: Limits) -> None:
        check_limit("rows", self.rows, limits.max_rows)
        check_limit("edge_cases", len(self.edge_cases), limits.max_list)


class SyntheticResponse(BaseModel):
    """The generated rows as columns, and what was generated (seed, measurements)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    result: SyntheticResult
    columns: dict[str, list[Any]]
