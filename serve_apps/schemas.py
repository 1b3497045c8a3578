"""Request and response bodies of the HTTP API: the core's models, with camelCase at the edge.

Top-level request fields accept the seed's camelCase (``baseMetrics``, ``environmentId``) as well
as snake_case; nested objects are the core's own models (``WhatIfSettings``,
``CorrelationSettings``, ``BusinessEnvironment``, …) and keep their snake_case names, so there is
one spelling per concept below the top level. Each request knows its size (``check``) and turns
itself into the core's input (``to_spec``) — the capability deployments do no HTTP parsing.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from serve_apps.limits import Limits, check_limit
from serve_apps.tables import JsonTable
from twinloop.analysis.patterns import Pattern
from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.models import Anomaly, AnomalyPattern, AnomalySettings
from twinloop.replication.calibration.models import CalibrationResult, CalibrationSettings
from twinloop.replication.correlation import CorrelationSettings
from twinloop.replication.synthetic.generate import EdgeCase, SyntheticResult
from twinloop.replication.whatif.analytic import WhatIfSettings, WhatIfSpec
from twinloop.replication.whatif.graph import CausalGraph
from twinloop.replication.whatif.simulated import (
    SimWhatIfSettings,
    SimWhatIfSpec,
    apply_changes,
    check_changes,
)
from twinloop.sandbox.plan import resolve_environment
from twinloop.sandbox.specs import (
    AbTestSpec,
    EnvironmentRef,
    GridSpec,
    HeadToHeadSpec,
    SandboxTestSpec,
    check_environment,
)
from twinloop.sim.domains import DOMAINS
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelProfile, PredictorModel

Domain = Literal["sales", "marketing", "customer_success", "analytics"]
if set(DOMAINS) != set(get_args(Domain)):  # pragma: no cover - a new preset needs a line here
    raise ImportError(f"serve_apps.schemas.Domain is out of step with {DOMAINS}")


class EdgeModel(BaseModel):
    """Base of request bodies: frozen, unknown fields refused, camelCase or snake_case keys."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    def check(self, limits: Limits) -> None:
        """Raise LimitExceeded when the request is bigger than ``limits`` allow."""

    def bounded(self) -> bool:
        """True when the work is small by construction (no table to read or fit), so the
        ingress may answer it itself instead of calling its capability deployment."""
        return False


# --- metrics ----------------------------------------------------------------------------------


class WhatIfRequest(EdgeModel):
    """``POST /metrics/what-if``: the seed's ``baseMetrics`` + ``changes``, optionally a graph and
    a KPI history to fit the edge strengths on."""

    base_metrics: dict[str, float] = Field(
        description='Current value of each metric, e.g. {"conversion": 0.05}.'
    )
    changes: dict[str, float | str] = Field(
        description='Relative change per metric: 0.1, "+10%" or "-20%".'
    )
    graph: CausalGraph | None = Field(default=None, description="Declared causal graph.")
    settings: WhatIfSettings = WhatIfSettings()
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
        return WhatIfSpec(
            base_metrics=self.base_metrics,
            changes=self.changes,
            graph=self.graph,
            settings=self.settings,
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


# --- sandbox ----------------------------------------------------------------------------------


class _NamedEnvironment(BaseModel):
    """The seed's ``environmentId``: a preset or a stored environment, in place of ``environment``.

    The Twin capability resolves the id (:meth:`TwinService.resolve`); a request gives one form.
    """

    environment_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="A preset name or a stored environment's id (GET /environments).",
    )

    def check_one_environment(self) -> None:
        if self.environment_id is not None and "environment" in self.model_fields_set:
            raise InvalidInput("environment_id", "give `environment` or `environmentId`, not both")


def run_customer_days(customers: float, arrivals_per_day: float, days: float) -> float:
    """Customer-days one run simulates, at most: the initial customers plus every arrival, none
    churning (what ``max_customer_days`` and ``inline_customer_days`` are measured in)."""
    return customers * days + arrivals_per_day * days**2 / 2


class _SandboxEdge(_NamedEnvironment):
    """What the HTTP edge adds to a sandbox spec: the seed's ``environmentId`` and ``duration``."""

    duration: float | None = Field(
        default=None, gt=0.0, le=3650.0, description="Days to simulate (the seed's `days`)."
    )

    def check(self, limits: Limits) -> None:
        self.check_one_environment()
        if self.duration is not None and "days" in self.model_fields_set:
            raise InvalidInput("duration", "give `days` or `duration`, not both")
        days = self.duration if self.duration is not None else getattr(self, "days", 0.0)
        check_limit("days", days, limits.max_days)
        replicates = getattr(self, "replicates", None)
        if replicates is not None:
            check_limit("replicates", replicates, limits.max_replicates)
        early_stop = getattr(self, "early_stop", None)
        if early_stop is not None:
            check_limit(
                "early_stop.max_replicates", early_stop.max_replicates, limits.max_replicates
            )
        customers = getattr(self, "customers", None)
        if customers is not None:
            check_limit("customers", customers, limits.max_customers)
        else:  # no override: an inline environment's own size counts
            initial = getattr(getattr(self, "environment", None), "initial_customers", None)
            if isinstance(initial, int | float):
                check_limit("environment.initial_customers", initial, limits.max_customers)

        check_predictors(self, limits.allowed_predictor_modules)

    def bounded(self) -> bool:
        """A simulation is never small by construction (see ``EdgeModel.bounded``)."""
        return False

    def core_fields(self) -> dict[str, Any]:
        """The spec's own fields, as sent (camelCase resolved), without the edge's."""
        data = self.model_dump(exclude={"environment_id", "duration"}, exclude_unset=True)
        if self.duration is not None:
            data["days"] = self.duration
        return data


