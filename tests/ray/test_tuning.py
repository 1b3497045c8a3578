"""Ray Tune searches retraining variants and ranks them by sandbox win-rate."""

from typing import Any

import pytest

from tuning.search import RetrainSearchSpec, recipes, search_retraining
from twinloop.improve.retrain import RetrainConfig, train_variant
from twinloop.sim.domains import environment

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_tune_finds_the_recipe_that_fixes_the_champion(ray_session: Any) -> None:
    """Two recipes as Tune trials: the balanced one ranks first and beats the champion."""
    champion = train_variant(
        environment("sales"), RetrainConfig(name="champion", segment_weights={"enterprise": 0.0})
    )
    spec = RetrainSearchSpec(
        champion=champion,
        l2=[1.0],
        interactions=[True],
        segment_weights=[{"enterprise": 0.0}, {}],
        customers=2_000,
        days=10,
        replicates=6,
        seed=3,
    )
    assert len(recipes(spec)) == 2
    result = search_retraining(spec)
    assert [s.config.segment_weights for s in result.scores] == [{}, {"enterprise": 0.0}]
    assert result.best.win_rate > 0.5 and result.best.difference > 0
