"""The repair of a qa veto on cold start: cold-start rows in training, searched on demand.

A model never shown a customer without history extrapolates its slopes to all-zero features.
Rows copied with the customer features zeroed and the label kept teach it each segment's base
rate there; the truth is constructed from the twin's intent model (the best action for a
customer the model cannot see is "act" exactly when the segment's mean intent exceeds 1/2).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from pydantic import ValidationError

from twinloop.improve.data import TrainingData, twin_data
from twinloop.improve.pipeline import RetrainRequest, run_id
from twinloop.improve.recipe import Recipe, apply_recipe, with_cold_start
from twinloop.improve.reference import LOGISTIC, SKLEARN_HGB, SKLEARN_LOGISTIC
from twinloop.improve.repair import COLD_START_SHARE, repair_of, repair_space, repaired
from twinloop.improve.space import SearchSpace, sample_recipes, space_from_segments
from twinloop.improve.trainer import train_model
from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import intent_probability, predictor_features
from twinloop.sim.models import OnnxModel, PredictorModel, load_predictor


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return twin_data(environment("sales"), 6_000, seed=3)


def test_cold_start_rows_are_zeroed_copies_with_label_segment_and_weight(
    data: TrainingData,
) -> None:
    weighted = apply_recipe(data, Recipe(segment_weights={"enterprise": 3.0}), 0)
    out = with_cold_start(weighted, 0.5, seed=7)
    k = round(0.5 * data.n)
    assert out.n == data.n + k
    np.testing.assert_array_equal(out.features[: data.n], data.features)
    extra = out.features[data.n :]
    assert np.all(extra[:, : data.n_base] == 0.0)
    one_hot = extra[:, data.n_base :]
    np.testing.assert_array_equal(one_hot.argmax(axis=1), out.segment[data.n :])
    assert np.all(one_hot.sum(axis=1) == 1.0)
    assert out.weight is not None and out.weight.size == out.n
    enterprise = data.segment_names.index("enterprise")
    np.testing.assert_array_equal(
        out.weight[data.n :], np.where(out.segment[data.n :] == enterprise, 3.0, 1.0)
    )
    # the copies keep their source rows' labels: label rate per segment as in the source
    for s in range(len(data.segment_names)):
        rows = out.segment[data.n :] == s
        if rows.sum() > 200:
            assert (
                abs(out.label[data.n :][rows].mean() - data.label[data.segment == s].mean()) < 0.1
            )
    again = with_cold_start(weighted, 0.5, seed=7)
    np.testing.assert_array_equal(again.label, out.label)
    assert not np.array_equal(with_cold_start(weighted, 0.5, seed=8).segment, out.segment)
    assert apply_recipe(data, Recipe(), 0) is data  # the default recipe leaves the rows alone


@pytest.mark.parametrize("trainer", [LOGISTIC, SKLEARN_LOGISTIC, SKLEARN_HGB])
def test_cold_start_rows_teach_every_trainer_the_base_rate_decision(
    data: TrainingData, trainer: str
) -> None:
    """At all-zero features a model trained with cold-start rows acts exactly where the
    segment's mean intent exceeds 1/2 (segments within 0.05 of 1/2 are too close to judge)."""
    env = environment("sales")
    segments = np.arange(len(env.segments))
    model = train_model(trainer, Recipe(cold_start_share=0.5), data, 0)
    assert isinstance(model, PredictorModel | OnnxModel)
    cold = predictor_features(env, np.zeros((segments.size, env.n_features)), segments)
    acts = np.asarray(load_predictor(model).predict(cold)) >= 0.5
    judged = 0
    for s in segments:
        x = data.features[data.segment == s][:, : data.n_base]
        mean_intent = float(intent_probability(env, x, np.full(len(x), s)).mean())
        if abs(mean_intent - 0.5) > 0.05:
            judged += 1
            assert acts[s] == (mean_intent > 0.5), (env.segments[s].name, mean_intent)
    assert judged >= 2


def test_the_repair_searches_cold_start_rows_without_moving_the_rest_of_the_search() -> None:
    env = environment("sales")
    space = space_from_segments(["enterprise"], env)
    assert repair_of("cold_start") == "cold_start"
    assert repair_of("surge") is None and repair_of(None) is None
    fixed = repair_space(space, "cold_start")
    assert fixed.cold_start_share == COLD_START_SHARE
    assert fixed.threshold == (0.5, 0.5)
    assert any("cold_start_share" in r for r in fixed.reasons[-2:])
    plain, repaired_recipes = sample_recipes(space, 6, 4), sample_recipes(fixed, 6, 4)
    assert all(r.cold_start_share == 0.0 for r in plain)
    assert repaired_recipes[0].cold_start_share == COLD_START_SHARE[0]
    for before, after in zip(plain, repaired_recipes, strict=True):
        assert COLD_START_SHARE[0] <= after.cold_start_share <= COLD_START_SHARE[1]
        assert after.threshold == 0.5  # where the gate's hit rate is best for a calibrated score
        assert (
            after.model_copy(update={"cold_start_share": 0.0, "threshold": before.threshold})
            == before
        )
    winner = repaired(plain[2], "cold_start")
    assert winner.name == "r002+cold_start" and winner.cold_start_share > 0
    assert winner.threshold == 0.5 and winner.l2 == plain[2].l2
    with pytest.raises(ValidationError, match="cold_start_share"):
        SearchSpace(cold_start_share=(0.6, 0.2))
    with pytest.raises(ValidationError, match="cold_start_share"):
        Recipe(cold_start_share=1.5)


def test_a_repair_round_is_its_own_run_and_older_runs_keep_their_ids() -> None:
    request = RetrainRequest(family="f", seed=3)
    legacy = request.model_dump_json(exclude={"warm_start", "qa_repair"})
    key = f"{legacy}|exp|v1"
    assert run_id(request, "exp", "v1") == f"f-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    repair = request.model_copy(update={"qa_repair": "cold_start"})
    assert run_id(repair, "exp", "v1") != run_id(request, "exp", "v1")
    with pytest.raises(ValidationError, match="qa_repair"):
        RetrainRequest.model_validate({"family": "f", "qa_repair": "surge"})
