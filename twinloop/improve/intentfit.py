"""Fit the twin's decision layer — who intends to buy, per segment — from a labelled sample.

A KPI history says how much a business sells, never *who* would buy: the twin's ground-truth
intent model (``Segment.truth_weights`` / ``truth_bias``, see ``twinloop.sim.groundtruth``) must
come from labelled production decisions (features, segment, outcome) or every win-rate the twin
measures is a statement about its preset. One penalised logistic regression with segment ×
feature interactions is exactly the twin's intent family, so its per-segment slopes and
intercepts *are* truth weights: slope_s = w_x + w_{s×x}, bias_s = b + w_{one-hot s}. The
regularisation is chosen by k-fold cross-validated log-loss, not per case.
"""

from __future__ import annotations

import numpy as np

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.improve.data import TrainingData
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.predictor import LogisticPredictor

L2_GRID = (0.01, 0.1, 1.0, 10.0)
FOLDS = 4


class IntentFit(FrozenModel):
    """The fitted decision layer and how it was chosen."""

    environment: BusinessEnvironment
    l2: float
    cv_log_loss: dict[str, float]
    rows: int
    rows_per_segment: dict[str, int]


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _cv_loss(data: TrainingData, l2: float, seed: int) -> float:
    folds = (
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(31,))).permutation(data.n)
        % FOLDS
    )
    losses = []
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        model = LogisticPredictor(interactions=True, l2=l2).fit(
            data.features[train], data.label[train], data.n_base
        )
        losses.append(_log_loss(model.predict(data.features[test]), data.label[test]))
    return float(np.mean(losses))


def fit_intent(env: BusinessEnvironment, sample: TrainingData, seed: int = 0) -> IntentFit:
    """``env`` with each segment's truth weights and bias fitted from the labelled sample."""
    names = tuple(s.name for s in env.segments)
    if sample.segment_names != names or sample.n_base != env.n_features:
        raise InvalidInput(
            "sample", f"rows are laid out for segments {sample.segment_names}, env has {names}"
        )
    counts = np.bincount(sample.segment, minlength=len(names))
    missing = [n for n, c in zip(names, counts, strict=True) if c < 20]
    if missing:
        raise InvalidInput(
            "sample", f"needs at least 20 labelled rows per segment; short: {missing}"
        )
    losses = {str(l2): _cv_loss(sample, l2, seed) for l2 in L2_GRID}
    l2 = min(L2_GRID, key=lambda v: (losses[str(v)], v))
    model = LogisticPredictor(interactions=True, l2=l2).fit(
        sample.features, sample.label, sample.n_base
    )
    assert model.weights is not None
    d, n_seg = env.n_features, len(names)
    w = model.weights
    base, one_hot, products = w[:d], w[d : d + n_seg], w[d + n_seg :].reshape(n_seg, d)
    segments = [
        seg.model_copy(
            update={
                "truth_weights": [float(v) for v in base + products[i]],
                "truth_bias": float(model.bias + one_hot[i]),
            }
        )
        for i, seg in enumerate(env.segments)
    ]
    fitted = env.model_copy(update={"segments": segments, "name": f"{env.name}-fitted"})
    return IntentFit(
        environment=BusinessEnvironment.model_validate(fitted.model_dump()),
        l2=l2,
        cv_log_loss=losses,
        rows=sample.n,
        rows_per_segment={n: int(c) for n, c in zip(names, counts, strict=True)},
    )
