"""The trainer contract: reference trainers, recipes, Parquet data, errors naming the field."""

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twinloop.errors import InvalidInput
from twinloop.improve.data import TrainingData, read_parquet, to_table, twin_data
from twinloop.improve.recipe import Recipe, apply_recipe
from twinloop.improve.reference import LOGISTIC, SKLEARN_HGB, SKLEARN_LOGISTIC
from twinloop.improve.trainer import TrainerFailed, train_model
from twinloop.sim.domains import environment
from twinloop.sim.models import OnnxModel, PredictorModel, load_predictor


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return twin_data(environment("sales"), 4_000, seed=1)


def raising_trainer(config: dict[str, Any], data: TrainingData, seed: int) -> bytes:
    raise ValueError("l2 too small for this data")


def wrong_shape_trainer(config: dict[str, Any], data: TrainingData, seed: int) -> PredictorModel:
    return PredictorModel(import_path="tests.unit.test_trainers:TwoColumns")


def wrong_type_trainer(config: dict[str, Any], data: TrainingData, seed: int) -> str:
    return "a model"


class TwoColumns:
    """A predictor that returns a score matrix instead of one score per row."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.full((features.shape[0], 2), 0.5)


def test_sklearn_onnx_export_agrees_with_sklearn(data: TrainingData) -> None:
    """The exported HistGradientBoosting graph scores like predict_proba (float32 tolerance)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from twinloop.improve.onnxexport import export_classifier

    clf = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(data.features, data.label)
    session = ort.InferenceSession(export_classifier(clf, data.features.shape[1]))
    (onnx_scores,) = session.run(None, {"features": data.features.astype(np.float32)})
    np.testing.assert_allclose(onnx_scores, clf.predict_proba(data.features)[:, 1], atol=1e-5)


@pytest.mark.parametrize("trainer", [LOGISTIC, SKLEARN_LOGISTIC])
def test_balanced_recipe_fixes_the_segment_a_flawed_recipe_breaks(
    trainer: str, data: TrainingData
) -> None:
    """Without enterprise rows a model errs there; the natural mix repairs it (both trainers)."""
    env = environment("sales")
    test = twin_data(env, 20_000, seed=2)
    ent = test.segment == env.segment_index("enterprise")
    acc = {}
    for name, recipe in (
        ("flawed", Recipe(segment_weights={"enterprise": 0.0})),
        ("fixed", Recipe()),
    ):
        model = train_model(trainer, recipe, data, seed=0)
        right = (load_predictor(model).predict(test.features) >= 0.5) == test.label  # type: ignore[arg-type]
        acc[name] = right[ent].mean()
    assert acc["flawed"] < 0.5 < acc["fixed"] - 0.15


def test_threshold_is_folded_into_onnx_and_set_on_a_predictor(data: TrainingData) -> None:
    """threshold 0.7: ONNX scores cross 0.5 exactly where P >= 0.7; a predictor carries it."""
    recipe = Recipe(params={"max_iter": 20})
    base = load_predictor(train_model(SKLEARN_HGB, recipe, data, 0)).predict(data.features)  # type: ignore[arg-type]
    shifted_model = train_model(SKLEARN_HGB, recipe.model_copy(update={"threshold": 0.7}), data, 0)
    shifted = load_predictor(shifted_model).predict(data.features)  # type: ignore[arg-type]
    clear = np.abs(base - 0.7) > 1e-4  # float32 rounding at the boundary
    assert np.array_equal((shifted >= 0.5)[clear], (base >= 0.7)[clear])
    assert isinstance(shifted_model, OnnxModel)
    logistic = train_model(LOGISTIC, recipe.model_copy(update={"threshold": 0.7}), data, 0)
    assert isinstance(logistic, PredictorModel) and logistic.threshold == 0.7


def test_oversampling_and_feature_choice_change_the_rows(data: TrainingData) -> None:
    """Oversampling ×4 quadruples a segment's share; a dropped feature becomes zeros."""
    ent = data.segment_names.index("enterprise")
    over = apply_recipe(data, Recipe(segment_weights={"enterprise": 4.0}, resample="oversample"), 3)
    before, after = (data.segment == ent).mean(), (over.segment == ent).mean()
    assert after == pytest.approx(4 * before / (1 + 3 * before), abs=0.03)
    masked = apply_recipe(data, Recipe(features=[0, 2]), 3)
    assert not masked.features[:, [1, 3]].any() and masked.features[:, 0].any()


