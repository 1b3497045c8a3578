"""A user's own trainer for `twinloop retrain`: a random forest, handed over as ONNX.

The contract is one function, ``train(config, data, seed)``:

- ``config``: the recipe's ``l2`` plus its ``params`` (here ``trees`` and ``min_leaf``);
- ``data``: ``twinloop.improve.data.TrainingData`` — ``features`` (the twin's predictor matrix:
  the customer features, then a one-hot of the segment), ``label`` (0/1), ``segment``,
  ``weight`` (row weights from the recipe's segment reweighting, or None);
- ``seed``: use it for every random choice, so a search is reproducible.

Return ONNX bytes (or a ``PredictorModel``). The loop checks the output, folds in the
recipe's decision threshold, and judges the model in the twin.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier


def train(config: dict[str, Any], data: Any, seed: int) -> bytes:
    forest = RandomForestClassifier(
        n_estimators=int(config.get("trees", 40)),
        min_samples_leaf=int(config.get("min_leaf", 20)),
        random_state=seed % 2**32,
        n_jobs=1,
    )
    forest.fit(data.features, data.label, sample_weight=data.weight)
    sample = data.features[:1].astype(np.float32)
    onnx_model = to_onnx(forest, sample, options={"zipmap": False})
    return bytes(onnx_model.SerializeToString())
