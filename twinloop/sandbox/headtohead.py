"""Head-to-head: baseline vs challenger on common random numbers, paired replicate by replicate.

In replicate i both models run in their own universe on the *same* seed, so they meet the same
customers with the same random draws and differ only through their own decisions (see
``twinloop.sim.lifecycle``). The difference challenger − baseline is taken within each
replicate; its interval is therefore free of most of the noise both universes share. With
``common_random_numbers: false`` the challenger gets an independent seed per replicate — the
comparison a naive experiment would make, and the yardstick for how much pairing gains.
"""

from __future__ import annotations

from twinloop.config import Settings
from twinloop.sandbox.arrow import rows_to_table
from twinloop.sandbox.collect import ArmStats, Collector, PairStats, run_batches
from twinloop.sandbox.executor import Executor, ProgressCallback, SerialExecutor
from twinloop.sandbox.indicators import REPLICATE_KPIS, default_primary, direction
from twinloop.sandbox.intervals import paired, summarize
from twinloop.sandbox.montecarlo import narrow
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
from twinloop.sandbox.results import HeadToHeadResult, KpiSummary, PairedKpi
from twinloop.sandbox.seeding import COMMON_STREAM, INDEPENDENT_STREAM, replicate_seed
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.spec import SimulationSpec

ARMS = ("baseline", "challenger")
TABLE_COLUMNS = ("replicate", "arm", "model", "seed", *REPLICATE_KPIS)


def prepare_compare(
    spec: HeadToHeadSpec, settings: Settings
) -> tuple[Budget, BusinessEnvironment, list[SimulationSpec]]:
    """Budget, environment and the two universes; raises InvalidInput before anything runs."""
    plan = budget(spec.replicates, spec.early_stop, settings)
    env = resolve_environment(spec.environment, customers=spec.customers, step=spec.step)
    check_models([("baseline", spec.baseline), ("challenger", spec.challenger)], env)
    sims = [
        simulation_spec(env, [model], days=spec.days, field=field)
        for field, model in (("baseline", spec.baseline), ("challenger", spec.challenger))
    ]
    return plan, env, sims


def run_head_to_head(
    spec: HeadToHeadSpec,
    *,
    settings: Settings | None = None,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
) -> HeadToHeadResult:
    """Run both models over paired replicates; everything is checked before anything runs."""
    settings = settings_or_default(settings)
    plan, env, sims = prepare_compare(spec, settings)
    models = (spec.baseline, spec.challenger)
    challenger_stream = COMMON_STREAM if spec.common_random_numbers else INDEPENDENT_STREAM
    streams = (COMMON_STREAM, challenger_stream)
    primary = spec.kpis or default_primary(spec.environment)
    collector = Collector(executor or SerialExecutor(), progress)
    pair, arms = PairStats(), (ArmStats(), ArmStats())

    def tasks(lo: int, hi: int) -> list[ReplicateTask]:
        # One task per arm and replicate: the two universes of a pair may run on two workers.
        return [
            ReplicateTask(arm, i, replicate_seed(spec.seed, i, streams[arm]), sims[arm])
            for i in range(lo, hi)
            for arm in (0, 1)
        ]

    def on_outcome(outcome: ReplicateOutcome) -> None:
        arm = outcome.cell
        arms[arm].add(outcome.values[models[arm].name])
        partner = collector.outcomes.get((1 - arm, outcome.replicate))
        if partner is not None:  # the pair is complete: merge it once
            base, chal = (partner, outcome) if arm == 1 else (outcome, partner)
            pair.add(base.values[models[0].name], chal.values[models[1].name])

    def difference(kpi: str) -> PairedKpi:
        return paired(
            kpi,
            pair.moments[kpi],
            pair.wins[kpi],
            direction=direction(kpi),
            primary=kpi in primary,
            confidence=spec.confidence,
        )

    def narrow_enough(target: float) -> bool:
        return all(
            narrow(d.relative_half_width, target, d.half_width)
            for d in (difference(kpi) for kpi in primary)
        )

    n, stop = run_batches(plan, spec.early_stop, tasks, collector, narrow_enough, on_outcome)
    rows = [
        {
            "replicate": o.replicate,
            "arm": ARMS[o.cell],
            "model": models[o.cell].name,
            "seed": o.seed,
            **o.values[models[o.cell].name],
        }
        for o in sorted(collector.outcomes.values(), key=lambda o: (o.replicate, o.cell))
    ]

    def summaries(arm: ArmStats) -> list[KpiSummary]:
        return [
            summarize(
                kpi,
                arm.moments[kpi],
                direction=direction(kpi),
                primary=kpi in primary,
                confidence=spec.confidence,
            )
            for kpi in REPLICATE_KPIS
        ]

    return HeadToHeadResult(
        seed=spec.seed,
        replicates=n,
        replicate_seeds=[o.seed for o in collector.ordered(0)],
        settings=settings_used(settings),
        execution=collector.execution(),
        spec=spec,
        environment=env.name,
        baseline=spec.baseline.name,
        challenger=spec.challenger.name,
        common_random_numbers=spec.common_random_numbers,
        stop=stop,
        differences=[difference(kpi) for kpi in REPLICATE_KPIS],
        baseline_kpis=summaries(arms[0]),
        challenger_kpis=summaries(arms[1]),
        table=rows_to_table(rows, TABLE_COLUMNS),
    )
