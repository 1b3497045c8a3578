"""Simulation what-if: re-run the twin with changed parameters, Monte Carlo with paired intervals.

Where the analytic what-if (``whatif.py``) propagates a change through a causal graph of
metrics, this one changes the *mechanism* (the model's accuracy, the price, the base conversion)
and lets the twin work out every consequence, feedback through satisfaction and churn included.
Baseline and changed runs share their seeds (common random numbers: the same customers arrive
and draw the same random numbers), so the per-seed difference is far less noisy than two
independent runs; the interval is a paired-t interval over the replicates::

    d_j = KPI_j(changed) − KPI_j(baseline),   d̄ ± t_{R−1, (1+level)/2} · s_d / √R

The API mirrors the analytic one: ``changes`` maps a name to a relative change (0.1, "+10%").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal, get_args

import numpy as np
from pydantic import Field
from scipy import stats

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.replication.replicates import (
    Evaluate,
    FloatArray,
    kpi_arrays,
    replicate_seeds,
    run_checked,
    serial_evaluate,
)
from twinloop.replication.whatif.analytic import checked_change
from twinloop.sim.environment import BusinessEnvironment, Shock
from twinloop.sim.kpis import SimulationResult
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec

ChangeName = Literal[
    "accuracy",
    "latency",
    "cost_per_call",
    "conversion",
    "order_value",
    "price",
    "arrivals",
    "interaction",
    "churn",
    "satisfaction_sensitivity",
]
CHANGE_NAMES: tuple[str, ...] = get_args(ChangeName)
# The analytic what-if's and the KPI table's spellings of the same levers.
ALIASES = {
    "model_accuracy": "accuracy",
    "latency_ms": "latency",
    "latency_p50_ms": "latency",
    "latency_p95_ms": "latency",
    "conversion_rate": "conversion",
    "base_conversion": "conversion",
    "average_order_value": "order_value",
    "aov": "order_value",
    "new": "arrivals",
    "traffic": "interaction",
    "interactions": "interaction",
    "churned": "churn",
    "calls_cost": "cost_per_call",
}
TOTALS = ("new", "churned", "interactions", "conversions", "revenue", "cost", "model_calls")
MEANS = ("active", "satisfaction", "model_accuracy", "latency_p50_ms", "latency_p95_ms")
OUTPUT_KPIS = (*TOTALS, *MEANS, "conversion_rate", "profit")


class SimWhatIfSettings(FrozenModel):
    """Run length, Monte Carlo replicates, interval level, seed, and the sane range of changes."""

    days: float = Field(default=30.0, gt=0.0, le=3650.0, description="Simulated days per run.")
    replicates: int = Field(default=20, ge=2, le=10_000, description="Seeded run pairs.")
    level: float = Field(default=0.95, gt=0.5, lt=1.0)
    seed: int = Field(default=0, ge=0, lt=2**63)
    max_change: float = Field(
        default=10.0, gt=0.0, le=1000.0, description="Largest relative change (10 = +1000%)."
    )


class SimWhatIfSpec(FrozenModel):
    """A simulation what-if request: the twin, the model in it, relative changes, settings."""

    environment: BusinessEnvironment
    model: ModelProfile = Field(default_factory=ModelProfile)
    changes: dict[str, float | str]
    settings: SimWhatIfSettings = Field(default_factory=SimWhatIfSettings)


class AppliedChange(FrozenModel):
    """What a change did to the twin: which parameter, from what to what."""

    change: str
    relative: float
    parameter: str
    before: float
    after: float


class SimKpiEffect(FrozenModel):
    """One KPI: baseline and changed means over replicates, and the paired difference."""

    kpi: str
    baseline: float
    changed: float
    relative_change: float | None = Field(description="None when the baseline is 0.")
    difference: float
    difference_low: float
    difference_high: float
    relative_low: float | None = Field(description="difference_low / baseline.")
    relative_high: float | None
    p_value: float = Field(description="Paired t-test of no difference.")


class SimWhatIfResult(FrozenModel):
    """Every KPI's baseline and changed value with the paired interval; seed and settings."""

    seed: int
    settings: SimWhatIfSettings
    changes: dict[str, float]
    applied: list[AppliedChange]
    kpis: list[SimKpiEffect]

    def kpi(self, name: str) -> SimKpiEffect:
        for effect in self.kpis:
            if effect.kpi == name:
                return effect
        raise KeyError(name)


def run_what_if_sim(spec: SimWhatIfSpec, evaluate: Evaluate | None = None) -> SimWhatIfResult:
    return what_if_sim(
        spec.environment, spec.changes, model=spec.model, settings=spec.settings, evaluate=evaluate
    )


def what_if_sim(
    environment: BusinessEnvironment,
    changes: Mapping[str, float | str],
    *,
    model: ModelProfile | None = None,
    settings: SimWhatIfSettings | None = None,
    evaluate: Evaluate | None = None,
) -> SimWhatIfResult:
    """Run baseline and changed twins on the same seeds; report each KPI's paired change."""
    cfg = settings or SimWhatIfSettings()
    base_model = model or ModelProfile()
    deltas = check_changes(changes, cfg)
    env, changed_model, applied = apply_changes(environment, base_model, deltas, cfg.days)
    seeds = replicate_seeds(cfg.seed, cfg.replicates)
    specs = [
        SimulationSpec(environment=e, models=[m], days=cfg.days, seed=s)
        for e, m in ((environment, base_model), (env, changed_model))
        for s in seeds
    ]
    results = run_checked(evaluate or serial_evaluate, specs)
    n = len(seeds)
    base = run_kpis(results[:n])
    new = run_kpis(results[n:])
    t = float(stats.t.ppf((1.0 + cfg.level) / 2.0, n - 1))
    effects = [_effect(k, base[k], new[k], t) for k in OUTPUT_KPIS]
    return SimWhatIfResult(
        seed=cfg.seed, settings=cfg, changes=deltas, applied=applied, kpis=effects
    )


