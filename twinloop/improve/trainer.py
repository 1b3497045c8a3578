"""The trainer contract: an import path ``train(config, data, seed) -> model`` and its checks.

A family's trainer is a plain function named ``module:function``. It receives the recipe's
``config`` (``l2`` plus the recipe's ``params``), the :class:`TrainingData` after the recipe's
reweighting, and a seed, and returns either ONNX bytes (what scikit-learn, XGBoost, LightGBM and
PyTorch export to) or a :class:`PredictorModel` (an allow-listed import path with JSON params).
Everything a trainer can get wrong is caught here with the field named: a path that does not
import (``trainer``), a trainer that raises (``trainer``, with the recipe), an output of another
type (``trainer.output``), scores of the wrong shape or range (``trainer.output``). The recipe's
decision threshold is then folded into the model, so the twin's ``score >= 0.5`` acts at it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.improve.data import TrainingData
from twinloop.improve.recipe import Recipe, apply_recipe
from twinloop.sim.models import ModelSpec, OnnxModel, PredictorModel, load_predictor
from twinloop.sim.onnxmodel import sha256_hex

TrainerFn = Callable[[dict[str, Any], TrainingData, int], Any]
PATH_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
PROBE_ROWS = 256


class TrainerFailed(InvalidInput):
    """A trainer raised; the message names the trainer, the recipe and the original error.

    Picklable (rebuilt from its message), so it crosses a Ray worker boundary intact.
    """

    def __init__(self, message: str) -> None:
        super().__init__("trainer", message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TrainerFailed, (self.message,))


class Operational(FrozenModel):
    """The serving-stack fields a trained model inherits from its champion (latency, cost)."""

    latency_p50_ms: float = 100.0
    latency_p95_ms: float = 200.0
    cost_per_call: float = 0.0


def load_trainer(import_path: str) -> TrainerFn:
    """Import ``module:function``; InvalidInput("trainer") when it is not a callable there."""
    if not isinstance(import_path, str) or not re.match(PATH_PATTERN, import_path):
        raise InvalidInput(
            "trainer", f"must look like 'package.module:function', got {import_path!r}"
        )
    module_name, _, attr = import_path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput("trainer", f"cannot import module {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidInput("trainer", f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidInput("trainer", f"{import_path} is not callable")
    return obj  # type: ignore[no-any-return]


def _with_threshold(model: ModelSpec, threshold: float) -> ModelSpec:
    """Set the decision threshold: the predictor's own ``threshold`` field (the twin acts at
    ``score >= threshold``), or a few ONNX nodes so ``score >= 0.5`` means ``p >= threshold``."""
    if threshold == 0.5:
        return model
    if isinstance(model, OnnxModel):
        from twinloop.improve.onnxexport import shift_threshold  # onnx costs ~1 s to import

        assert model.content is not None
        content = shift_threshold(model.content, threshold)
        return model.model_copy(update={"sha256": sha256_hex(content), "content": content})
    if isinstance(model, PredictorModel):
        return model.model_copy(update={"threshold": threshold})
    raise InvalidInput("recipe.threshold", "a threshold needs an ONNX model or a predictor")


def _to_model(output: Any, name: str, ops: Operational) -> ModelSpec:
    fields = ops.model_dump()
    if isinstance(output, bytes | bytearray):
        content = bytes(output)
        return OnnxModel(name=name, sha256=sha256_hex(content), content=content, **fields)
    if isinstance(output, PredictorModel):
        return output.model_copy(update={"name": name, **fields})
    raise InvalidInput(
        "trainer.output",
        f"must be ONNX bytes or a PredictorModel, got {type(output).__name__}",
    )


def check_scores(model: ModelSpec, data: TrainingData) -> None:
    """Score a probe of the training rows: one finite score in [0, 1] per row."""
    assert isinstance(model, PredictorModel | OnnxModel)
    probe = data.features[: min(PROBE_ROWS, data.n)]
    try:
        scores = np.asarray(load_predictor(model).predict(probe), dtype=np.float64)
    except InvalidInput as exc:
        raise InvalidInput("trainer.output", exc.message) from exc
    if scores.shape != (probe.shape[0],):
        raise InvalidInput(
            "trainer.output",
            f"the model returned scores of shape {scores.shape} for {probe.shape[0]} rows; "
            f"expected ({probe.shape[0]},)",
        )
    if not np.all(np.isfinite(scores)) or scores.min() < 0.0 or scores.max() > 1.0:
        raise InvalidInput("trainer.output", "scores must be finite and in [0, 1]")


def train_model(
    trainer: str,
    recipe: Recipe,
    data: TrainingData,
    seed: int,
    operational: Operational | None = None,
) -> ModelSpec:
    """Apply the recipe, run the trainer, check its output, fold in the threshold."""
    fn = load_trainer(trainer)
    prepared = apply_recipe(data, recipe, seed)
    try:
        output = fn(recipe.trainer_config(), prepared, seed)
    except InvalidInput:
        raise
    except Exception as exc:  # a user's trainer may raise anything: name it and the recipe
        raise TrainerFailed(
            f"{trainer} raised {type(exc).__name__}: {exc} "
            f"(recipe {recipe.name!r}: {recipe.model_dump_json()})"
        ) from exc
    model = _to_model(output, recipe.name, operational or Operational())
    check_scores(model, data)
    return _with_threshold(model, recipe.threshold)