def test_trainer_errors_name_the_field(data: TrainingData) -> None:
    """Bad import path, raising trainer, wrong output type or shape: InvalidInput naming it."""
    with pytest.raises(InvalidInput, match=r"^trainer: cannot import module 'no_such_mod'"):
        train_model("no_such_mod:train", Recipe(), data, 0)
    with pytest.raises(InvalidInput, match=r"^trainer: .*has no attribute 'nope'"):
        train_model("twinloop.improve.reference:nope", Recipe(), data, 0)
    with pytest.raises(TrainerFailed, match=r"raised ValueError: l2 too small.*recipe 'r7'"):
        train_model("tests.unit.test_trainers:raising_trainer", Recipe(name="r7"), data, 0)
    with pytest.raises(InvalidInput, match=r"^trainer.output: must be ONNX bytes .* got str"):
        train_model("tests.unit.test_trainers:wrong_type_trainer", Recipe(), data, 0)
    with pytest.raises(InvalidInput, match=r"^trainer.output: .*shape \(256, 2\)"):
        train_model("tests.unit.test_trainers:wrong_shape_trainer", Recipe(), data, 0)
    with pytest.raises(InvalidInput, match=r"^recipe.segment_weights: unknown segment 'retail'"):
        train_model(LOGISTIC, Recipe(segment_weights={"retail": 2.0}), data, 0)


def test_parquet_round_trip_and_validation(tmp_path: Path, data: TrainingData) -> None:
    """A labelled Parquet file reads back to the same rows; bad columns are named."""
    env = environment("sales")
    path = tmp_path / "labelled.parquet"
    pq.write_table(to_table(data), path)
    back = read_parquet(path, env)
    assert back.fingerprint == data.fingerprint and back.n == data.n
    table = to_table(data)
    bad_label = table.set_column(table.column_names.index("label"), "label", pa.array([2] * data.n))
    with pytest.raises(InvalidInput, match=r"^data.label: must be 0 or 1; row 0 is 2"):
        pq.write_table(bad_label, path) or read_parquet(path, env)
    bad_seg = table.set_column(
        table.column_names.index("segment"), "segment", pa.array(["retail"] * data.n)
    )
    with pytest.raises(InvalidInput, match=r"^data.segment: row 0 has unknown segment 'retail'"):
        pq.write_table(bad_seg, path) or read_parquet(path, env)
    with pytest.raises(InvalidInput, match=r"^data.x3: missing column"):
        pq.write_table(table.drop(["x3"]), path) or read_parquet(path, env)
    with pytest.raises(InvalidInput, match=r"^data.path: cannot read"):
        read_parquet(tmp_path / "missing.parquet", env)


def test_docs_user_trainer_plugs_in_with_a_threshold(
    data: TrainingData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/examples/retrain/my_trainer.py (two ONNX outputs) takes the recipe's threshold."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "docs/examples/retrain"))
    recipe = Recipe(params={"trees": 10})
    base = train_model("my_trainer:train", recipe, data, 0)
    shifted = train_model("my_trainer:train", recipe.model_copy(update={"threshold": 0.6}), data, 0)
    assert isinstance(base, OnnxModel) and isinstance(shifted, OnnxModel)
    p, q = (load_predictor(m).predict(data.features) for m in (base, shifted))
    clear = np.abs(p - 0.6) > 1e-4
    assert np.array_equal((q >= 0.5)[clear], (p >= 0.6)[clear])


def test_split_is_disjoint_stratified_and_seeded(data: TrainingData) -> None:
    """Half the rows of each segment on each side, no row twice, the same halves for a seed."""
    from twinloop.improve.data import split

    a, b = split(data, 0.5, seed=9)
    assert a.n + b.n == data.n
    rows = {tuple(r) for r in a.features} & {tuple(r) for r in b.features}
    assert not rows
    for s in range(len(data.segment_names)):
        assert abs((a.segment == s).sum() - (b.segment == s).sum()) <= 1
    assert split(data, 0.5, seed=9)[0].fingerprint == a.fingerprint != b.fingerprint