def check_changes(changes: Mapping[str, float | str], cfg: SimWhatIfSettings) -> dict[str, float]:
    """Canonical change names → relative changes; unknown or insane values name the field."""
    if not changes:
        raise InvalidInput("changes", "no changes given")
    out: dict[str, float] = {}
    for raw_name, raw in changes.items():
        field = f"changes.{raw_name}"
        name = ALIASES.get(raw_name, raw_name)
        if name not in CHANGE_NAMES:
            raise InvalidInput(
                field, f"unknown change {raw_name!r}; known: {', '.join(CHANGE_NAMES)}"
            )
        if name in out:
            raise InvalidInput(field, f"{raw_name!r} repeats the change {name!r}")
        out[name] = checked_change(raw, field, name, cfg.max_change)
    return out


# Each change scales these parameters: (section of the environment, or "model"; key; upper
# bound). Segment overrides of the model are scaled with it (_OVERRIDE_KEYS).
_TARGETS: dict[str, tuple[tuple[str, str, float | None], ...]] = {
    "accuracy": (("model", "accuracy", 1.0),),
    "latency": (("model", "latency_p50_ms", None), ("model", "latency_p95_ms", None)),
    "cost_per_call": (("model", "cost_per_call", None),),
    "conversion": (("transaction", "base_conversion", 0.999999),),
    "order_value": (("transaction", "average_order_value", None),),
    "arrivals": (("acquisition", "rate_per_day", None),),
    "interaction": (("", "interaction_probability_per_day", 1.0),),
    "churn": (("churn", "base_hazard_per_day", 4.999999),),
    "satisfaction_sensitivity": (("churn", "satisfaction_sensitivity", None),),
}
_OVERRIDE_KEYS = {"accuracy": ("accuracy",), "latency": ("latency_p50_ms", "latency_p95_ms")}


def apply_changes(
    env: BusinessEnvironment, model: ModelProfile, deltas: Mapping[str, float], days: float
) -> tuple[BusinessEnvironment, ModelProfile, list[AppliedChange]]:
    """The changed twin and model; a change that leaves the parameter's range names its field."""
    data, m = env.model_dump(), model.model_dump()
    applied: list[AppliedChange] = []
    for change, relative in deltas.items():
        if change == "price":
            shock = Shock(kind="price_change", start_day=0.0, end_day=days, magnitude=relative)
            data["shocks"] = [*data["shocks"], shock.model_dump()]
            applied.append(
                AppliedChange(
                    change=change,
                    relative=relative,
                    parameter="shocks.price_change",
                    before=0.0,
                    after=relative,
                )
            )
            continue
        for where, key, upper in _TARGETS[change]:
            holder = m if where == "model" else data[where] if where else data
            path = f"{where}.{key}" if where else key
            applied.append(_scale(change, relative, holder, key, path, upper))
        for segment, override in m["segment_overrides"].items():
            for key in _OVERRIDE_KEYS.get(change, ()):
                if override.get(key) is not None:
                    path = f"model.segment_overrides.{segment}.{key}"
                    upper = 1.0 if key == "accuracy" else None
                    applied.append(_scale(change, relative, override, key, path, upper))
    return BusinessEnvironment.model_validate(data), ModelProfile.model_validate(m), applied


def _scale(
    change: str,
    relative: float,
    holder: dict[str, object],
    key: str,
    path: str,
    upper: float | None,
) -> AppliedChange:
    """Scale ``holder[key]`` by 1 + relative in place; above ``upper`` is bad input."""
    before = float(holder[key])  # type: ignore[arg-type]
    after = before * (1.0 + relative)
    if upper is not None and after > upper:
        raise InvalidInput(
            f"changes.{change}",
            f"{relative:+.0%} takes {path} from {before:g} to {after:g}, above {upper:g}",
        )
    holder[key] = after
    return AppliedChange(
        change=change, relative=relative, parameter=path, before=before, after=after
    )


def run_kpis(results: list[SimulationResult]) -> dict[str, FloatArray]:
    """One value per replicate and KPI: totals of flows, means of levels, ratios of totals."""
    arrays = kpi_arrays(results)
    out = {k: arrays[k].sum(axis=1) for k in TOTALS}
    out.update({k: arrays[k].mean(axis=1) for k in MEANS})
    out["conversion_rate"] = np.divide(
        out["conversions"],
        out["interactions"],
        out=np.zeros_like(out["conversions"]),
        where=out["interactions"] > 0,
    )
    out["profit"] = out["revenue"] - out["cost"]
    return out


def _effect(kpi: str, base: FloatArray, new: FloatArray, t: float) -> SimKpiEffect:
    diff = new - base
    mean_b, mean_n, mean_d = float(base.mean()), float(new.mean()), float(diff.mean())
    half = t * float(diff.std(ddof=1)) / math.sqrt(diff.size)
    if half > 0:
        p = float(2.0 * stats.t.sf(abs(mean_d) / (half / t), diff.size - 1))
    else:
        p = 1.0 if mean_d == 0 else 0.0

    def rel(value: float) -> float | None:
        return value / mean_b if mean_b != 0 else None

    return SimKpiEffect(
        kpi=kpi,
        baseline=mean_b,
        changed=mean_n,
        relative_change=rel(mean_d),
        difference=mean_d,
        difference_low=mean_d - half,
        difference_high=mean_d + half,
        relative_low=rel(mean_d - half),
        relative_high=rel(mean_d + half),
        p_value=p,
    )
