"""How a model under test enters the twin: a declared profile or a real predictor.

A **profile** declares accuracy, a latency distribution and a cost per call (optionally per
segment). A **predictor** is any importable object with ``predict(features) -> scores``; the twin
scores it against the environment's ground truth, so its accuracy emerges instead of being
declared. An **ONNX** model is an artifact addressed by its sha256, scored the same way through
onnxruntime. All share the operational fields (latency, cost) because those are properties of the
serving stack, not of the decision rule.
"""

from __future__ import annotations

import importlib
import math
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from pydantic import Discriminator, Field, Tag, model_validator
from pydantic.json_schema import SkipJsonSchema

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.sim.onnxmodel import load_onnx, sha256_hex

Z95 = 1.6448536269514722  # standard normal 95th percentile: p95 = p50·exp(σ·Z95)


@runtime_checkable
class Predictor(Protocol):
    """Anything with ``predict(features) -> scores``; scores in [0, 1], ≥ 0.5 means 'act'."""

    def predict(self, features: NDArray[np.float64]) -> NDArray[np.float64]: ...


class SegmentOverride(FrozenModel):
    """Per-segment deviations of a profile (a model that is worse on one segment)."""

    accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_p50_ms: float | None = Field(default=None, gt=0.0)
    latency_p95_ms: float | None = Field(default=None, gt=0.0)


class _Operational(FrozenModel):
    name: str = Field(default="model", min_length=1, max_length=128)
    latency_p50_ms: float = Field(default=100.0, gt=0.0, le=600_000.0, description="Median ms.")
    latency_p95_ms: float = Field(default=200.0, gt=0.0, le=600_000.0, description="95th pct ms.")
    cost_per_call: float = Field(default=0.0, ge=0.0, description="Money per model call.")

    @model_validator(mode="after")
    def _latency_order(self) -> _Operational:
        if self.latency_p95_ms < self.latency_p50_ms:
            raise ValueError("latency_p95_ms must be >= latency_p50_ms")
        return self

    @property
    def latency_sigma(self) -> float:
        """Log-normal sigma implied by p50 and p95."""
        return math.log(self.latency_p95_ms / self.latency_p50_ms) / Z95


class ModelProfile(_Operational):
    """A model described by its accuracy, latency and cost, optionally per segment."""

    type: Literal["profile"] = "profile"
    accuracy: float = Field(default=0.8, ge=0.0, le=1.0, description="P(decision is right).")
    segment_overrides: dict[str, SegmentOverride] = Field(default_factory=dict)


class PredictorModel(_Operational):
    """A real predictor, imported from ``module:attribute`` and scored against ground truth.

    ``params`` are passed as keyword arguments when the attribute is callable (a class or a
    factory); ``LogisticPredictor`` takes its fitted weights this way, so a trained model travels
    as plain JSON.
    """

    type: Literal["predictor"] = "predictor"
    import_path: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
    params: dict[str, Any] = Field(default_factory=dict)
    threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Act when score >= threshold (the policy)."
    )
    segment_thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per-segment thresholds overriding ``threshold``."
    )

    @model_validator(mode="after")
    def _thresholds_in_range(self) -> PredictorModel:
        for segment, value in self.segment_thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"segment_thresholds[{segment!r}] must be in [0, 1], got {value}")
        return self

    def thresholds(self, segment_names: list[str]) -> NDArray[np.float64]:
        """The decision threshold of each segment, in the environment's segment order."""
        return np.array(
            [self.segment_thresholds.get(s, self.threshold) for s in segment_names],
            dtype=np.float64,
        )


class OnnxModel(_Operational):
    """An ONNX artifact, addressed by the sha256 of its bytes, scored against ground truth.

    JSON (the Store, HTTP, a job spec) carries only the hash. ``content`` — the bytes — is
    filled in by the artifact store before a run (``ArtifactStore.resolve``) and travels to Ray
    workers inside the pickled spec as plain bytes, never as a Python object; it is left out of
    every JSON dump, so a stored version never duplicates its artifact. Invariant: when present,
    ``content`` hashes to ``sha256``.
    """

    type: Literal["onnx"] = "onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the ONNX bytes (hex).")
    content: SkipJsonSchema[bytes | None] = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="after")
    def _content_matches(self) -> OnnxModel:
        if self.content is not None and sha256_hex(self.content) != self.sha256:
            raise ValueError(f"content does not hash to sha256 {self.sha256}")
        return self

    def with_content(self, content: bytes) -> OnnxModel:
        """This model with its artifact bytes attached (checked against the hash)."""
        return OnnxModel.model_validate({**self.model_dump(), "content": content})


def _model_kind(value: Any) -> str:
    """Discriminator with a default: a model without ``type`` is a profile (the seed's form)."""
    if isinstance(value, dict):
        return str(value.get("type", "profile"))
    return str(getattr(value, "type", "profile"))


# The wording of a bad ``type`` for :func:`twinloop.contract.invalid_input`.
MODEL_TYPE_ERRORS = {
    "union_tag_invalid": "unknown model type {tag!r}; choose 'profile', 'predictor' or 'onnx'"
}

ModelSpec = Annotated[
    Annotated[ModelProfile, Tag("profile")]
    | Annotated[PredictorModel, Tag("predictor")]
    | Annotated[OnnxModel, Tag("onnx")],
    Discriminator(_model_kind),
]
MODEL_TYPES = ("profile", "predictor", "onnx")
ScoredModel = PredictorModel | OnnxModel  # the kinds whose accuracy the twin measures


def load_predictor(spec: PredictorModel | OnnxModel) -> Predictor:
    """Build the predictor; InvalidInput names the field when it cannot be used."""
    if isinstance(spec, OnnxModel):
        if spec.content is None:
            raise InvalidInput(
                "model.sha256",
                f"artifact {spec.sha256[:12]}… is not resolved: resolve the model through the "
                "artifact store (ArtifactStore.resolve) before running it",
            )
        return load_onnx(spec.sha256, spec.content)
    module_name, _, attr_path = spec.import_path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput("model.import_path", f"cannot import module {module_name!r}") from exc
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise InvalidInput(
                "model.import_path", f"{module_name!r} has no attribute {attr_path!r}"
            )
        obj = getattr(obj, part)
    if callable(obj) and (spec.params or isinstance(obj, type)):
        try:
            obj = obj(**spec.params)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("model.params", f"{spec.import_path} rejected them: {exc}") from exc
    if not callable(getattr(obj, "predict", None)):
        raise InvalidInput("model.import_path", f"{spec.import_path} has no predict() method")
    return obj  # type: ignore[no-any-return]
