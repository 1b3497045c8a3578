"""The twin's ground truth: each customer's intent, against which real predictors are scored.

Intent is a Bernoulli draw with logit ``w_seg · x + b_seg``. A predictor sees the feature matrix
``[x, one_hot(segment)]`` (see :func:`predictor_features`) and its decision ``score >= threshold``
(0.5 unless the model sets one) is right when it equals the intent. Segments may carry their own
truth weights, so a model trained on data that under-represents a segment can be measurably wrong
there.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelSpec, Predictor, PredictorModel


def truth_tables(env: BusinessEnvironment) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-segment truth weights (S × d) and biases (S)."""
    weights = np.array(
        [s.truth_weights or env.truth_weights for s in env.segments], dtype=np.float64
    )
    biases = np.array([s.truth_bias for s in env.segments], dtype=np.float64)
    return weights, biases


def intent_probability(
    env: BusinessEnvironment, features: NDArray[np.floating], segment: NDArray[np.integer]
) -> NDArray[np.float64]:
    """P(intent = 1) for each customer."""
    weights, biases = truth_tables(env)
    logit = np.einsum("ij,ij->i", features, weights[segment]) + biases[segment]
    prob: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-logit))
    return prob


def predictor_features(
    env: BusinessEnvironment, features: NDArray[np.floating], segment: NDArray[np.integer]
) -> NDArray[np.float64]:
    """The matrix a predictor receives: the d features then a one-hot of the segment."""
    one_hot = np.zeros((segment.size, len(env.segments)), dtype=np.float64)
    one_hot[np.arange(segment.size), segment] = 1.0
    return np.hstack([features.astype(np.float64, copy=False), one_hot])


def sample_customers(
    env: BusinessEnvironment,
    n: int,
    rng: np.random.Generator,
    segment_weights: dict[str, float] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Labelled training data: (predictor features, intent labels, segment index).

    ``segment_weights`` re-weights the segment mix (e.g. ``{"enterprise": 0.1}`` keeps a tenth of
    that segment's natural share) to build a training set that under-represents a segment.
    """
    shares = np.array([s.share for s in env.segments], dtype=np.float64)
    if segment_weights:
        for name, weight in segment_weights.items():
            shares[env.segment_index(name)] *= weight
    shares = shares / shares.sum()
    segment = rng.choice(len(shares), size=n, p=shares)
    means = np.array([s.feature_mean for s in env.segments], dtype=np.float64)
    stds = np.array([s.feature_std for s in env.segments], dtype=np.float64)
    x = means[segment] + stds[segment, None] * rng.standard_normal((n, env.n_features))
    label = (rng.random(n) < intent_probability(env, x, segment)).astype(np.int64)
    return predictor_features(env, x, segment), label, segment


def decision_thresholds(env: BusinessEnvironment, model: ModelSpec) -> NDArray[np.float64] | None:
    """Per-segment decision thresholds of a predictor (None for a profile: it has no scores)."""
    if not isinstance(model, PredictorModel):
        return None
    return model.thresholds([s.name for s in env.segments])


def predictor_hits(
    env: BusinessEnvironment,
    predictor: Predictor,
    name: str,
    x: NDArray[np.float32],
    segment: NDArray[np.integer],
    intent: NDArray[np.bool_],
    thresholds: NDArray[np.float64] | None = None,
) -> NDArray[np.bool_]:
    """Whether each decision (``score >= threshold`` of the segment) equals the customer's intent.

    ``thresholds`` holds one decision threshold per segment (None: 0.5 everywhere, the default
    policy); a business policy moves it without retraining the model.
    """
    feats = predictor_features(env, x, segment)
    scores = np.asarray(predictor.predict(feats), dtype=np.float64).reshape(-1)
    if scores.size != feats.shape[0]:
        raise ValueError(
            f"predictor of {name!r} returned {scores.size} scores for {feats.shape[0]} rows"
        )
    cut = 0.5 if thresholds is None else thresholds[segment]
    hits: NDArray[np.bool_] = (scores >= cut) == intent
    return hits
