"""Sandbox specs: what to run — one model, a head-to-head, a grid, or an A/B test in the twin.

Every spec names its environment (a domain preset such as ``"sales"`` or a full
``BusinessEnvironment``), the simulated days, the root seed and the number of Monte Carlo
replicates (default ``MONTE_CARLO_RUNS``). Field validators check cross-field rules so the error
names the field (``allocation``, ``variants``, ``kpis`` …); limits that depend on the settings
(the replicate cap) and predictors that must be imported are checked by ``plan.py``. A spec is
pure data: the JSON a user writes, posts over HTTP or submits as a Ray job.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, ValidationInfo, field_validator

from twinloop.contract import FrozenModel, invalid_input
from twinloop.errors import InvalidInput
from twinloop.sandbox.indicators import (
    DEFAULT_UNIT_KPIS,
    REPLICATE_KPIS,
    check_replicate_kpis,
    check_unit_kpis,
)
from twinloop.sim.domains import DOMAINS
from twinloop.sim.domains import environment as preset_environment
from twinloop.sim.environment import BusinessEnvironment, Shock
from twinloop.sim.models import MODEL_TYPE_ERRORS, ModelProfile, ModelSpec
from twinloop.sim.spec import AllocationPolicy

Kind = Literal["test", "compare", "grid", "ab_test"]
RatioInterval = Literal["delta", "bootstrap"]
EnvironmentRef = str | BusinessEnvironment


def check_environment(value: EnvironmentRef | None) -> EnvironmentRef | None:
    """A preset name must be a known preset (a validator: raises ValueError naming the choices)."""
    if isinstance(value, str) and value not in DOMAINS:
        raise ValueError(f"unknown environment {value!r}; choose a preset from {list(DOMAINS)}")
    return value


def _unique_names(models: list[ModelSpec]) -> list[ModelSpec]:
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    return models


class EarlyStop(FrozenModel):
    """Add replicates in batches until every primary KPI's interval is narrow enough.

    The check runs after ``replicates`` and then after every ``batch_size`` more, in replicate
    order, so the stopping point does not depend on how many workers ran them.
    """

    relative_half_width: float = Field(
        gt=0.0, lt=1.0, description="Target half-width / |mean| (0.01 = ±1%)."
    )
    max_replicates: int = Field(ge=2, description="Cap on replicates when the target is not met.")
    batch_size: int = Field(default=10, ge=1, le=10_000)


class _Common(FrozenModel):
    environment: EnvironmentRef = Field(
        default="sales", description="A domain preset name or a full BusinessEnvironment."
    )
    customers: int | None = Field(
        default=None, ge=0, le=50_000_000, description="Override of initial_customers."
    )
    step: Literal["day", "hour"] | None = Field(default=None, description="Override of step.")
    days: float = Field(default=30.0, gt=0.0, le=3650.0)
    seed: int = Field(default=0, ge=0, lt=2**63)
    replicates: int | None = Field(
        default=None, ge=2, description="Monte Carlo replicates; None = MONTE_CARLO_RUNS."
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: EnvironmentRef) -> EnvironmentRef:
        check_environment(value)
        return value


class _ReplicateKpis(_Common):
    kpis: list[str] | None = Field(
        default=None, description="Primary KPIs (early stop watches these); None = preset's."
    )

    @field_validator("kpis")
    @classmethod
    def _known_kpis(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_replicate_kpis(value)


class SandboxTestSpec(_ReplicateKpis):
    """Test one model: Monte Carlo replicates, per-KPI means and intervals, optional early stop."""

    kind: Literal["test"] = "test"
    model: ModelSpec = Field(default_factory=ModelProfile)
    early_stop: EarlyStop | None = None
    ratio_interval: RatioInterval = "delta"


class HeadToHeadSpec(_ReplicateKpis):
    """Baseline vs challenger, replicate by replicate on the same seed (common random numbers)."""

    kind: Literal["compare"] = "compare"
    baseline: ModelSpec
    challenger: ModelSpec
    common_random_numbers: bool = Field(
        default=True, description="Same customers and draws for both models in a replicate."
    )
    early_stop: EarlyStop | None = Field(
        default=None, description="Stop when every primary KPI's difference half-width "
        "/ |baseline mean| is below the target.",
    )  # fmt: skip


class Scenario(FrozenModel):
    """One universe of a grid: an environment (default: the grid's) plus scenario shocks."""

    name: str = Field(min_length=1, max_length=128)
    environment: EnvironmentRef | None = None
    customers: int | None = Field(default=None, ge=0, le=50_000_000)
    shocks: list[Shock] = Field(default_factory=list, max_length=64)

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: EnvironmentRef | None) -> EnvironmentRef | None:
        return check_environment(value)


def _default_scenarios() -> list[Scenario]:
    return [Scenario(name="base")]


