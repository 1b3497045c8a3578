"""Parallel universes: every scenario × every model, replicated, in one Arrow table with a ranking.

Replicate i of every cell runs on the same seed, so within a scenario the models are compared on
common random numbers (as in a head-to-head) and ``p_best`` — the share of replicates in which a
model had the best ``rank_by`` value — is a paired statistic. Within a scenario models are ranked
by the mean of ``rank_by`` (direction-aware); overall by their mean rank across scenarios.
"""

from __future__ import annotations

from collections import defaultdict

from twinloop.config import Settings
from twinloop.contract import field_path
from twinloop.sandbox.arrow import rows_to_table
from twinloop.sandbox.collect import ArmStats, Collector, run_batches
from twinloop.sandbox.executor import Executor, ProgressCallback, SerialExecutor
from twinloop.sandbox.indicators import REPLICATE_KPIS, default_primary, direction
from twinloop.sandbox.intervals import summarize
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
from twinloop.sandbox.results import GridCell, GridRank, GridResult
from twinloop.sandbox.seeding import replicate_seed
from twinloop.sandbox.specs import GridSpec
from twinloop.sim.spec import SimulationSpec

TABLE_COLUMNS = ("scenario", "model", "replicate", "seed", *REPLICATE_KPIS)


def prepare_grid(
    spec: GridSpec, settings: Settings
) -> tuple[Budget, list[tuple[str, str, SimulationSpec]]]:
    """Budget and every (scenario, model, universe) cell; raises InvalidInput before any run."""
    plan = budget(spec.replicates, None, settings)
    check_models([(field_path("models", j), m) for j, m in enumerate(spec.models)])
    cells: list[tuple[str, str, SimulationSpec]] = []
    for s, scenario in enumerate(spec.scenarios):
        env = resolve_environment(
            scenario.environment or spec.environment,
            customers=scenario.customers if scenario.customers is not None else spec.customers,
            step=spec.step,
            shocks=scenario.shocks,
            field=f"scenarios.{s}",
        )
        for model in spec.models:
            sim = simulation_spec(env, [model], days=spec.days, field=f"scenarios.{s}")
            cells.append((scenario.name, model.name, sim))
    return plan, cells


def run_grid(
    spec: GridSpec,
    *,
    settings: Settings | None = None,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
) -> GridResult:
    """Run every scenario × model cell over shared replicate seeds; checked before anything runs."""
    settings = settings_or_default(settings)
    plan, cells = prepare_grid(spec, settings)
    primary = spec.kpis or default_primary(spec.environment)
    kpis = list(dict.fromkeys([*primary, spec.rank_by]))
    stats = [ArmStats() for _ in cells]
    collector = Collector(executor or SerialExecutor(), progress)

    def tasks(lo: int, hi: int) -> list[ReplicateTask]:
        return [
            ReplicateTask(c, i, replicate_seed(spec.seed, i), cells[c][2])
            for i in range(lo, hi)
            for c in range(len(cells))
        ]

    def on_outcome(outcome: ReplicateOutcome) -> None:
        stats[outcome.cell].add(outcome.values[cells[outcome.cell][1]])

    n, _ = run_batches(plan, None, tasks, collector, lambda _: True, on_outcome)
    outcomes = collector.ordered()
    rows = [
        {
            "scenario": cells[o.cell][0],
            "model": cells[o.cell][1],
            "replicate": o.replicate,
            "seed": o.seed,
            **o.values[cells[o.cell][1]],
        }
        for o in outcomes
    ]
    grid_cells = [
        GridCell(
            scenario=name,
            model=model,
            kpis=[
                summarize(
                    kpi,
                    stats[c].moments[kpi],
                    direction=direction(kpi),
                    primary=kpi in primary,
                    confidence=spec.confidence,
                )
                for kpi in kpis
            ],
        )
        for c, (name, model, _) in enumerate(cells)
    ]
    ranking = _rank_scenarios(spec, grid_cells, outcomes, cells)
    return GridResult(
        seed=spec.seed,
        replicates=n,
        replicate_seeds=[o.seed for o in collector.ordered(0)],
        settings=settings_used(settings),
        execution=collector.execution(),
        spec=spec,
        rank_by=spec.rank_by,
        cells=grid_cells,
        ranking=ranking,
        overall=_rank_overall(ranking),
        table=rows_to_table(rows, TABLE_COLUMNS),
    )


def _rank_scenarios(
    spec: GridSpec,
    grid_cells: list[GridCell],
    outcomes: list[ReplicateOutcome],
    cells: list[tuple[str, str, SimulationSpec]],
) -> list[GridRank]:
    """Rank models within each scenario by the mean of rank_by; p_best from paired replicates."""
    key, sign = spec.rank_by, (1.0 if direction(spec.rank_by) == "higher" else -1.0)
    # values[scenario][replicate][model] = rank_by value
    values: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for o in outcomes:
        scenario, model, _ = cells[o.cell]
        values[scenario][o.replicate][model] = o.values[model][key]
    out: list[GridRank] = []
    for item in spec.scenarios:
        scenario = item.name
        means = {
            c.model: next(k.mean for k in c.kpis if k.kpi == key)
            for c in grid_cells
            if c.scenario == scenario
        }
        best_share = dict.fromkeys(means, 0.0)
        replicates = values[scenario]
        for by_model in replicates.values():
            top = max(sign * v for v in by_model.values())
            winners = [m for m, v in by_model.items() if sign * v == top]
            for m in winners:  # ties split the replicate
                best_share[m] += 1.0 / len(winners)
        order = sorted(means, key=lambda m: (-sign * means[m], m))
        out.extend(
            GridRank(
                scenario=scenario,
                model=m,
                rank=r,
                score=means[m],
                p_best=best_share[m] / max(len(replicates), 1),
            )
            for r, m in enumerate(order, start=1)
        )
    return out


def _rank_overall(ranking: list[GridRank]) -> list[GridRank]:
    """Models ordered by their mean rank across scenarios (ties by name)."""
    ranks: dict[str, list[int]] = defaultdict(list)
    best: dict[str, list[float]] = defaultdict(list)
    for r in ranking:
        ranks[r.model].append(r.rank)
        best[r.model].append(r.p_best)
    mean_rank = {m: sum(v) / len(v) for m, v in ranks.items()}
    order = sorted(mean_rank, key=lambda m: (mean_rank[m], m))
    return [
        GridRank(
            scenario="overall",
            model=m,
            rank=i,
            score=mean_rank[m],
            p_best=sum(best[m]) / len(best[m]),
        )
        for i, m in enumerate(order, start=1)
    ]
