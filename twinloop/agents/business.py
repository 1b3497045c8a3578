"""The business agent: the decision threshold of the existing model, chosen for money, not accuracy.

A right decision lifts a customer's conversion by the same factor whatever its intent, so the
revenue of a policy grows with its hit rate weighted by what a right decision is worth in each
segment (conversion multiplier × order value). With ``params['policy'] = 'segment'`` (default) the
agent picks one threshold per segment — inside a segment the weight is constant, so there the
revenue optimum is also the accuracy optimum; with ``'global'`` one threshold for every segment,
where the value weights make the revenue optimum differ from the accuracy optimum. Hits are
expected hits on a sample the twin draws from its ground truth (P(intent), no label noise); a
threshold moves only when it beats the current one by a margin, and the new policy is then
*measured* against the current one in the twin on the business KPI. The model's weights never
change.
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
    scores: NDArray[np.float64],
    p_intent: NDArray[np.float64],
    threshold: float,
    weights: NDArray[np.float64] | None = None,
) -> float:
    """Mean P(decision right) at a threshold (weighted when ``weights`` are given)."""
    act = scores >= threshold
    hits = np.where(act, p_intent, 1.0 - p_intent)
    return float(np.average(hits, weights=weights))


def decision_values(env: BusinessEnvironment) -> NDArray[np.float64]:
    """What a right decision is worth per segment, relative: conversion multiplier × order value."""
    return np.array([s.conversion_multiplier * s.value for s in env.segments], dtype=np.float64)


def twin_sample(
    env: BusinessEnvironment, model: PredictorModel, seed: int, rows: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """(segment, P(intent), score) of a twin sample drawn from the ground truth."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB05]))
    shares = np.array([s.share for s in env.segments])
    segment = rng.choice(len(shares), size=rows, p=shares / shares.sum())
    means = np.array([s.feature_mean for s in env.segments], dtype=np.float64)
    stds = np.array([s.feature_std for s in env.segments], dtype=np.float64)
    x = means[segment] + stds[segment, None] * rng.standard_normal((rows, env.n_features))
    p = intent_probability(env, x, segment)
    scores = np.asarray(load_predictor(model).predict(predictor_features(env, x, segment)))
    return segment, p, scores


def best_thresholds(
    env: BusinessEnvironment, model: PredictorModel, seed: int, rows: int = SAMPLE_ROWS
) -> dict[str, float]:
    """Per segment, the grid threshold with the most expected hits (there, most revenue)."""
    segment, p, scores = twin_sample(env, model, seed, rows)
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


def best_global_threshold(
    env: BusinessEnvironment, model: PredictorModel, seed: int, rows: int = SAMPLE_ROWS
) -> float | None:
    """One threshold for every segment, maximising value-weighted hits (None: keep the current).

    Across segments a right decision is worth different money, so this is where the revenue
    optimum and the accuracy optimum part ways.
    """
    segment, p, scores = twin_sample(env, model, seed, rows)
    weights = decision_values(env)[segment]
    now = expected_hits(scores, p, model.threshold, weights)
    gains = [expected_hits(scores, p, t, weights) - now for t in GRID]
    best = int(np.argmax(gains))
    return GRID[best] if gains[best] > MIN_GAIN else None


def policy_model(
    env: BusinessEnvironment, model: PredictorModel, seed: int, policy: str
) -> PredictorModel | None:
    """The model with the new decision policy (None when no threshold is worth moving)."""
    name = f"{model.name}-policy"
    if policy == "global":
        threshold = best_global_threshold(env, model, seed)
        if threshold is None:
            return None
        return model.model_copy(update={"name": name, "threshold": threshold})
    if policy != "segment":
        raise InvalidInput("context.params.policy", f"'segment' or 'global', got {policy!r}")
    moved = best_thresholds(env, model, seed)
    if not moved:
        return None
    merged = {**model.segment_thresholds, **moved}
    return model.model_copy(update={"name": name, "segment_thresholds": merged})


class BusinessAgent:
    """Threshold policy for the business KPI; proposes it only when the twin confirms a gain."""

    kind = "business"

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]:
        model = context.model
        if not isinstance(model, PredictorModel):
            raise InvalidInput("context.model", "the business agent needs a predictor (scores)")
        env = environment_of(context)
        policy = policy_model(
            env, model, context.seed, str(context.params.get("policy", "segment"))
        )
        if policy is None:
            return []
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
                details={
                    "threshold": policy.threshold,
                    "segment_thresholds": policy.segment_thresholds,
                    "model_accuracy": list(accuracy),
                },
            )
        ]
