"""A predictor's decision threshold in the twin: 0.5 by default, per segment when set."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from twinloop.sim.domains import preset
from twinloop.sim.groundtruth import decision_thresholds, predictor_hits, sample_customers
from twinloop.sim.models import ModelProfile, PredictorModel, load_predictor
from twinloop.sim.predictor import LogisticPredictor

ENV = preset("sales").environment


def _model(**update: object) -> PredictorModel:
    rng = np.random.default_rng(0)
    x, y, _ = sample_customers(ENV, 2_000, rng)
    fitted = LogisticPredictor().fit(x, y, ENV.n_features)
    base = PredictorModel(
        name="m", import_path="twinloop.sim.predictor:LogisticPredictor", params=fitted.to_params()
    )
    return base.model_copy(update=update)


def _hits(model: PredictorModel) -> np.ndarray:  # type: ignore[type-arg]
    rng = np.random.default_rng(1)
    n = 3_000
    seg = rng.integers(0, len(ENV.segments), n)
    x = rng.standard_normal((n, ENV.n_features)).astype(np.float32)
    intent = rng.random(n) < 0.4
    return predictor_hits(
        ENV, load_predictor(model), "m", x, seg, intent, decision_thresholds(ENV, model)
    )


def test_the_default_threshold_is_the_old_rule() -> None:
    """No threshold set → the same decisions as `score >= 0.5` (nothing changes for old specs)."""
    model = _model()
    assert model.threshold == 0.5 and model.segment_thresholds == {}
    rng = np.random.default_rng(1)
    n = 3_000
    seg = rng.integers(0, len(ENV.segments), n)
    x = rng.standard_normal((n, ENV.n_features)).astype(np.float32)
    intent = rng.random(n) < 0.4
    old = predictor_hits(ENV, load_predictor(model), "m", x, seg, intent)
    assert np.array_equal(_hits(model), old)


def test_a_segment_threshold_moves_only_that_segment() -> None:
    """Threshold 0 on enterprise: every enterprise customer is acted on; others unchanged."""
    base, moved = _model(), _model(segment_thresholds={"enterprise": 0.0})
    cuts = decision_thresholds(ENV, moved)
    assert cuts is not None
    names = [s.name for s in ENV.segments]
    assert cuts[names.index("enterprise")] == 0.0 and cuts[names.index("smb")] == 0.5
    assert not np.array_equal(_hits(base), _hits(moved))
    assert decision_thresholds(ENV, ModelProfile()) is None


def test_a_threshold_outside_0_1_is_refused_naming_the_segment() -> None:
    """segment_thresholds values are probabilities."""
    with pytest.raises(ValidationError, match="enterprise"):
        _model().model_validate({**_model().model_dump(), "segment_thresholds": {"enterprise": 2}})
