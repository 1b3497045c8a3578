"""The business agent: the decision threshold of the existing model, chosen for money, not accuracy.

A right decision lifts a customer's conversion by the same factor whatever its intent, so in one
segment the revenue of a threshold grows with its hit rate there, weighted by what a conversion is
worth in that segment (conversion multiplier × order value). The agent therefore picks, per
segment, the threshold with the most value-weighted expected hits on a labelled sample the twin
draws from its ground truth (expected hits use P(intent), not a noisy label), keeps the current
threshold unless another beats it by a margin, and then *measures* the new policy against the
current one in the twin on the business KPI. The model's weights never change.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from twinloop.agents.protocol import AgentContext, Candidate
from twinloop.agents.twin import compare, environment_of, kpi_mean
from twinloop.errors import InvalidInput
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.groundtruth import intent_probability, predictor_features
from twinloop.sim.models import PredictorModel, load_predictor
from twinloop.strategy.models import Action

GRID = tuple(float(t) for t in np.round(np.linspace(0.0, 1.0, 21), 2))
SAMPLE_ROWS = 20_000
MIN_GAIN = 0.002  # hit-rate gain a segment's threshold must show to move (noise guard)


def expected_hits(
    scores: NDArray[np.float64], p_intent: NDArray[np.float64], threshold: float
) -> float:
    """Mean P(decision right) at a threshold: P(intent) where we act, 1 − P(intent) elsewhere."""
    act = scores >= threshold
    return float(np.mean(np.where(act, p_intent, 1.0 - p_intent)))


def best_thresholds(
    env: BusinessEnvironment, model: PredictorModel, seed: int, rows: int = SAMPLE_ROWS
) -> dict[str, float]:
    """Per segment, the grid threshold with the most expected hits (value-weighted in revenue)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB05]))
    shares = np.array([s.share for s in env.segments])
    segment = rng.choice(len(shares), size=rows, p=shares / shares.sum())
    means = np.array([s.feature_mean for s in env.segments], dtype=np.float64)
    stds = np.array([s.feature_std for s in env.segments], dtype=np.float64)
    x = means[segment] + stds[segment, None] * rng.standard_normal((rows, env.n_features))
    p = intent_probability(env, x, segment)
    scores = np.asarray(load_predictor(model).predict(predictor_features(env, x, segment)))
    current = model.thresholds([s.name for s in env.segments])
    chosen: dict[str, float] = {}
    for i, seg in enumerate(env.segments):
        mine = segment == i
        if not mine.any():
            continue
        now = expected_hits(scores[mine], p[mine], float(current[i]))
        gains = [expected_hits(scores[mine], p[mine], t) - now for t in GRID]
        best = int(np.argmax(gains))
        if gains[best] > MIN_GAIN:
            chosen[seg.name] = GRID[best]
    return chosen


class BusinessAgent:
    """Threshold policy for the business KPI; proposes it only when the twin confirms a gain."""

    kind = "business"

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]:
        model = context.model
        if not isinstance(model, PredictorModel):
            raise InvalidInput("context.model", "the business agent needs a predictor (scores)")
        env = environment_of(context)
        moved = best_thresholds(env, model, context.seed)
        if not moved:
            return []
        policy = model.model_copy(
            update={
                "name": f"{model.name}-policy",
                "segment_thresholds": {**model.segment_thresholds, **moved},
            }
        )
        evidence, result = compare(context, model, policy)
        if evidence.difference.lower <= 0:
            return []
        accuracy = (kpi_mean(result, "model_accuracy", 0), kpi_mean(result, "model_accuracy", 1))
        return [
            Candidate(
                name=policy.name,
                agent=self.kind,
                action_id=action.id,
                model=policy,
                evidence=evidence,
                details={"segment_thresholds": moved, "model_accuracy": list(accuracy)},
            )
        ]
