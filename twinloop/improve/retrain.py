"""Retrain one variant of the reference predictor and score it by sandbox win-rate.

A *retraining variant* is a training recipe — regularisation, segment × feature interactions, how
much of each segment the training set holds, how many rows — applied to data the twin generates
from its ground truth. Its score is the head-to-head against the champion on common random
numbers: the share of replicates the variant wins on the target KPI, with the paired interval.
This is the objective Ray Tune maximises (``tuning/``); here it is plain Python.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from twinloop.config import Settings
from twinloop.contract import FrozenModel
from twinloop.sandbox.executor import Executor
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.specs import EnvironmentRef, HeadToHeadSpec
from twinloop.sim.domains import preset
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.groundtruth import sample_customers
from twinloop.sim.models import ModelSpec, PredictorModel
from twinloop.sim.predictor import LogisticPredictor

PREDICTOR_PATH = "twinloop.sim.predictor:LogisticPredictor"


class RetrainConfig(FrozenModel):
    """One training recipe (a point of the search space)."""

    name: str = Field(default="candidate", min_length=1, max_length=128)
    l2: float = Field(default=1.0, ge=0.0, le=1e4, description="L2 penalty (per row).")
    interactions: bool = Field(default=True, description="Learn per-segment slopes.")
    training_rows: int = Field(default=20_000, ge=100, le=5_000_000)
    segment_weights: dict[str, float] = Field(
        default_factory=dict, description="× natural share of a segment in the training set."
    )
    training_seed: int = Field(default=0, ge=0, lt=2**63)
    latency_p50_ms: float = Field(default=100.0, gt=0.0)
    latency_p95_ms: float = Field(default=200.0, gt=0.0)
    cost_per_call: float = Field(default=0.0, ge=0.0)


class RetrainScore(FrozenModel):
    """How a trained variant fared against the champion in the twin."""

    config: RetrainConfig
    model: PredictorModel
    kpi: str
    win_rate: float = Field(description="Share of paired replicates the variant won on kpi.")
    prob_better: float
    difference: float
    lower: float
    upper: float
    replicates: int
    seed: int


def _environment(ref: EnvironmentRef) -> BusinessEnvironment:
    return preset(ref).environment if isinstance(ref, str) else ref


def train_variant(env: BusinessEnvironment, config: RetrainConfig) -> PredictorModel:
    """Fit the reference predictor on twin-generated data following the recipe."""
    for name in config.segment_weights:
        env.segment_index(name)  # InvalidInput("segment") for an unknown segment
    rng = np.random.default_rng(np.random.SeedSequence(config.training_seed))
    x, y, _ = sample_customers(env, config.training_rows, rng, config.segment_weights or None)
    fitted = LogisticPredictor(interactions=config.interactions, l2=config.l2).fit(
        x, y, env.n_features
    )
    return PredictorModel(
        name=config.name,
        import_path=PREDICTOR_PATH,
        params=fitted.to_params(),
        latency_p50_ms=config.latency_p50_ms,
        latency_p95_ms=max(config.latency_p95_ms, config.latency_p50_ms),
        cost_per_call=config.cost_per_call,
    )


def score_variant(
    config: RetrainConfig,
    champion: ModelSpec,
    *,
    environment: EnvironmentRef = "sales",
    customers: int | None = 5_000,
    days: float = 14.0,
    replicates: int = 8,
    seed: int = 0,
    kpi: str = "profit",
    settings: Settings | None = None,
    executor: Executor | None = None,
) -> RetrainScore:
    """Train the variant and run it head-to-head against the champion (CRN)."""
    env = _environment(environment)
    model = train_variant(env, config)
    spec = HeadToHeadSpec(
        environment=environment,
        customers=customers,
        days=days,
        seed=seed,
        replicates=replicates,
        baseline=champion,
        challenger=model,
        kpis=[kpi],
    )
    result = run_head_to_head(spec, settings=settings, executor=executor)
    diff = next(d for d in result.differences if d.kpi == kpi)
    return RetrainScore(
        config=config,
        model=model,
        kpi=kpi,
        win_rate=diff.win_rate,
        prob_better=diff.prob_challenger_better,
        difference=diff.difference,
        lower=diff.lower,
        upper=diff.upper,
        replicates=diff.n,
        seed=seed,
    )