def check_predictors(value: object, allowed: tuple[str, ...], path: str = "") -> None:
    """Refuse a predictor model whose module is not allowed: importing it runs its code.

    ``{"type": "predictor", "import_path": "os:system", "params": {...}}`` would otherwise be
    remote code execution; the Ray job and the CLI, run by the operator, are not limited.
    """
    if isinstance(value, PredictorModel):
        module = value.import_path.partition(":")[0]
        if not any(module == a or module.startswith(a + ".") for a in allowed):
            raise InvalidInput(
                f"{path}.import_path".lstrip("."),
                (
                    f"module {module!r} is not allowed over HTTP; allowed: {list(allowed)} "
                    "(args.limits.allowed_predictor_modules)"
                ),
            )
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            check_predictors(getattr(value, name), allowed, f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_predictors(item, allowed, f"{path}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_predictors(item, allowed, f"{path}.{key}")


_SANDBOX_CONFIG = ConfigDict(
    frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
)


class SandboxTestRequest(_SandboxEdge, SandboxTestSpec):
    """``POST /sandbox/test``: one model over Monte Carlo replicates (the seed's body works)."""

    model_config = _SANDBOX_CONFIG


class HeadToHeadRequest(_SandboxEdge, HeadToHeadSpec):
    """``POST /sandbox/compare``: baseline vs challenger on common random numbers."""

    model_config = _SANDBOX_CONFIG


class GridRequest(_SandboxEdge, GridSpec):
    """``POST /sandbox/grid``: parallel universes, scenarios × models."""

    model_config = _SANDBOX_CONFIG

    def check(self, limits: Limits) -> None:
        super().check(limits)
        check_limit("scenarios", len(self.scenarios), limits.max_list)


class AbTestRequest(_SandboxEdge, AbTestSpec):
    """``POST /sandbox/ab-test``: an A/B test with traffic allocation inside the twin."""

    model_config = _SANDBOX_CONFIG


SandboxRequest = SandboxTestRequest | HeadToHeadRequest | GridRequest | AbTestRequest


# --- simulation what-if -----------------------------------------------------------------------


class SimWhatIfRequest(_NamedEnvironment, EdgeModel):
    """``POST /metrics/what-if/simulate``: re-run the twin with changed mechanism parameters.

    The environment is named as in the sandbox (a preset, a full ``BusinessEnvironment``, or
    ``environmentId``, with an optional ``customers`` override); ``changes`` and ``settings``
    are those of the core's ``SimWhatIfSpec``. Baseline and changed twins both run
    ``settings.replicates`` times, so the work is twice a sandbox test's.
    """

    environment: EnvironmentRef = Field(
        default="sales", description="A domain preset name or a full BusinessEnvironment."
    )
    customers: int | None = Field(
        default=None, ge=0, le=50_000_000, description="Override of initial_customers."
    )
    model: ModelProfile = Field(
        default_factory=ModelProfile,
        description="The model in the twin; `accuracy`, `latency`, `cost_per_call` scale it.",
    )
    changes: dict[str, float | str] = Field(
        description='Relative change per parameter: 0.1, "+10%" or "-20%" (accuracy, latency, '
        "cost_per_call, conversion, order_value, price, arrivals, interaction, churn, "
        "satisfaction_sensitivity, or their KPI spellings).",
    )
    settings: SimWhatIfSettings = SimWhatIfSettings()

    _known_environment = field_validator("environment")(check_environment)

    def check(self, limits: Limits) -> None:
        """The sandbox's limits (days, replicates, customers, customer-days) and the changes;
        with ``environmentId`` the size is checked again once the environment is resolved."""
        self.check_one_environment()
        check_limit("settings.days", self.settings.days, limits.max_days)
        check_limit("settings.replicates", self.settings.replicates, limits.max_replicates)
        if self.customers is not None:
            check_limit("customers", self.customers, limits.max_customers)
        check_changes(self.changes, self.settings)
        if self.environment_id is None:
            self.check_size(self.to_spec(), limits)

    def to_spec(self, resolved: BusinessEnvironment | None = None) -> SimWhatIfSpec:
        """The core spec; ``resolved`` is the environment behind ``environment_id``."""
        if self.environment_id is not None and resolved is None:
            raise ValueError("to_spec needs the environment behind environment_id")  # a bug
        env = resolve_environment(resolved or self.environment, customers=self.customers, step=None)
        return SimWhatIfSpec(
            environment=env, model=self.model, changes=self.changes, settings=self.settings
        )

    def check_size(self, spec: SimWhatIfSpec, limits: Limits) -> float:
        """Raise LimitExceeded for too many customers or customer-days; return the
        customer-days (baseline and changed twins, every replicate)."""
        field = "customers" if self.customers is not None else "environment.initial_customers"
        check_limit(field, spec.environment.initial_customers, limits.max_customers)
        cfg = spec.settings
        deltas = check_changes(spec.changes, cfg)
        changed, _, _ = apply_changes(spec.environment, spec.model, deltas, cfg.days)
        work = cfg.replicates * sum(
            run_customer_days(e.initial_customers, e.acquisition.rate_per_day, cfg.days)
            for e in (spec.environment, changed)
        )
        check_limit("customer_days", work, limits.max_customer_days)
        return work


# --- failure analyzer -------------------------------------------------------------------------


class AnalyzeRequest(EdgeModel):
    """``POST /analyze-failure``: the seed's ``{experimentId, testResult}``.

    ``testResult`` is an A/B result in any form the analyzer takes (docs/analyzer.md): the
    seed's winner/loser point values, sufficient statistics per variant, a segment breakdown.
    Per-unit data comes as ``rows`` (records or columns); a ``raw.path`` is refused, since the
    server would read its own files on the client's behalf.
    """

    experiment_id: str | None = Field(default=None, description="Default: testResult.experimentId.")
    test_result: dict[str, Any] = Field(description="The A/B result (see docs/analyzer.md).")
    rows: JsonTable | None = Field(default=None, description="Per-unit rows, if any.")
    store: bool = Field(default=True, description="Keep the analysis (GET /analyses/{id}).")

    def check(self, limits: Limits) -> None:
        raw = self.test_result.get("raw", self.test_result.get("rawData"))
        if isinstance(raw, dict) and raw.get("path") is not None:
            raise InvalidInput(
                "testResult.raw.path",
                "the HTTP API reads no server files; send the per-unit rows in `rows`",
            )
        inner = self.test_result.get("experimentId", self.test_result.get("experiment_id"))
        if self.experiment_id is not None and inner is not None and inner != self.experiment_id:
            raise InvalidInput(
                "experimentId",
                f"{self.experiment_id!r} differs from testResult.experimentId {inner!r}",
            )
        if self.experiment_id is None and inner is None:
            raise InvalidInput("experimentId", "missing (here or in testResult)")

    def bounded(self) -> bool:
        return self.rows is None

    def result_data(self) -> dict[str, Any]:
        """The analyzer's input: testResult with the experiment id in it."""
        data = dict(self.test_result)
        if self.experiment_id is not None:
            data.pop("experiment_id", None)
            data["experimentId"] = self.experiment_id
        return data


class PatternList(BaseModel):
    """``GET /patterns``: named failure patterns, most frequent first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patterns: list[Pattern]
    analyses: int = Field(description="Analyses kept in the Store.")


# --- environments -----------------------------------------------------------------------------


class EnvironmentCreate(EdgeModel):
    """``POST /environments``: store an environment, given in full or as a preset with changes."""

    id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Default: generated. Preset names (sales, …) are reserved.",
    )
    environment: BusinessEnvironment | None = None
    preset: Domain | None = Field(default=None, description="Start from a domain preset.")
    changes: dict[str, Any] = Field(
        default_factory=dict, description="Top-level fields replaced in the preset."
    )
    replace: bool = Field(default=False, description="Overwrite an existing id (keeps history).")

    def check(self, limits: Limits) -> None:
        if (self.environment is None) == (self.preset is None):
            raise InvalidInput("preset", "give exactly one of `environment` or `preset`")
        if self.changes and self.preset is None:
            raise InvalidInput("changes", "`changes` apply to a `preset` only")
        if self.environment is not None:
            check_limit(
                "environment.initial_customers",
                self.environment.initial_customers,
                limits.max_customers,
            )
        customers = self.changes.get("initial_customers")
        if isinstance(customers, int | float) and not isinstance(customers, bool):
            check_limit("changes.initial_customers", customers, limits.max_customers)


EnvironmentSource = Literal["preset", "stored", "calibrated"]


class EnvironmentSummary(BaseModel):
    """One environment in the catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    source: EnvironmentSource
    name: str
    domain: str
    decision: str
    primary_kpis: list[str] = Field(default_factory=list)
    initial_customers: int
    version: int | None = None
    updated_at: float | None = None


class EnvironmentDetail(EnvironmentSummary):
    """An environment with its full definition."""

    environment: BusinessEnvironment


class EnvironmentList(BaseModel):
    """Presets first, then stored environments, newest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environments: list[EnvironmentSummary]


# --- runs and health --------------------------------------------------------------------------


class RunAccepted(BaseModel):
    """The 202 answer: where to poll."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    operation: str
    status: Literal["queued"] = "queued"
    location: str
    reason: str = Field(default="", description="Why it runs in the background.")


class Health(BaseModel):
    """``GET /healthz``: the ingress answers; ``deep`` also asks every capability deployment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["ok", "degraded"]
    version: str
    capabilities: dict[str, str] = Field(description="Deployment → 'ok', 'mounted' or an error.")
    routes: list[str]
