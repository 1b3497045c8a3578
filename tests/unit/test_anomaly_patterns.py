"""Labels from anomaly windows, signatures, and matching a library of known patterns."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_anomaly_detector import ONSET, seasonal_series

from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.detector import detect_anomalies
from twinloop.replication.anomaly.models import AnomalyPattern, PatternSignature
from twinloop.replication.anomaly.patterns import (
    DEFAULT_PATTERNS,
    classify,
    learn_pattern,
    match_pattern,
    similarity,
)


def _window(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """96 quiet points, then 48 points with a planted shape (unit noise)."""
    rng = np.random.default_rng(seed)
    pre = rng.normal(0, 1, 96)
    post = rng.normal(0, 1, 48)
    if kind == "spike":
        post[0] += 15
    elif kind == "dip":
        post[0] -= 15
    elif kind == "level_shift":
        post += 9
    elif kind == "trend_change":
        pre[-30:] += 0.3 * np.arange(1, 31)
        post += 9 + 0.3 * np.arange(1, 49)
    elif kind == "variance_change":
        post *= 5
    return pre, post


@pytest.mark.parametrize("kind", ["spike", "dip", "level_shift", "trend_change", "variance_change"])
def test_classify_labels_each_shape(kind: str) -> None:
    """Each textbook shape gets its own label, and the label is settled."""
    label, signature, settled = classify(*_window(kind))
    assert label == kind
    assert settled
    if kind in ("spike", "dip"):
        assert abs(signature.peak) > 10 and abs(signature.shift) < 1.5


def test_signature_units_are_noise_scales() -> None:
    """A 9-unit step over unit noise has shift ≈ 9 noise scales and lasts the whole window."""
    shifts = [classify(*_window("level_shift", seed))[1].shift for seed in range(20)]
    assert np.median(shifts) == pytest.approx(9, abs=0.6)  # the scale is estimated: median
    _, signature, _ = classify(*_window("level_shift"))
    assert signature.duration > 0.9
    with pytest.raises(InvalidInput, match="post"):
        classify([0.0, 1.0], [])


def test_similarity_is_one_for_identical_and_falls_with_distance() -> None:
    """Identical signatures score 1; a spike and a step look nothing alike."""
    spike = DEFAULT_PATTERNS[0].signature
    step = next(p for p in DEFAULT_PATTERNS if p.name == "step up").signature
    assert similarity(spike, spike) == 1.0
    assert similarity(spike, step) < 0.01
    nearby = spike.model_copy(update={"peak": spike.peak * 1.2})
    assert 0.9 < similarity(spike, nearby) < 1.0


def test_a_learned_pattern_is_recognised_in_another_series() -> None:
    """An anomaly learned from one series is matched by name when it recurs in another, and a
    different anomaly does not match it."""
    first = detect_anomalies(*seasonal_series("level_shift", seed=1))
    onset = next(a for a in first.anomalies if a.index >= ONSET)
    library = [learn_pattern(onset, "checkout outage", "step after the 14:00 deploy")]

    again = detect_anomalies(*seasonal_series("level_shift", seed=5), patterns=library)
    recurrence = next(a for a in again.anomalies if a.index >= ONSET)
    assert recurrence.pattern is not None
    assert recurrence.pattern.name == "checkout outage"
    assert recurrence.pattern.similarity >= 0.5

    other = detect_anomalies(*seasonal_series("spike", seed=5), patterns=library)
    spike = next(a for a in other.anomalies if a.index >= ONSET)
    assert spike.pattern is None
    assert again.patterns_used == ["checkout outage"]


def test_match_respects_kind_and_minimum_similarity() -> None:
    """A pattern tied to a kind never matches another kind; below the minimum nothing matches."""
    signature = PatternSignature(peak=12, shift=0, drift=0, spread=0, duration=0.02)
    assert match_pattern("spike", signature, DEFAULT_PATTERNS, 0.5).name == "isolated spike"
    assert match_pattern("dip", signature, DEFAULT_PATTERNS, 0.5) is None
    assert match_pattern("spike", signature, DEFAULT_PATTERNS, 1.01) is None


def test_patterns_round_trip_through_json() -> None:
    """The library is plain JSON: what a Store saves validates back to equal models."""
    text = json.dumps([p.model_dump(mode="json") for p in DEFAULT_PATTERNS])
    back = [AnomalyPattern.model_validate(d) for d in json.loads(text)]
    assert back == list(DEFAULT_PATTERNS)
    with pytest.raises(ValueError, match="name"):
        AnomalyPattern.model_validate({"name": "", "signature": DEFAULT_PATTERNS[0].signature})
