"""ONNX models in the twin: a real scikit-learn export scores exactly like scikit-learn."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from twinloop.errors import InvalidInput, LimitExceeded
from twinloop.registry import artifacts
from twinloop.registry.artifacts import ArtifactStore
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.replicate import ReplicateTask, run_replicate
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import sample_customers
from twinloop.sim.lifecycle import Simulation
from twinloop.sim.models import OnnxModel, load_predictor
from twinloop.sim.onnxmodel import sha256_hex
from twinloop.sim.spec import SimulationSpec
from twinloop.store import SqliteStore


class SklearnPredictor:
    """The fitted scikit-learn model itself, as the twin's Python predictor."""

    def __init__(self, model: LogisticRegression) -> None:
        self.model = model

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(features)[:, 1]


@pytest.fixture(scope="module")
def fitted() -> tuple[LogisticRegression, np.ndarray]:
    env = environment("sales")
    x, y, _ = sample_customers(env, 4_000, np.random.default_rng(11))
    return LogisticRegression(max_iter=500).fit(x, y), x


def export(model: LogisticRegression, x: np.ndarray, zipmap: bool) -> bytes:
    options = {id(model): {"zipmap": zipmap}}
    return to_onnx(model, x[:1].astype(np.float32), options=options).SerializeToString()


@pytest.fixture
def artifact_store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(SqliteStore(tmp_path / "s.sqlite3"), tmp_path, max_bytes=8 * 1024 * 1024)


@pytest.mark.parametrize("zipmap", [False, True])
def test_twin_scores_equal_predict_proba(
    fitted: tuple[LogisticRegression, np.ndarray], artifact_store: ArtifactStore, zipmap: bool
) -> None:
    """Stored, resolved and loaded by the twin, the export scores as predict_proba to 1e-5."""
    model, _ = fitted
    env = environment("sales")
    content = export(model, fitted[1], zipmap)
    ref = artifact_store.put(content)
    spec = artifact_store.resolve(OnnxModel(name="onnx", sha256=ref.sha256))
    assert isinstance(spec, OnnxModel)
    x, _, _ = sample_customers(env, 2_000, np.random.default_rng(12))
    scores = load_predictor(spec).predict(x)
    np.testing.assert_allclose(scores, model.predict_proba(x)[:, 1], rtol=0, atol=1e-5)


def test_twin_kpis_of_onnx_equal_the_python_predictor(
    fitted: tuple[LogisticRegression, np.ndarray],
) -> None:
    """A whole simulation: the ONNX model and the scikit-learn object give the same KPIs."""
    model, x = fitted
    content = export(model, x, zipmap=False)
    onnx = OnnxModel(name="m", sha256=sha256_hex(content), content=content)
    spec = SimulationSpec(environment=environment("sales"), models=[onnx], days=5, seed=4)
    spec = spec.model_copy(update={"environment": spec.environment.model_copy(
        update={"initial_customers": 2_000})})  # fmt: skip
    via_onnx = Simulation(spec).run().summary
    via_python = Simulation(spec, predictors=[SklearnPredictor(model)]).run().summary
    timing = {"wall_seconds", "acceleration", "customer_days_per_second"}
    assert via_onnx.model_dump(exclude=timing) == via_python.model_dump(exclude=timing)
    assert via_onnx.variants[0].model_accuracy > 0.5


def test_bytes_travel_in_the_pickled_task_not_in_json(
    fitted: tuple[LogisticRegression, np.ndarray],
) -> None:
    """A replicate task pickles with its artifact bytes; the JSON form carries only the hash."""
    model, x = fitted
    content = export(model, x, zipmap=False)
    onnx = OnnxModel(name="m", sha256=sha256_hex(content), content=content)
    assert "content" not in onnx.model_dump(mode="json")
    assert "content" not in OnnxModel.model_json_schema()["properties"]
    env = environment("sales").model_copy(update={"initial_customers": 500})
    task = ReplicateTask(0, 0, 7, SimulationSpec(environment=env, models=[onnx], days=2))
    clone = pickle.loads(pickle.dumps(task))
    assert run_replicate(clone).values == run_replicate(task).values


def test_head_to_head_runs_onnx_against_a_profile(
    fitted: tuple[LogisticRegression, np.ndarray], artifact_store: ArtifactStore
) -> None:
    """The sandbox accepts a resolved ONNX model like any other model."""
    model, x = fitted
    ref = artifact_store.put(export(model, x, zipmap=False))
    onnx = artifact_store.resolve(OnnxModel(name="onnx", sha256=ref.sha256))
    spec = HeadToHeadSpec(
        customers=500, days=3, replicates=2, baseline={"name": "p"}, challenger=onnx
    )
    result = run_head_to_head(spec)
    assert result.challenger == "onnx" and result.replicates == 2


def test_unresolved_artifact_is_a_clear_error() -> None:
    """A spec with only the hash cannot run: the error says to resolve it first."""
    with pytest.raises(InvalidInput, match=r"model\.sha256: artifact .* is not resolved"):
        load_predictor(OnnxModel(sha256="0" * 64))


def test_content_must_match_its_hash() -> None:
    """Bytes that do not hash to the declared sha256 are refused at validation."""
    with pytest.raises(ValueError, match="does not hash"):
        OnnxModel(sha256="0" * 64, content=b"abc")


def test_not_onnx_is_refused_and_nothing_stored(artifact_store: ArtifactStore) -> None:
    """Random bytes are InvalidInput naming the field; no artifact document is written."""
    with pytest.raises(InvalidInput, match="upload: not a loadable ONNX model"):
        artifact_store.put(b"definitely not onnx", field="upload")
    assert artifact_store.store.query(artifacts.KIND) == []


def test_wrong_input_width_names_the_model(
    fitted: tuple[LogisticRegression, np.ndarray],
) -> None:
    """A graph taking 3 features cannot judge the sales environment: the error says so."""
    model3 = LogisticRegression().fit(fitted[1][:200, :3], np.arange(200) % 2)
    content = export(model3, fitted[1][:, :3], zipmap=False)
    onnx = OnnxModel(name="narrow", sha256=sha256_hex(content), content=content)
    spec = HeadToHeadSpec(customers=100, days=2, replicates=2, baseline={"name": "p"},
                          challenger=onnx)  # fmt: skip
    with pytest.raises(InvalidInput, match="challenger: the ONNX model takes 3 features"):
        run_head_to_head(spec)


def test_large_artifact_goes_to_the_data_dir(
    fitted: tuple[LogisticRegression, np.ndarray],
    artifact_store: ArtifactStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above the inline size the bytes are a file; the same bytes again are one artifact."""
    monkeypatch.setattr(artifacts, "INLINE_BYTES", 10)
    content = export(fitted[0], fitted[1], zipmap=False)
    ref = artifact_store.put(content)
    assert ref.location == "file" and ref.data is None
    assert artifact_store.path(ref.sha256).read_bytes() == content
    assert artifact_store.put(content) == ref
    assert artifact_store.read(ref.sha256) == content


def test_oversized_artifact_is_refused(artifact_store: ArtifactStore) -> None:
    """Beyond the configured size limit: LimitExceeded, before parsing anything."""
    small = ArtifactStore(artifact_store.store, artifact_store.data_dir, max_bytes=1024)
    with pytest.raises(LimitExceeded, match="exceeds the limit of 1024"):
        small.put(b"x" * 2048)
