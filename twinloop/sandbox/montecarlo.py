"""Test one model: Monte Carlo replicates of one universe, per-KPI means and intervals.

Replicate i runs the model in the environment on seed ``SeedSequence(seed).spawn(n)[i]``. Each
KPI gets its mean over replicates and a 95% interval — Student t, or the delta method (or a
percentile bootstrap) for the ratio KPI ``conversion_rate``. With ``early_stop`` the run adds
batches of replicates until every primary KPI's relative half-width is under the target, or
the cap is reached.
"""

from __future__ import annotations

import numpy as np

from twinloop.config import Settings
from twinloop.sandbox.arrow import rows_to_table
from twinloop.sandbox.collect import ArmStats, Collector, run_batches
from twinloop.sandbox.executor import Executor, ProgressCallback, SerialExecutor
from twinloop.sandbox.indicators import (
    RATIO_KPIS,
    REPLICATE_KPIS,
    default_primary,
    direction,
)
from twinloop.sandbox.intervals import bootstrap_ratio, summarize
from twinloop.sandbox.plan import (
    Budget,
    budget,
    check_models,
    resolve_environment,
    settings_or_default,
    settings_used,
    simulation_spec,
)
from twinloop.sandbox.replicate import ReplicateOutcome, ReplicateTask
from twinloop.sandbox.results import KpiSummary, SandboxTestResult
from twinloop.sandbox.seeding import bootstrap_rng, replicate_seed
from twinloop.sandbox.specs import SandboxTestSpec
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.spec import SimulationSpec

TABLE_COLUMNS = ("replicate", "seed", *REPLICATE_KPIS)


def narrow(summary: KpiSummary | float | None, target: float, half_width: float = 0.0) -> bool:
    """Whether a relative half-width meets the target (a zero-width interval always does)."""
    if isinstance(summary, KpiSummary):
        half_width, summary = summary.half_width, summary.relative_half_width
    if half_width == 0.0:
        return True
    return summary is not None and summary <= target


def prepare_test(
    spec: SandboxTestSpec, settings: Settings
) -> tuple[Budget, BusinessEnvironment, SimulationSpec]:
    """Budget, environment and universe of a test; raises InvalidInput before anything runs."""
    plan = budget(spec.replicates, spec.early_stop, settings)
    env = resolve_environment(spec.environment, customers=spec.customers, step=spec.step)
    check_models([("model", spec.model)])
    return plan, env, simulation_spec(env, [spec.model], days=spec.days, field="model")


def run_test(
    spec: SandboxTestSpec,
    *,
    settings: Settings | None = None,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
) -> SandboxTestResult:
    """Run a model's Monte Carlo replicates; everything is checked before the first one runs."""
    settings = settings_or_default(settings)
    plan, env, sim = prepare_test(spec, settings)
    primary = spec.kpis or default_primary(spec.environment)
    collector = Collector(executor or SerialExecutor(), progress)
    arm = ArmStats()

    def tasks(lo: int, hi: int) -> list[ReplicateTask]:
        return [ReplicateTask(0, i, replicate_seed(spec.seed, i), sim) for i in range(lo, hi)]

    def on_outcome(outcome: ReplicateOutcome) -> None:
        arm.add(outcome.values[spec.model.name])

    def narrow_enough(target: float) -> bool:
        return all(narrow(_summary(kpi, arm, spec, primary, None), target) for kpi in primary)

    n, stop = run_batches(plan, spec.early_stop, tasks, collector, narrow_enough, on_outcome)
    outcomes = collector.ordered()
    rows = [
        {"replicate": o.replicate, "seed": o.seed, **o.values[spec.model.name]} for o in outcomes
    ]
    kpis = [_summary(kpi, arm, spec, primary, outcomes) for kpi in REPLICATE_KPIS]
    return SandboxTestResult(
        seed=spec.seed,
        replicates=n,
        replicate_seeds=[o.seed for o in outcomes],
        settings=settings_used(settings),
        execution=collector.execution(),
        spec=spec,
        environment=env.name,
        model=spec.model.name,
        stop=stop,
        kpis=kpis,
        table=rows_to_table(rows, TABLE_COLUMNS),
    )


def _summary(
    kpi: str,
    arm: ArmStats,
    spec: SandboxTestSpec,
    primary: list[str],
    outcomes: list[ReplicateOutcome] | None,
) -> KpiSummary:
    """A KPI's summary; the bootstrap (final summary only) resamples replicates in order."""
    common = {"direction": direction(kpi), "primary": kpi in primary, "confidence": spec.confidence}
    if kpi in RATIO_KPIS and spec.ratio_interval == "bootstrap" and outcomes is not None:
        num, den = RATIO_KPIS[kpi]
        name = spec.model.name
        return bootstrap_ratio(
            kpi,
            np.array([o.values[name][num] for o in outcomes]),
            np.array([o.values[name][den] for o in outcomes]),
            bootstrap_rng(spec.seed),
            **common,  # type: ignore[arg-type]
        )
    return summarize(kpi, arm.moments[kpi], **common)  # type: ignore[arg-type]
