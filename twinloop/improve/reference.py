"""Reference trainers a user would recognise, each ``train(config, data, seed) -> model``.

- :func:`logistic` — the twin's own numpy/scipy ``LogisticPredictor`` (returns a predictor spec:
  plain JSON weights, no extra dependency).
- :func:`sklearn_logistic` — scikit-learn ``LogisticRegression`` on segment × feature
  interactions, exported to ONNX.
- :func:`sklearn_hgb` — scikit-learn ``HistGradientBoostingClassifier``, exported to ONNX.

``config`` carries ``l2`` (the recipe's regularisation) and the recipe's ``params``. The ONNX
trainers need the optional extra ``sklearn``; they import it when called, so the core stays
importable without it. Each is a model for a user's own trainer (see docs/retraining.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinloop.improve.data import TrainingData
from twinloop.sim.models import PredictorModel
from twinloop.sim.predictor import LogisticPredictor

LOGISTIC = "twinloop.improve.reference:logistic"
SKLEARN_LOGISTIC = "twinloop.improve.reference:sklearn_logistic"
SKLEARN_HGB = "twinloop.improve.reference:sklearn_hgb"
PREDICTOR_PATH = "twinloop.sim.predictor:LogisticPredictor"


def logistic(config: dict[str, Any], data: TrainingData, seed: int) -> PredictorModel:
    """L2 logistic regression with per-segment slopes (deterministic: ``seed`` is unused)."""
    fitted = LogisticPredictor(
        interactions=bool(config.get("interactions", True)), l2=float(config.get("l2", 1.0))
    ).fit(data.features, data.label, data.n_base, data.weight)
    return PredictorModel(name="logistic", import_path=PREDICTOR_PATH, params=fitted.to_params())


def _interactions(n_base: int, n_total: int) -> Any:
    """Segment one-hot × customer features, the columns a linear model needs per-segment slopes."""
    from sklearn.preprocessing import PolynomialFeatures

    del n_base, n_total  # all pairwise products; the segment × feature ones carry the signal
    return PolynomialFeatures(degree=2, interaction_only=True, include_bias=False)


def sklearn_logistic(config: dict[str, Any], data: TrainingData, seed: int) -> bytes:
    """scikit-learn LogisticRegression (C = 1 / l2) on interactions, as ONNX bytes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from twinloop.improve.onnxexport import export_classifier  # onnx costs ~1 s to import

    n_total = data.features.shape[1]
    model = make_pipeline(
        _interactions(data.n_base, n_total),
        LogisticRegression(
            C=1.0 / float(config.get("l2", 1.0)),
            max_iter=int(config.get("max_iter", 500)),
            random_state=seed,
        ),
    )
    model.fit(data.features, data.label, logisticregression__sample_weight=data.weight)
    return export_classifier(model, n_total)


def sklearn_hgb(config: dict[str, Any], data: TrainingData, seed: int) -> bytes:
    """scikit-learn HistGradientBoostingClassifier, as ONNX bytes."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from twinloop.improve.onnxexport import export_classifier

    model = HistGradientBoostingClassifier(
        l2_regularization=float(config.get("l2", 1.0)),
        max_iter=int(config.get("max_iter", 100)),
        learning_rate=float(config.get("learning_rate", 0.1)),
        max_depth=None if config.get("max_depth") is None else int(config["max_depth"]),
        random_state=int(np.uint32(seed % 2**32)),
        early_stopping=False,
    )
    model.fit(data.features, data.label, sample_weight=data.weight)
    return export_classifier(model, data.features.shape[1])