class GridSpec(_ReplicateKpis):
    """Parallel universes: every scenario × every model, replicates on shared seeds."""

    kind: Literal["grid"] = "grid"
    scenarios: list[Scenario] = Field(default_factory=_default_scenarios, min_length=1)
    models: list[ModelSpec] = Field(min_length=1, max_length=16)
    rank_by: str = Field(default="profit", description="The KPI that ranks the models.")

    @field_validator("scenarios")
    @classmethod
    def _unique_scenarios(cls, value: list[Scenario]) -> list[Scenario]:
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError(f"scenario names must be unique, got {names}")
        if len(value) > 256:
            raise ValueError(f"at most 256 scenarios, got {len(value)}")
        return value

    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: list[ModelSpec]) -> list[ModelSpec]:
        return _unique_names(value)

    @field_validator("rank_by")
    @classmethod
    def _known_rank(cls, value: str) -> str:
        if value not in REPLICATE_KPIS:
            raise ValueError(f"unknown KPI {value!r}; choose from {list(REPLICATE_KPIS)}")
        return value


class AbTestSpec(_Common):
    """An A/B test inside one universe: customers split over variants, tested per KPI."""

    kind: Literal["ab_test"] = "ab_test"
    variants: list[ModelSpec] = Field(min_length=2, max_length=16)
    allocation: list[float] | None = Field(
        default=None, description="Share of customers per variant (sums to 1); None = equal."
    )
    allocation_policy: AllocationPolicy = "fixed"
    control: str | None = Field(default=None, description="Control variant; None = the first.")
    kpis: list[str] = Field(default_factory=lambda: list(DEFAULT_UNIT_KPIS), min_length=1)
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: list[ModelSpec], info: ValidationInfo) -> list[ModelSpec]:
        _unique_names(value)
        expected = _expected_customers(info.data)
        if expected is not None and len(value) > expected:
            raise ValueError(
                f"{len(value)} variants for about {expected:g} customers "
                "(initial plus expected arrivals): need at least one customer per variant"
            )
        return value

    @field_validator("allocation")
    @classmethod
    def _allocation(cls, value: list[float] | None, info: ValidationInfo) -> list[float] | None:
        if value is None:
            return None
        variants = info.data.get("variants")
        if variants is not None and len(value) != len(variants):
            raise ValueError(f"{len(value)} weights for {len(variants)} variants")
        if any(not math.isfinite(w) or w < 0 for w in value):
            raise ValueError(f"weights must be finite and >= 0, got {value}")
        total = sum(value)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"weights must sum to 1, got {value} (sum {total:.6g})")
        return value

    @field_validator("control")
    @classmethod
    def _control(cls, value: str | None, info: ValidationInfo) -> str | None:
        variants = info.data.get("variants")
        if value is not None and variants is not None and value not in [v.name for v in variants]:
            raise ValueError(f"unknown variant {value!r}; have {[v.name for v in variants]}")
        return value

    @field_validator("kpis")
    @classmethod
    def _known_unit_kpis(cls, value: list[str]) -> list[str]:
        return check_unit_kpis(value)

    @property
    def control_name(self) -> str:
        return self.control or self.variants[0].name


def _expected_customers(data: dict[str, Any]) -> float | None:
    """Initial customers plus expected arrivals over the run (None if the env is invalid)."""
    env = data.get("environment")
    if isinstance(env, str):
        env = preset_environment(env) if env in DOMAINS else None
    if not isinstance(env, BusinessEnvironment):
        return None
    initial = data.get("customers")
    initial = env.initial_customers if initial is None else initial
    days = data.get("days", 30.0)
    return float(initial) + env.acquisition.rate_per_day * float(days)


SandboxSpec = Annotated[
    Annotated[SandboxTestSpec, Tag("test")]
    | Annotated[HeadToHeadSpec, Tag("compare")]
    | Annotated[GridSpec, Tag("grid")]
    | Annotated[AbTestSpec, Tag("ab_test")],
    Discriminator(lambda v: v.get("kind", "test") if isinstance(v, dict) else v.kind),
]
SPEC_CLASSES: dict[str, type[_Common]] = {
    "test": SandboxTestSpec,
    "compare": HeadToHeadSpec,
    "grid": GridSpec,
    "ab_test": AbTestSpec,
}


def parse_sandbox_spec(data: object, kind: str | None = None) -> _Common:
    """Validate a dict (parsed JSON) into the spec of its ``kind``; InvalidInput names the field.

    ``kind`` (from a CLI sub-command or a route) must agree with the document's own ``kind``.
    """
    if not isinstance(data, dict):
        raise InvalidInput("spec", f"must be a JSON object, got {type(data).__name__}")
    declared = data.get("kind", kind or "test")
    if declared not in SPEC_CLASSES:
        raise InvalidInput("kind", f"unknown kind {declared!r}; choose from {list(SPEC_CLASSES)}")
    if kind is not None and declared != kind:
        raise InvalidInput("kind", f"the spec is a {declared!r} spec, not {kind!r}")
    document = {**data, "kind": declared}
    try:
        return SPEC_CLASSES[declared].model_validate(document)
    except ValidationError as exc:
        raise invalid_input(exc, document, messages=MODEL_TYPE_ERRORS) from exc
