"""Turning a sandbox spec into runnable pieces, checking everything before anything runs.

The replicate budget is checked against the settings (``MONTE_CARLO_RUNS`` is the default,
``TWINLOOP_MAX_REPLICATES`` the ceiling), environments are resolved from presets, and real
predictors are imported once here, so a bad spec fails with InvalidInput naming the field and
nothing is simulated or stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from twinloop.config import Settings, load_settings
from twinloop.contract import FrozenModel, invalid_input
from twinloop.errors import InvalidInput, LimitExceeded
from twinloop.sandbox.specs import EarlyStop, EnvironmentRef
from twinloop.sim.domains import environment as preset_environment
from twinloop.sim.environment import BusinessEnvironment, Shock
from twinloop.sim.models import ModelSpec, ScoredModel, load_predictor
from twinloop.sim.spec import AllocationPolicy, SimulationSpec


class SettingsUsed(FrozenModel):
    """The settings a result depended on, carried with it."""

    monte_carlo_runs: int
    max_replicates: int


@dataclass(frozen=True)
class Budget:
    """How many replicates run first, how many at most, and how many per early-stop batch."""

    initial: int
    cap: int
    batch: int


def settings_or_default(settings: Settings | None) -> Settings:
    return settings if settings is not None else load_settings()


def settings_used(settings: Settings) -> SettingsUsed:
    return SettingsUsed(
        monte_carlo_runs=settings.monte_carlo_runs, max_replicates=settings.max_replicates
    )


def budget(replicates: int | None, early_stop: EarlyStop | None, settings: Settings) -> Budget:
    """The replicate budget; LimitExceeded names the field that crosses the configured cap."""
    initial = settings.monte_carlo_runs if replicates is None else replicates
    if initial < 2:
        raise InvalidInput("replicates", f"must be >= 2 for an interval, got {initial}")
    if initial > settings.max_replicates:
        raise LimitExceeded("replicates", initial, settings.max_replicates)
    if early_stop is None:
        return Budget(initial, initial, 0)
    cap = early_stop.max_replicates
    if cap > settings.max_replicates:
        raise LimitExceeded("early_stop.max_replicates", cap, settings.max_replicates)
    if cap < initial:
        raise InvalidInput(
            "early_stop.max_replicates", f"{cap} is below the {initial} initial replicates"
        )
    return Budget(initial, cap, early_stop.batch_size)


def resolve_environment(
    ref: EnvironmentRef,
    *,
    customers: int | None,
    step: str | None,
    shocks: Sequence[Shock] = (),
    field: str = "environment",
) -> BusinessEnvironment:
    """A preset name or an environment, with the spec's overrides applied and validated."""
    env = preset_environment(ref) if isinstance(ref, str) else ref
    changes: dict[str, object] = {}
    if customers is not None:
        changes["initial_customers"] = customers
    if step is not None:
        changes["step"] = step
    if shocks:
        changes["shocks"] = [*env.shocks, *shocks]
    if not changes:
        return env
    data = {**env.model_dump(), **changes}
    try:
        return BusinessEnvironment.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data, field=field) from exc


def check_models(
    models: Sequence[tuple[str, ModelSpec]], env: BusinessEnvironment | None = None
) -> None:
    """Build every real predictor once, so a bad one fails before any replicate runs.

    With ``env``, a predictor that declares its input width (an ONNX graph) must take the
    environment's predictor features.
    """
    for field, model in models:
        if isinstance(model, ScoredModel):
            try:
                predictor = load_predictor(model)
                check = getattr(predictor, "check_features", None)
                if env is not None and check is not None:
                    check(env.n_features + len(env.segments), "model")
            except InvalidInput as exc:
                suffix = exc.field.removeprefix("model")
                raise InvalidInput(f"{field}{suffix}", exc.message) from exc


def simulation_spec(
    env: BusinessEnvironment,
    models: Sequence[ModelSpec],
    *,
    days: float,
    allocation: Sequence[float] | None = None,
    policy: AllocationPolicy = "fixed",
    record_units: bool = False,
    field: str = "",
) -> SimulationSpec:
    """The simulator's spec of one universe (its seed is set per replicate).

    ``field`` prefixes errors that concern the combination (a model's segment override that
    the environment lacks), so they name where in the sandbox spec the problem is.
    """
    data = {
        "environment": env,
        "models": list(models),
        "allocation": None if allocation is None else list(allocation),
        "allocation_policy": policy,
        "days": days,
        "record_units": record_units,
    }
    try:
        return SimulationSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data, field=field) from exc
