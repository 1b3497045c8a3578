"""The tournament: a CRN round robin, ratings, and a confirmation run on fresh seeds.

Pure core on any ``Executor`` (the local one in tests, the Ray actor pool in a cluster):

1. *Round robin.* Every entrant runs on the same R replicate seeds; every pair is compared
   replicate by replicate (a CRN head-to-head) on the primary KPI → the P(better) and win-rate
   matrix, and a Bradley–Terry rating with bootstrap intervals (``rating.py``).
2. *Selection.* The top-rated candidate goes on only if the round robin shows it beating the
   champion with P ≥ ``screen_prob``; otherwise the champion stays and nothing more runs.
3. *Confirmation* (the winner's-curse guard). The top candidate and the champion run again on
   fresh seeds the round robin never used; the gates read this run only — the best of many looks
   better than it is on the seeds it was picked on, never on new ones.

Every number depends only on the models, the environment and the seed: outcomes are keyed by
(entrant, replicate) and reduced in replicate order, whatever order an executor returns them in.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from scipy import stats

from twinloop.championship.gates import compare, evaluate
from twinloop.championship.rating import rate
from twinloop.championship.replicates import (
    BOOTSTRAP_KEY,
    ScoredReplicate,
    confirmation_seed,
    round_robin_seed,
    run_scored,
)
from twinloop.championship.results import (
    CandidateReport,
    ChampionshipResult,
    ExecutionInfo,
    PairResult,
    Rating,
    Stage,
)
from twinloop.championship.spec import ChampionshipSpec
from twinloop.errors import InvalidInput
from twinloop.registry.models import ModelFamily
from twinloop.sandbox.executor import Executor, ProgressCallback, SerialExecutor
from twinloop.sandbox.indicators import RATIO_KPIS, direction
from twinloop.sandbox.intervals import t_quantile
from twinloop.sandbox.replicate import ReplicateTask
from twinloop.sandbox.results import PairedKpi
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelSpec
from twinloop.sim.spec import SimulationSpec


class _Runner:
    """Runs tasks on the executor and keeps outcomes by (cell, replicate)."""

    def __init__(self, executor: Executor, progress: ProgressCallback | None) -> None:
        self.executor, self.progress = executor, progress
        self.planned = self.done = 0
        self.replicate_seconds = 0.0
        self.start = time.perf_counter()

    def run(self, tasks: list[ReplicateTask]) -> dict[tuple[int, int], ScoredReplicate]:
        self.planned += len(tasks)
        out: dict[tuple[int, int], ScoredReplicate] = {}
        for _, outcome in self.executor.map(run_scored, tasks):
            out[(outcome.cell, outcome.replicate)] = outcome
            self.done += 1
            self.replicate_seconds += outcome.wall_seconds
            if self.progress is not None:
                self.progress(self.done, self.planned)
        return out

    def info(self) -> ExecutionInfo:
        stats = self.executor.stats()
        return ExecutionInfo(
            executor=stats.executor,
            workers=stats.workers,
            replicates_run=self.done,
            wall_seconds=time.perf_counter() - self.start,
            replicate_seconds=self.replicate_seconds,
        )


def _column(
    outcomes: dict[tuple[int, int], ScoredReplicate], cell: int, n: int
) -> list[ScoredReplicate]:
    return [outcomes[(cell, r)] for r in range(n)]


def run_tournament(
    spec: ChampionshipSpec,
    family: ModelFamily,
    env: BusinessEnvironment,
    entrants: Sequence[ModelSpec],
    *,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
) -> ChampionshipResult:
    """Hold the championship; ``entrants[0]`` is the champion, the rest the candidates."""
    names = [m.name for m in entrants]
    if len(names) < 2 or len(set(names)) != len(names):
        raise InvalidInput("versions", f"need the champion and 1+ candidates, unique: {names}")
    runner = _Runner(executor or SerialExecutor(), progress)
    sims = [SimulationSpec(environment=env, models=[m], days=spec.days) for m in entrants]
    n = spec.replicates
    rr = runner.run(
        [
            ReplicateTask(cell, r, round_robin_seed(spec.seed, r), sims[cell])
            for r in range(n)
            for cell in range(len(entrants))
        ]
    )
    columns = [_column(rr, cell, n) for cell in range(len(entrants))]
    ratings = _ratings(columns, names, family.primary_kpi, spec)
    round_robin = [
        _report(family, columns[0], columns[c], spec, names[c], "round_robin")
        for c in range(1, len(entrants))
    ]
    top = max(ratings[1:], key=lambda r: r.score).name  # max keeps the first of equals
    screened = next(c for c in round_robin if c.name == top)
    confirmation, seeds = None, []
    if screened.primary.prob_challenger_better < spec.screen_prob:
        reasons = [
            f"no candidate beat the champion {names[0]} in the round robin: the top-rated, "
            f"{top}, has P(better on {family.primary_kpi}) "
            f"{screened.primary.prob_challenger_better:.3f} < {spec.screen_prob}"
        ]
    else:
        seeds = [confirmation_seed(spec.seed, r) for r in range(spec.confirmation_n)]
        confirmation = _confirm(runner, family, spec, seeds, (sims[0], sims[names.index(top)]), top)
        reasons = _reasons(confirmation, names[0], family.primary_kpi)
    return ChampionshipResult(
        family=family.name,
        environment=env.name,
        champion=names[0],
        entrants=names,
        primary_kpi=family.primary_kpi,
        seed=spec.seed,
        replicates=n,
        confirmation_replicates=spec.confirmation_n,
        pairwise=_pairwise(columns, names, family.primary_kpi, spec.confidence),
        ratings=ratings,
        round_robin=round_robin,
        top_candidate=top,
        confirmation=confirmation,
        confirmation_seeds=seeds,
        verdict="promote" if confirmation is not None and confirmation.passed else "keep_champion",
        reasons=reasons,
        execution=runner.info(),
    )


def _confirm(
    runner: _Runner,
    family: ModelFamily,
    spec: ChampionshipSpec,
    seeds: list[int],
    sims: tuple[SimulationSpec, SimulationSpec],
    name: str,
) -> CandidateReport:
    """Champion (cell 0) and the top candidate (cell 1) again, on fresh seeds."""
    runs = runner.run(
        [
            ReplicateTask(cell, r, seed, sims[cell])
            for r, seed in enumerate(seeds)
            for cell in (0, 1)
        ]
    )
    m = len(seeds)
    return _report(family, _column(runs, 0, m), _column(runs, 1, m), spec, name, "confirmation")


def _report(
    family: ModelFamily,
    base: list[ScoredReplicate],
    chal: list[ScoredReplicate],
    spec: ChampionshipSpec,
    name: str,
    stage: Stage,
) -> CandidateReport:
    primary, gates = evaluate(family, base, chal, spec.external_gates, confidence=spec.confidence)
    return CandidateReport(
        name=name,
        stage=stage,
        primary=primary,
        gates=gates,
        passed=all(g.passed for g in gates),
    )


def _reasons(report: CandidateReport, champion: str, kpi: str) -> list[str]:
    failed = [g for g in report.gates if not g.passed]
    if not failed:
        p = report.primary.prob_challenger_better
        return [
            f"{report.name} beat {champion} on fresh seeds: P(better on {kpi}) {p:.3f}, "
            "every guardrail and segment within tolerance"
        ]
    return [f"{report.name} refused by {g.gate}: {g.detail}" for g in failed]


def _pairwise(
    columns: list[list[ScoredReplicate]], names: list[str], kpi: str, confidence: float
) -> list[PairResult]:
    """Every pair on the primary KPI: the paired t of ``compare``, vectorised over pairs.

    A ratio KPI goes through ``compare`` (delta method) pair by pair; a plain KPI's paired t is
    the t of the per-replicate differences, computed for all pairs at once (k² pairs of 20+
    entrants would otherwise dominate the tournament's statistics).
    """
    if kpi in RATIO_KPIS:
        return [
            _pair(names[i], names[j], compare(columns[j], columns[i], kpi, confidence=confidence))
            for i in range(len(names))
            for j in range(i + 1, len(names))
        ]
    x = np.array([[r.values[kpi] for r in col] for col in columns]).T  # replicates × entrants
    n = x.shape[0]
    i, j = np.triu_indices(len(names), 1)
    d = x[:, i] - x[:, j]
    mean, se = d.mean(axis=0), d.std(axis=0, ddof=1) / np.sqrt(n)
    signed = mean if direction(kpi) == "higher" else -mean
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = np.where(se > 0, stats.t.cdf(signed / se, n - 1), np.sign(signed) / 2 + 0.5)
    half = t_quantile(confidence, n - 1) * se
    better = d > 0 if direction(kpi) == "higher" else d < 0
    wins = better.sum(axis=0) + 0.5 * (d == 0).sum(axis=0)
    return [
        PairResult(
            a=names[a],
            b=names[b],
            prob_a_better=float(prob[p]),
            win_rate_a=float(wins[p] / n),
            difference=float(mean[p]),
            lower=float(mean[p] - half[p]),
            upper=float(mean[p] + half[p]),
        )
        for p, (a, b) in enumerate(zip(i, j, strict=True))
    ]


def _pair(a: str, b: str, d: PairedKpi) -> PairResult:
    return PairResult(
        a=a,
        b=b,
        prob_a_better=d.prob_challenger_better,
        win_rate_a=d.win_rate,
        difference=d.difference,
        lower=d.lower,
        upper=d.upper,
    )


def _ratings(
    columns: list[list[ScoredReplicate]], names: list[str], kpi: str, spec: ChampionshipSpec
) -> list[Rating]:
    primary = np.array([[r.values[kpi] for r in col] for col in columns]).T  # replicates × k
    higher = direction(kpi) == "higher"
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=BOOTSTRAP_KEY))
    score, lower, upper = rate(primary, higher, 0, rng, spec.confidence)
    x = primary if higher else -primary
    wins = (x[:, :, None] > x[:, None, :]).sum(axis=(0, 2)) + 0.5 * (
        (x[:, :, None] == x[:, None, :]).sum(axis=(0, 2)) - primary.shape[0]
    )
    order = sorted(range(len(names)), key=lambda c: (-score[c], c))
    rank = {c: i + 1 for i, c in enumerate(order)}
    games = primary.shape[0] * (len(names) - 1)
    return [
        Rating(
            name=names[c],
            rank=rank[c],
            score=float(score[c]),
            lower=float(lower[c]),
            upper=float(upper[c]),
            wins=float(wins[c]),
            games=games,
        )
        for c in range(len(names))
    ]
