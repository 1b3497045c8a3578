"""Export a fitted scikit-learn classifier to ONNX bytes with one output: the score P(act).

skl2onnx turns the estimator into a graph whose second output is the class probabilities; we
append nodes that keep P(class 1) as the one output ``score``. :func:`shift_threshold` moves a
recipe's decision threshold ``t`` into the graph (``score >= 0.5`` iff ``p >= t``), so the
artifact carries its own threshold and needs no Python to run: the twin and Serve load it
without executing user code. scikit-learn and skl2onnx are the optional extra ``sklearn``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from twinloop.errors import InvalidInput

OPSET = 17
INPUT = "features"
OUTPUT = "score"


@contextmanager
def _hgb_bool_fix() -> Iterator[None]:
    """skl2onnx 1.20 passes a Python bool for a leaf's missing-value flag; onnx ≥ 1.20 rejects it.

    The converter looks ``add_node`` up as a module global at call time, so wrapping it for the
    duration of one conversion casts the flag to int without touching anything else.
    """
    from skl2onnx.common import tree_ensemble

    original: Callable[..., Any] = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kw: Any) -> Any:
        return original(
            *args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kw
        )

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def _const(graph: Any, name: str, value: float | list[int]) -> None:
    if isinstance(value, list):
        graph.initializer.append(helper.make_tensor(name, TensorProto.INT64, [len(value)], value))
    else:
        graph.initializer.append(helper.make_tensor(name, TensorProto.FLOAT, [], [value]))


def _set_output(graph: Any, name: str) -> None:
    while len(graph.output):
        graph.output.pop()
    graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None]))


def _score_tensor(graph: Any, prefix: str) -> str:
    """Name of a 1-D P(class 1) tensor: the last float output, column 1 of a [N, 2] matrix.

    The same choice as the twin's ``OnnxPredictor`` makes, so the shifted score is the score.
    """

    for out in reversed(graph.output):
        tensor = out.type.tensor_type
        if not out.type.HasField("tensor_type") or tensor.elem_type != TensorProto.FLOAT:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if len(dims) == 1:
            return str(out.name)
        if len(dims) != 2:
            continue
        column = 1 if dims[1] is None or dims[1] >= 2 else 0
        for name, value in ((f"{prefix}_lo", [column]), (f"{prefix}_hi", [column + 1])):
            _const(graph, name, value)
        _const(graph, f"{prefix}_axis", [1])
        graph.node.extend(
            [
                helper.make_node(
                    "Slice",
                    [out.name, f"{prefix}_lo", f"{prefix}_hi", f"{prefix}_axis"],
                    [f"{prefix}_col"],
                ),
                helper.make_node("Squeeze", [f"{prefix}_col", f"{prefix}_axis"], [f"{prefix}_p"]),
            ]
        )
        return f"{prefix}_p"
    raise InvalidInput(
        "trainer.output",
        "the ONNX model has no float probability output (export with zipmap disabled)",
    )


def _append_score(model: Any) -> Any:
    """Keep P(class 1) of the probabilities output as the one 1-D output ``score``."""

    graph = model.graph
    score = _score_tensor(graph, "tl")
    graph.node.append(helper.make_node("Identity", [score], [OUTPUT]))
    _set_output(graph, OUTPUT)
    return model


def shift_threshold(artifact: bytes, threshold: float) -> bytes:
    """An ONNX scorer with one output whose ``score >= 0.5`` means ``P(class 1) >= threshold``.

    ``score = sigmoid(logit(p) − logit(t))``: monotone and in (0, 1), so ranking is unchanged.
    """

    if threshold == 0.5:
        return artifact
    try:
        model = onnx.load_from_string(artifact)
    except Exception as exc:  # onnx raises DecodeError and others; all mean "not ONNX"
        raise InvalidInput("trainer.output", f"not a readable ONNX model: {exc}") from exc
    graph = model.graph
    score, eps = _score_tensor(graph, "th_in"), 1e-7
    for name, value in (
        ("th_eps", eps),
        ("th_max", 1.0 - eps),
        ("th_unit", 1.0),
        ("th_shift", math.log(threshold / (1.0 - threshold))),
    ):
        _const(graph, name, value)
    graph.node.extend(
        [
            helper.make_node("Clip", [score, "th_eps", "th_max"], ["th_p"]),
            helper.make_node("Sub", ["th_unit", "th_p"], ["th_q"]),
            helper.make_node("Div", ["th_p", "th_q"], ["th_odds"]),
            helper.make_node("Log", ["th_odds"], ["th_logit"]),
            helper.make_node("Sub", ["th_logit", "th_shift"], ["th_shifted"]),
            helper.make_node("Sigmoid", ["th_shifted"], ["th_score"]),
        ]
    )
    _set_output(graph, "th_score")
    return bytes(model.SerializeToString())


def export_classifier(estimator: Any, n_features: int) -> bytes:
    """ONNX bytes of a fitted binary classifier (or pipeline ending in one)."""
    try:
        from skl2onnx import to_onnx
    except ImportError as exc:  # pragma: no cover - the extra is installed by make test
        raise InvalidInput(
            "trainer", "scikit-learn trainers need the extra: pip install 'twinloop[sklearn]'"
        ) from exc
    last = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if list(getattr(last, "classes_", [])) != [0, 1]:
        raise InvalidInput("trainer.output", "the classifier must be fitted on labels {0, 1}")
    sample = np.zeros((1, n_features), dtype=np.float32)
    with _hgb_bool_fix():
        model = to_onnx(
            estimator,
            sample,
            options={id(last): {"zipmap": False}},
            target_opset=OPSET,
            initial_types=None,
        )
    model.graph.input[0].name, old = INPUT, model.graph.input[0].name
    for node in model.graph.node:
        node.input[:] = [INPUT if i == old else i for i in node.input]
    return bytes(_append_score(model).SerializeToString())
