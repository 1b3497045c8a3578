"""Search retraining variants with Ray Tune; each trial trains one recipe and scores it in the twin.

The trial function validates its config into :class:`RetrainConfig` (bad configs fail the trial
with the field named) and calls the pure core (``twinloop.improve.retrain.score_variant``). The
search space is an explicit grid of recipes, so the set of trials — and, the scoring being seeded,
the ranking — is the same whatever the number of workers or the order trials finish in.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from pydantic import Field
from ray import tune

from twinloop.contract import FrozenModel
from twinloop.improve.retrain import RetrainConfig, RetrainScore, score_variant
from twinloop.sandbox.specs import EnvironmentRef
from twinloop.sim.models import ModelSpec


class RetrainSearchSpec(FrozenModel):
    """What to search: recipe axes, the champion to beat, and how to judge in the twin."""

    champion: ModelSpec
    environment: EnvironmentRef = "sales"
    l2: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0], min_length=1)
    interactions: list[bool] = Field(default_factory=lambda: [True, False], min_length=1)
    segment_weights: list[dict[str, float]] = Field(
        default_factory=lambda: [{}], min_length=1, description="Training-mix options."
    )
    training_rows: int = Field(default=20_000, ge=100, le=5_000_000)
    latency_p50_ms: float = Field(default=100.0, gt=0.0)
    latency_p95_ms: float = Field(default=200.0, gt=0.0)
    customers: int = Field(default=5_000, ge=100, le=5_000_000)
    days: float = Field(default=14.0, gt=0.0, le=365.0)
    replicates: int = Field(default=8, ge=2, le=1_000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    kpi: str = "profit"
    max_concurrent_trials: int = Field(default=2, ge=1, le=1_000)


class RetrainSearchResult(FrozenModel):
    """Every trial's score, best first (ties broken by name so the order is deterministic)."""

    spec: RetrainSearchSpec
    scores: list[RetrainScore]

    @property
    def best(self) -> RetrainScore:
        return self.scores[0]


def recipes(spec: RetrainSearchSpec) -> list[RetrainConfig]:
    """The explicit grid of training recipes."""
    out = []
    for i, (l2, inter, weights) in enumerate(
        itertools.product(spec.l2, spec.interactions, spec.segment_weights)
    ):
        out.append(
            RetrainConfig(
                name=f"retrain-{i:03d}",
                l2=l2,
                interactions=inter,
                segment_weights=weights,
                training_rows=spec.training_rows,
                training_seed=spec.seed,
                latency_p50_ms=spec.latency_p50_ms,
                latency_p95_ms=spec.latency_p95_ms,
            )
        )
    return out


def _trial(config: dict[str, Any]) -> None:
    """One Tune trial: validate, train, score by head-to-head, report."""
    spec = RetrainSearchSpec.model_validate(config["spec"])
    recipe = RetrainConfig.model_validate(config["recipe"])
    score = score_variant(
        recipe,
        spec.champion,
        environment=spec.environment,
        customers=spec.customers,
        days=spec.days,
        replicates=spec.replicates,
        seed=spec.seed,
        kpi=spec.kpi,
    )
    tune.report({"win_rate": score.win_rate, "score": score.model_dump(mode="json")})


def search_retraining(
    spec: RetrainSearchSpec, storage_path: Path | None = None
) -> RetrainSearchResult:
    """Run the grid as Tune trials on the connected Ray cluster; needs ``ray.init`` first."""
    grid = [r.model_dump(mode="json") for r in recipes(spec)]
    with tempfile.TemporaryDirectory(prefix="twinloop-tune-") as tmp:
        tuner = tune.Tuner(
            tune.with_resources(_trial, {"cpu": 1}),
            param_space={"spec": spec.model_dump(mode="json"), "recipe": tune.grid_search(grid)},
            tune_config=tune.TuneConfig(
                metric="win_rate",
                mode="max",
                max_concurrent_trials=spec.max_concurrent_trials,
            ),
            run_config=tune.RunConfig(
                name="retrain-search",
                storage_path=str(storage_path or Path(tmp)),
                verbose=0,
            ),
        )
        results = tuner.fit()
        errors = [r.error for r in results if r.error is not None]
        if errors:
            raise RuntimeError(f"{len(errors)} retraining trial(s) failed: {errors[0]}")
        scores = [RetrainScore.model_validate(r.metrics["score"]) for r in results]
    scores.sort(key=lambda s: (-s.win_rate, -s.difference, s.config.name))
    return RetrainSearchResult(spec=spec, scores=scores)
