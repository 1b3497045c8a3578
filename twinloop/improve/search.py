"""A retraining search: recipes trained, raced against the champion on replicates, confirmed.

Each trial trains one recipe (``twinloop.improve.trainer``) and is scored by a head-to-head
against the champion on common random numbers, one *batch* of Monte Carlo replicates at a time.
Batch ``b`` has the same seeds for every trial, so trials are compared on the same universes, and
a trial's running paired gain after ``b`` batches is a function of (recipe, seed, b) alone.
Replicates are the resource successive halving spends: after batch 1, 2, 4 … only the best
``1/reduction_factor`` of the trials go on (:func:`run_search` does it synchronously, in-process;
``tuning/`` lets Ray Tune's ASHA do it asynchronously over a cluster). A spec's ``warm_start``
recipes (past winners of the same failure pattern) are its first trials — Tune's
``points_to_evaluate`` — and take the first of its ``samples``. The best survivor is then
re-run on *fresh* seeds it was never selected on (the winner's-curse guard); only that
confirmation's numbers decide.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator
from scipy import stats

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.improve.data import TrainingData, read_parquet, twin_data
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.space import SearchSpace, sample_recipes
from twinloop.improve.trainer import Operational, train_model
from twinloop.sandbox.executor import Executor
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.indicators import REPLICATE_KPIS, direction
from twinloop.sandbox.plan import resolve_environment
from twinloop.sandbox.specs import EnvironmentRef, HeadToHeadSpec, check_environment
from twinloop.sim.models import ModelSpec

BATCH_STREAM = 21  # spawn-key roots: search batches and confirmation never share a seed
CONFIRM_STREAM = 22


class DataSource(FrozenModel):
    """Where the training rows come from: the twin's ground truth, or a labelled Parquet file."""

    kind: Literal["twin", "parquet"] = "twin"
    rows: int = Field(default=8_000, ge=10, le=5_000_000, description="Rows the twin generates.")
    path: str | None = Field(default=None, description="Labelled Parquet (kind 'parquet').")
    seed: int = Field(default=0, ge=0, lt=2**63)

    def load(self, env_ref: EnvironmentRef) -> TrainingData:
        env = resolve_environment(env_ref, customers=None, step=None)
        if self.kind == "twin":
            return twin_data(env, self.rows, self.seed)
        if not self.path:
            raise InvalidInput("data.path", "a parquet data source needs a path")
        return read_parquet(Path(self.path), env)


class RetrainSpec(FrozenModel):
    """One search: the champion to beat, the trainer, the data, the space and the budget."""

    family: str = Field(default="default", min_length=1, max_length=128)
    environment: EnvironmentRef = "sales"
    champion: ModelSpec
    trainer: str = Field(default=LOGISTIC, description="Import path of train(config, data, seed).")
    data: DataSource = Field(default_factory=DataSource)
    space: SearchSpace = Field(default_factory=SearchSpace)
    samples: int = Field(default=8, ge=1, le=1_000, description="Recipes tried.")
    kpi: str = "profit"
    customers: int = Field(default=2_000, ge=100, le=5_000_000)
    days: float = Field(default=10.0, gt=0.0, le=365.0)
    batch_size: int = Field(default=4, ge=2, le=1_000, description="Replicates per batch.")
    max_batches: int = Field(default=4, ge=1, le=64)
    reduction_factor: int = Field(default=2, ge=2, le=8)
    confirm_replicates: int = Field(default=16, ge=2, le=10_000)
    confirm_probability: float = Field(default=0.95, gt=0.5, lt=1.0)
    seed: int = Field(default=0, ge=0, lt=2**63)
    max_concurrent_trials: int = Field(default=2, ge=1, le=1_000)
    warm_start: list[Recipe] = Field(
        default_factory=list,
        max_length=16,
        description="Recipes tried first (past winners; Tune's points_to_evaluate).",
    )

    @field_validator("environment")
    @classmethod
    def _env(cls, value: EnvironmentRef) -> EnvironmentRef:
        check_environment(value)
        return value

    @field_validator("kpi")
    @classmethod
    def _kpi(cls, value: str) -> str:
        if value not in REPLICATE_KPIS:
            raise ValueError(f"unknown KPI {value!r}; choose from {list(REPLICATE_KPIS)}")
        return value

    def recipes(self) -> list[Recipe]:
        """The warm-start recipes first (``w000``, …), then the space's draws up to ``samples``."""
        warm = self.warm_recipes()
        rest = self.samples - len(warm)
        return warm + (sample_recipes(self.space, rest, self.seed) if rest > 0 else [])

    def warm_recipes(self) -> list[Recipe]:
        """The warm-start recipes as trials name them (each takes one of ``samples``)."""
        return [
            r.model_copy(update={"name": f"w{i:03d}"})
            for i, r in enumerate(self.warm_start[: self.samples])
        ]

    def operational(self) -> Operational:
        c = self.champion
        return Operational(
            latency_p50_ms=c.latency_p50_ms,
            latency_p95_ms=c.latency_p95_ms,
            cost_per_call=c.cost_per_call,
        )


