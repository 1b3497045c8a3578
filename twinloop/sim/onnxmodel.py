"""`OnnxPredictor`: an ONNX artifact loaded with onnxruntime into the twin's predictor protocol.

ONNX is the exchange format scikit-learn (``skl2onnx``), XGBoost, LightGBM and PyTorch export to,
and loading it runs no user code — unlike a pickle, which is why models from outside travel this
way. The graph must take one float tensor ``[N, d]`` (the twin's predictor features: the
environment's ``d`` features then a one-hot of the segment) and return P(class 1): either a
probability tensor ``[N, 2]`` (column 1 is used), ``[N, 1]`` or ``[N]``, or scikit-learn's ZipMap
output (a list of ``{label: probability}``). A session runs on one thread: the sandbox gives each
worker one CPU, and a single-threaded kernel sums in a fixed order, so scores are reproducible.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from threading import Lock
from typing import Any, Final

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from twinloop.errors import InvalidInput

_FLOAT_TYPES: Final = {"tensor(float)": np.float32, "tensor(double)": np.float64}
_CACHE_SIZE: Final = 16  # sessions kept per process: a championship holds a handful of models


def sha256_hex(content: bytes) -> str:
    """The artifact's content address."""
    return hashlib.sha256(content).hexdigest()


def _pick_output(session: ort.InferenceSession, field: str) -> tuple[str, bool]:
    """(output name, is_zipmap): the probability output, preferring the last suitable one."""
    for out in reversed(session.get_outputs()):
        if out.type.startswith("seq(map("):
            return out.name, True
        if out.type in _FLOAT_TYPES and len(out.shape) in (1, 2):
            return out.name, False
    types = [f"{o.name}: {o.type}" for o in session.get_outputs()]
    raise InvalidInput(field, f"the ONNX graph has no probability output, only {types}")


class OnnxPredictor:
    """Scores the twin's feature matrix with an ONNX graph; ``predict`` returns P(class 1).

    Invariant: ``n_features`` is the graph's declared input width, or None when the graph leaves
    it symbolic (then the first call with the wrong width fails in onnxruntime, named below).
    """

    def __init__(self, content: bytes, *, field: str = "model.sha256") -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: a worker's log is not a place for warnings
        try:
            self._session = ort.InferenceSession(
                content, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own unrelated classes per failure
            raise InvalidInput(field, f"not a loadable ONNX model: {_first_line(exc)}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].type not in _FLOAT_TYPES or len(inputs[0].shape) != 2:
            found = [f"{i.name}: {i.type}{i.shape}" for i in inputs]
            raise InvalidInput(
                field, f"the ONNX graph must take one float tensor [N, d], has {found}"
            )
        self._input = inputs[0].name
        self._dtype = _FLOAT_TYPES[inputs[0].type]
        width = inputs[0].shape[1]
        self.n_features: int | None = width if isinstance(width, int) else None
        self._output, self._zipmap = _pick_output(self._session, field)
        self.field = field

    def check_features(self, expected: int, field: str) -> None:
        """Refuse a graph whose input width differs from the environment's feature count."""
        if self.n_features is not None and self.n_features != expected:
            raise InvalidInput(
                field,
                f"the ONNX model takes {self.n_features} features but the environment gives "
                f"{expected} (its features then a one-hot of the segments)",
            )

    def predict(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        x = np.ascontiguousarray(features, dtype=self._dtype)
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        try:
            (out,) = self._session.run([self._output], {self._input: x})
        except Exception as exc:  # a shape the graph refuses: name the model, not the kernel
            raise InvalidInput(self.field, f"the ONNX model failed: {_first_line(exc)}") from exc
        if self._zipmap:
            return np.array([row.get(1, row.get("1", 0.0)) for row in out], dtype=np.float64)
        scores = np.asarray(out, dtype=np.float64)
        if scores.ndim == 2:
            scores = scores[:, 1] if scores.shape[1] >= 2 else scores[:, 0]
        return scores


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


_sessions: OrderedDict[str, OnnxPredictor] = OrderedDict()
_sessions_lock = Lock()


def load_onnx(sha256: str, content: bytes, *, field: str = "model.sha256") -> OnnxPredictor:
    """The predictor for an artifact, built once per process (a replicate rebuilds its models).

    The key is the content hash, checked here, so a cached session can only be served for the
    very bytes it was built from.
    """
    if sha256_hex(content) != sha256:
        raise InvalidInput(field, f"the artifact bytes do not hash to {sha256}")
    with _sessions_lock:
        found = _sessions.get(sha256)
        if found is not None:
            _sessions.move_to_end(sha256)
            return found
    predictor = OnnxPredictor(content, field=field)
    with _sessions_lock:
        _sessions[sha256] = predictor
        while len(_sessions) > _CACHE_SIZE:
            _sessions.popitem(last=False)
    return predictor


def describe(content: bytes, *, field: str = "artifact") -> dict[str, Any]:
    """Load an upload once to check it and say what it takes: its hash and input width."""
    predictor = OnnxPredictor(content, field=field)
    return {"sha256": sha256_hex(content), "n_features": predictor.n_features}
