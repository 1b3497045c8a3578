"""Retraining variants: the twin's ground truth punishes a training set missing a segment."""

import numpy as np
import pytest

from twinloop.errors import InvalidInput
from twinloop.improve.retrain import RetrainConfig, score_variant, train_variant
from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import sample_customers
from twinloop.sim.predictor import LogisticPredictor


def test_dropping_a_segment_from_training_breaks_the_model_there() -> None:
    """A recipe without enterprise rows is worse than chance on enterprise, fine elsewhere."""
    env = environment("sales")
    flawed = train_variant(env, RetrainConfig(segment_weights={"enterprise": 0.0}))
    balanced = train_variant(env, RetrainConfig())
    x, y, seg = sample_customers(env, 40_000, np.random.default_rng(5))
    enterprise = seg == env.segment_index("enterprise")
    acc = {}
    for name, model in (("flawed", flawed), ("balanced", balanced)):
        predictor = LogisticPredictor(**model.params)
        right = (predictor.predict(x) >= 0.5) == y
        acc[name] = (right[enterprise].mean(), right[~enterprise].mean())
    assert acc["flawed"][0] < 0.5 < acc["balanced"][0] - 0.15
    assert abs(acc["flawed"][1] - acc["balanced"][1]) < 0.02


def test_balanced_retrain_beats_the_flawed_champion_in_the_twin() -> None:
    """Head-to-head on common random numbers: the fix wins most replicates on profit."""
    env = environment("sales")
    champion = train_variant(
        env, RetrainConfig(name="champion", segment_weights={"enterprise": 0.0})
    )
    score = score_variant(
        RetrainConfig(name="fix"), champion, customers=2_000, days=10, replicates=6, seed=3
    )
    assert score.win_rate >= 5 / 6 and score.lower > 0 and score.replicates == 6


def test_unknown_segment_in_recipe_names_the_field() -> None:
    """A training-mix weight for a segment the environment lacks is InvalidInput."""
    with pytest.raises(InvalidInput, match="segment"):
        train_variant(environment("sales"), RetrainConfig(segment_weights={"retail": 0.5}))