class Paired(FrozenModel):
    """Running paired gain of a challenger (oriented: > 0 is better) over n replicates."""

    n: int
    gain: float
    std_error: float
    lower: float
    upper: float
    prob_better: float

    @classmethod
    def of(cls, gains: list[float], confidence: float = 0.95) -> Paired:
        g = np.asarray(gains, dtype=np.float64)
        n, mean = g.size, float(g.mean())
        se = float(g.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
        if se == 0.0:
            prob = 1.0 if mean > 0 else 0.0 if mean < 0 else 0.5
            half = 0.0
        else:
            prob = float(stats.t.cdf(mean / se, n - 1))
            half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
        return cls(
            n=n, gain=mean, std_error=se, lower=mean - half, upper=mean + half, prob_better=prob
        )


class TrialResult(FrozenModel):
    """One recipe's trial: how far it got, its running gain, or why it failed."""

    recipe: Recipe
    batches: int
    replicates: int
    score: Paired | None
    error: str | None = None
    stopped_early: bool = False


class Confirmation(FrozenModel):
    """The best trial re-run on fresh seeds: the numbers that count."""

    recipe: Recipe
    score: Paired
    seed: int
    replicates: int
    confirmed: bool = Field(description="P(better) on fresh seeds >= confirm_probability")


class RetrainResult(FrozenModel):
    """A finished search: every trial, the best, its confirmation and what early stopping saved."""

    spec: RetrainSpec
    trials: list[TrialResult]
    best: TrialResult | None
    confirmation: Confirmation | None
    candidate: ModelSpec | None = Field(description="The best recipe's model (None if unconfirmed)")
    replicates_run: int
    replicates_full: int = Field(description="Replicates had every trial run every batch.")
    seconds: float

    @property
    def replicates_saved(self) -> int:
        return self.replicates_full - self.replicates_run


def batch_seed(seed: int, batch: int, stream: int = BATCH_STREAM) -> int:
    """The root seed of batch ``batch`` (same for every trial: common random numbers)."""
    state = np.random.SeedSequence(seed, spawn_key=(stream, batch)).generate_state(1, np.uint64)
    return int(state[0]) >> 1


def replicate_gains(
    spec: RetrainSpec,
    model: ModelSpec,
    seed: int,
    replicates: int,
    executor: Executor | None = None,
) -> list[float]:
    """Per-replicate oriented gain (challenger − champion, > 0 better) on ``spec.kpi``."""
    h2h = HeadToHeadSpec(
        environment=spec.environment,
        customers=spec.customers,
        days=spec.days,
        seed=seed,
        replicates=replicates,
        baseline=spec.champion,
        challenger=model,
        kpis=[spec.kpi],
    )
    table = run_head_to_head(h2h, executor=executor).table.to_pydict()
    sign = 1.0 if direction(spec.kpi) == "higher" else -1.0
    values: dict[tuple[int, str], float] = {
        (r, a): float(v)
        for r, a, v in zip(table["replicate"], table["arm"], table[spec.kpi], strict=True)
    }
    return [sign * (values[(i, "challenger")] - values[(i, "baseline")]) for i in range(replicates)]


def train_recipe(spec: RetrainSpec, recipe: Recipe, data: TrainingData) -> ModelSpec:
    """The recipe's model, named after it (training seed: the search's)."""
    return train_model(spec.trainer, recipe, data, spec.seed, spec.operational())


def milestones(spec: RetrainSpec) -> list[int]:
    """Batches after which successive halving cuts: 1, rf, rf², … below max_batches."""
    out, m = [], 1
    while m < spec.max_batches:
        out.append(m)
        m *= spec.reduction_factor
    return out


def confirm(
    spec: RetrainSpec, recipe: Recipe, model: ModelSpec, executor: Executor | None = None
) -> Confirmation:
    """Re-run the chosen recipe on fresh seeds (a stream no search batch used)."""
    seed = batch_seed(spec.seed, 0, CONFIRM_STREAM)
    score = Paired.of(replicate_gains(spec, model, seed, spec.confirm_replicates, executor))
    return Confirmation(
        recipe=recipe,
        score=score,
        seed=seed,
        replicates=spec.confirm_replicates,
        confirmed=score.prob_better >= spec.confirm_probability,
    )


Progress = Callable[[str, int, Paired], None]


def run_search(
    spec: RetrainSpec,
    *,
    data: TrainingData | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    confirmation: bool = True,
) -> RetrainResult:
    """Synchronous successive halving over replicate batches, then the confirmation run."""
    start = time.perf_counter()
    data = data if data is not None else spec.data.load(spec.environment)
    recipes = spec.recipes()
    models: dict[str, ModelSpec] = {}
    errors: dict[str, str] = {}
    for recipe in recipes:
        try:
            models[recipe.name] = train_recipe(spec, recipe, data)
        except InvalidInput as exc:  # a failing trial is reported, never ends the search
            errors[recipe.name] = str(exc)
    gains: dict[str, list[float]] = {name: [] for name in models}
    alive = sorted(models)
    cuts = set(milestones(spec))
    for batch in range(spec.max_batches):
        seed = batch_seed(spec.seed, batch)
        for name in alive:
            gains[name] += replicate_gains(spec, models[name], seed, spec.batch_size, executor)
            if progress is not None:
                progress(name, batch + 1, Paired.of(gains[name]))
        if batch + 1 in cuts and len(alive) > 1:
            keep = max(1, len(alive) // spec.reduction_factor)
            alive = sorted(alive, key=lambda n: (-float(np.mean(gains[n])), n))[:keep]
    trials = [
        trial_result(spec, r, gains.get(r.name, []), errors.get(r.name), r.name in alive)
        for r in recipes
    ]
    return assemble(spec, trials, lambda r: models[r.name], start, executor, confirmation)


def trial_result(
    spec: RetrainSpec, recipe: Recipe, gains: list[float], error: str | None, finalist: bool
) -> TrialResult:
    """A trial's record from its per-replicate gains (or its error)."""
    return TrialResult(
        recipe=recipe,
        batches=len(gains) // spec.batch_size,
        replicates=len(gains),
        score=Paired.of(gains) if len(gains) >= 2 else None,
        error=error,
        stopped_early=error is None and not finalist,
    )


def assemble(
    spec: RetrainSpec,
    trials: list[TrialResult],
    model_of: Callable[[Recipe], ModelSpec],
    start: float,
    executor: Executor | None = None,
    confirmation: bool = True,
) -> RetrainResult:
    """Pick the best finished trial (most batches, then gain, then name) and confirm it."""
    finished = [t for t in trials if t.score is not None]
    best = min(
        finished,
        key=lambda t: (-t.batches, -(t.score.gain if t.score else 0.0), t.recipe.name),
        default=None,
    )
    conf, candidate = None, None
    if best is not None and best.score is not None and best.score.gain > 0:
        model = model_of(best.recipe)
        if confirmation:
            conf = confirm(spec, best.recipe, model, executor)
            candidate = model if conf.confirmed else None
        else:
            candidate = model if best.score.prob_better >= spec.confirm_probability else None
    ran = sum(t.replicates for t in trials)
    full = sum(spec.max_batches * spec.batch_size for t in trials if t.error is None)
    return RetrainResult(
        spec=spec,
        trials=trials,
        best=best,
        confirmation=conf,
        candidate=candidate,
        replicates_run=ran,
        replicates_full=full,
        seconds=time.perf_counter() - start,
    )
