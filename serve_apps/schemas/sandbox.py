"""Bodies of the twin's simulation routes: the sandbox requests and the simulation what-if.

Each is the core's spec plus what the HTTP edge adds (``environmentId``, ``duration``, limits).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from serve_apps.limits import Limits, check_limit
from serve_apps.schemas.base import EDGE_CONFIG, EdgeModel
from twinloop.errors import InvalidInput
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
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelProfile, PredictorModel

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


class _SandboxEdge(_NamedEnvironment, EdgeModel):
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


class SandboxTestRequest(_SandboxEdge, SandboxTestSpec):
    """``POST /sandbox/test``: one model over Monte Carlo replicates (the seed's body works)."""

    model_config = EDGE_CONFIG


class HeadToHeadRequest(_SandboxEdge, HeadToHeadSpec):
    """``POST /sandbox/compare``: baseline vs challenger on common random numbers."""

    model_config = EDGE_CONFIG


class GridRequest(_SandboxEdge, GridSpec):
    """``POST /sandbox/grid``: parallel universes, scenarios × models."""

    model_config = EDGE_CONFIG

    def check(self, limits: Limits) -> None:
        super().check(limits)
        check_limit("scenarios", len(self.scenarios), limits.max_list)


class AbTestRequest(_SandboxEdge, AbTestSpec):
    """``POST /sandbox/ab-test``: an A/B test with traffic allocation inside the twin."""

    model_config = EDGE_CONFIG


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
