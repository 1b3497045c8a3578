"""The business agent: the decision threshold of the existing model, chosen for money, not accuracy.

What a decision is worth depends on its confusion cell (``Transaction.decision_effects``: acting
on an intending customer wins a sale, acting on one without intent gives an offer away, holding
back from one with intent misses a sale), and on the segment (conversion multiplier × order
value). On a twin sample drawn from the ground truth (P(intent), so no label noise) the agent
scores each grid threshold by its expected revenue — the mean expected multiplier of the
decision target, value-weighted across segments — and by its expected accuracy, and picks the
most revenue among the thresholds whose accuracy is within ``accuracy_tolerance`` (default
0.5 pp) of the current policy's. Near the accuracy optimum accuracy is flat in the threshold
while revenue moves at first order when the effects are asymmetric: a lever that needs no
retraining. With symmetric effects, revenue rises with the hit rate, so inside a segment the
revenue optimum is the accuracy optimum and an accuracy-optimal threshold stays put.

``params['policy'] = 'segment'`` (default) chooses one threshold per segment, each within the
tolerance in its own segment (so overall too); ``'global'`` one threshold for every segment. A
threshold moves only when its expected revenue beats the current one by ``MIN_GAIN`` (relative).
The new policy is then *measured* against the current one in the twin (common random numbers):
it is proposed only when the KPI's paired interval lies above 0 and the estimate of the paired
accuracy difference is not below −tolerance. The model's weights never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinloop.agents.protocol import AgentContext, Candidate
from twinloop.agents.twin import compare, environment_of, kpi_mean
from twinloop.errors import InvalidInput
from twinloop.sandbox.results import HeadToHeadResult
from twinloop.sim.effects import expected_multiplier
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.groundtruth import intent_probability, predictor_features
from twinloop.sim.models import PredictorModel, load_predictor
from twinloop.strategy.models import Action

GRID = tuple(float(t) for t in np.round(np.linspace(0.0, 1.0, 21), 2))
SAMPLE_ROWS = 20_000
MIN_GAIN = 0.002  # relative expected-revenue gain a threshold must show to move (noise guard)
ACCURACY_TOLERANCE = 0.005  # share of right decisions a policy may give up (0.5 pp)


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


def expected_revenue(
    env: BusinessEnvironment,
    scores: NDArray[np.float64],
    p_intent: NDArray[np.float64],
    threshold: float,
    weights: NDArray[np.float64] | None = None,
) -> float:
    """Revenue at a threshold, relative: the mean expected multiplier of the decision target
    (value-weighted when ``weights`` are given); first order, satisfaction held fixed."""
    gain = expected_multiplier(env.transaction, scores >= threshold, p_intent)
    return float(np.average(gain, weights=weights))


def decision_values(env: BusinessEnvironment) -> NDArray[np.float64]:
    """What a decision's multiplier is worth per segment, relative: conversion × order value."""
    return np.array([s.conversion_multiplier * s.value for s in env.segments], dtype=np.float64)


def best_threshold(
    env: BusinessEnvironment,
    scores: NDArray[np.float64],
    p_intent: NDArray[np.float64],
    current: float,
    tolerance: float,
    weights: NDArray[np.float64] | None = None,
) -> float | None:
    """The grid threshold with the most expected revenue among those whose expected accuracy is
    within ``tolerance`` of the current threshold's (None: none beats the current by MIN_GAIN)."""
    floor = expected_hits(scores, p_intent, current) - tolerance
    now = expected_revenue(env, scores, p_intent, current, weights)
    value = np.array([expected_revenue(env, scores, p_intent, t, weights) for t in GRID])
    feasible = np.array([expected_hits(scores, p_intent, t) >= floor for t in GRID])
    best = int(np.argmax(np.where(feasible, value, -np.inf)))
    return GRID[best] if value[best] > now + MIN_GAIN * abs(now) else None


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
    env: BusinessEnvironment,
    model: PredictorModel,
    seed: int,
    rows: int = SAMPLE_ROWS,
    tolerance: float = ACCURACY_TOLERANCE,
) -> dict[str, float]:
    """Per segment, the threshold with the most revenue within the accuracy tolerance (moved
    segments only)."""
    segment, p, scores = twin_sample(env, model, seed, rows)
    current = model.thresholds([s.name for s in env.segments])
    chosen: dict[str, float] = {}
    for i, seg in enumerate(env.segments):
        mine = segment == i
        if mine.any():
            best = best_threshold(env, scores[mine], p[mine], float(current[i]), tolerance)
            if best is not None:
                chosen[seg.name] = best
    return chosen


def best_global_threshold(
    env: BusinessEnvironment,
    model: PredictorModel,
    seed: int,
    rows: int = SAMPLE_ROWS,
    tolerance: float = ACCURACY_TOLERANCE,
) -> float | None:
    """One threshold for every segment (None: keep the current). Across segments a decision is
    worth different money, so revenue is weighted by each segment's value; accuracy is not."""
    segment, p, scores = twin_sample(env, model, seed, rows)
    weights = decision_values(env)[segment]
    return best_threshold(env, scores, p, model.threshold, tolerance, weights)


def policy_model(
    env: BusinessEnvironment,
    model: PredictorModel,
    seed: int,
    policy: str,
    tolerance: float = ACCURACY_TOLERANCE,
) -> PredictorModel | None:
    """The model with the new decision policy (None when no threshold is worth moving)."""
    name = f"{model.name}-policy"
    if policy == "global":
        threshold = best_global_threshold(env, model, seed, tolerance=tolerance)
        if threshold is None:
            return None
        return model.model_copy(update={"name": name, "threshold": threshold})
    if policy != "segment":
        raise InvalidInput("context.params.policy", f"'segment' or 'global', got {policy!r}")
    moved = best_thresholds(env, model, seed, tolerance=tolerance)
    if not moved:
        return None
    merged = {**model.segment_thresholds, **moved}
    return model.model_copy(update={"name": name, "segment_thresholds": merged})


def accuracy_tolerance(params: Mapping[str, Any]) -> float:
    """``params['accuracy_tolerance']`` (share of right decisions, in [0, 1]) or the default."""
    value = params.get("accuracy_tolerance", ACCURACY_TOLERANCE)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInput("context.params.accuracy_tolerance", f"a share in [0, 1], got {value!r}")
    return float(value)


def accuracy_difference(result: HeadToHeadResult) -> dict[str, float]:
    """The twin's paired accuracy difference (policy − current) with its interval."""
    diff = next(d for d in result.differences if d.kpi == "model_accuracy")
    return {"estimate": diff.difference, "lower": diff.lower, "upper": diff.upper}


class BusinessAgent:
    """Threshold policy for the business KPI; proposes it only when the twin confirms a gain."""

    kind = "business"

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]:
        model = context.model
        if not isinstance(model, PredictorModel):
            raise InvalidInput("context.model", "the business agent needs a predictor (scores)")
        env = environment_of(context)
        tolerance = accuracy_tolerance(context.params)
        policy_name = str(context.params.get("policy", "segment"))
        policy = policy_model(env, model, context.seed, policy_name, tolerance)
        if policy is None:
            return []
        evidence, result = compare(context, model, policy)
        accuracy = accuracy_difference(result)
        if evidence.difference.lower <= 0 or accuracy["estimate"] < -tolerance:
            return []
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
                    "model_accuracy": [
                        kpi_mean(result, "model_accuracy", 0),
                        kpi_mean(result, "model_accuracy", 1),
                    ],
                    "accuracy_difference": accuracy,
                    "accuracy_tolerance": tolerance,
                },
            )
        ]
