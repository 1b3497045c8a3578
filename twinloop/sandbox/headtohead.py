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


class _Pairing:
    """One head-to-head's running statistics: each arm's moments and each pair's difference."""

    def __init__(self, spec: HeadToHeadSpec, primary: list[str], collector: Collector) -> None:
        self.spec, self.primary, self.collector = spec, primary, collector
        self.models = (spec.baseline, spec.challenger)
        self.pair, self.arms = PairStats(), (ArmStats(), ArmStats())

    def on_outcome(self, outcome: ReplicateOutcome) -> None:
        arm = outcome.cell
        self.arms[arm].add(outcome.values[self.models[arm].name])
        partner = self.collector.outcomes.get((1 - arm, outcome.replicate))
        if partner is not None:  # the pair is complete: merge it once
            base, chal = (partner, outcome) if arm == 1 else (outcome, partner)
            self.pair.add(base.values[self.models[0].name], chal.values[self.models[1].name])

    def difference(self, kpi: str) -> PairedKpi:
        return paired(
            kpi,
            self.pair.moments[kpi],
            self.pair.wins[kpi],
            direction=direction(kpi),
            primary=kpi in self.primary,
            confidence=self.spec.confidence,
        )

    def narrow_enough(self, target: float) -> bool:
        return all(
            narrow(d.relative_half_width, target, d.half_width)
            for d in (self.difference(kpi) for kpi in self.primary)
        )

    def summaries(self, arm: int) -> list[KpiSummary]:
        return [
            summarize(
                kpi,
                self.arms[arm].moments[kpi],
                direction=direction(kpi),
                primary=kpi in self.primary,
                confidence=self.spec.confidence,
            )
            for kpi in REPLICATE_KPIS
        ]

    def rows(self) -> list[dict[str, object]]:
        """One table row per arm and replicate, in replicate order."""
        outcomes = sorted(self.collector.outcomes.values(), key=lambda o: (o.replicate, o.cell))
        return [
            {
                "replicate": o.replicate,
                "arm": ARMS[o.cell],
                "model": self.models[o.cell].name,
                "seed": o.seed,
                **o.values[self.models[o.cell].name],
            }
            for o in outcomes
        ]


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
    challenger_stream = COMMON_STREAM if spec.common_random_numbers else INDEPENDENT_STREAM
    streams = (COMMON_STREAM, challenger_stream)
    collector = Collector(executor or SerialExecutor(), progress)
    pairing = _Pairing(spec, spec.kpis or default_primary(spec.environment), collector)

    def tasks(lo: int, hi: int) -> list[ReplicateTask]:
        # One task per arm and replicate: the two universes of a pair may run on two workers.
        return [
            ReplicateTask(arm, i, replicate_seed(spec.seed, i, streams[arm]), sims[arm])
            for i in range(lo, hi)
            for arm in (0, 1)
        ]

    n, stop = run_batches(
        plan, spec.early_stop, tasks, collector, pairing.narrow_enough, pairing.on_outcome
    )
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
        differences=[pairing.difference(kpi) for kpi in REPLICATE_KPIS],
        baseline_kpis=pairing.summaries(0),
        challenger_kpis=pairing.summaries(1),
        table=rows_to_table(pairing.rows(), TABLE_COLUMNS),
    )
