"""The streaming detector: causal, batch = online, planted anomalies found and labelled."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

# The planted series are the ones bench.anomaly_cv's conformance check uses to select defaults.
from bench.anomaly_conformance import ONSET, START, STEP, N, seasonal_series
from bench.anomaly_cv import CONTEXT_GRID, DETECTOR_GRID, LEARNING_GRID, OFF
from bench.nab import PROFILES, score_file
from bench.nab_corpus import load_corpus
from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.detector import AnomalyDetector, detect_anomalies
from twinloop.replication.anomaly.ensemble import member_specs
from twinloop.replication.anomaly.models import AnomalyKind, AnomalySettings
from twinloop.replication.anomaly.series import read_series_csv
from twinloop.replication.anomaly.streaming import SortedWindow


@pytest.mark.parametrize(
    ("kind", "within"),
    [("spike", 0), ("dip", 0), ("level_shift", 3), ("trend_change", 288), ("variance_change", 60)],
)
def test_planted_anomaly_is_found_near_onset_and_labelled(kind: AnomalyKind, within: int) -> None:
    """The first anomaly after a planted change is at the onset (a trend: within a day) and
    carries the planted kind."""
    timestamps, values = seasonal_series(kind)
    result = detect_anomalies(timestamps, values)
    after = [a for a in result.anomalies if a.index >= ONSET]
    assert after, f"nothing found after the planted {kind}"
    first = after[0]
    assert first.index - ONSET <= within
    assert first.kind == kind
    # Nothing is reported between the end of the learning period and the onset.
    learning = AnomalySettings().learning
    assert not [a for a in result.anomalies if learning <= a.index < ONSET]


def test_scores_are_causal() -> None:
    """Appending future points (even wild ones) does not change any earlier score."""
    timestamps, values = seasonal_series("level_shift")
    cut = 3000
    full = detect_anomalies(timestamps, values).scores
    head = detect_anomalies(timestamps[:cut], values[:cut]).scores
    wild = values.copy()
    wild[cut:] *= -50
    future_changed = detect_anomalies(timestamps, wild).scores
    assert head == full[:cut]
    assert future_changed[:cut] == full[:cut]


def test_batch_equals_point_by_point_and_is_deterministic() -> None:
    """detect_anomalies gives exactly the scores of update() called once per point, every run."""
    timestamps, values = seasonal_series("variance_change", seed=7)
    batch = detect_anomalies(timestamps, values)
    detector = AnomalyDetector()
    online = [detector.update(t, float(v)) for t, v in zip(timestamps, values, strict=True)]
    assert [p.score for p in online] == batch.scores
    assert [p.index for p in online] == list(range(N))
    assert detector.finish() == batch.anomalies
    assert detect_anomalies(timestamps, values) == batch


def test_online_points_carry_verdicts() -> None:
    """An update returns the point's timestamp, raw evidence, channel and anomaly flag."""
    timestamps, values = seasonal_series("spike")
    detector = AnomalyDetector(AnomalySettings(threshold=0.6))
    points = [detector.update(t, float(v)) for t, v in zip(timestamps, values, strict=True)]
    onset = points[ONSET]
    assert onset.is_anomaly and onset.score >= 0.6 and onset.direction == "up"
    assert onset.channel in ("novelty", "context") and onset.raw > 0
    assert onset.timestamp == datetime(2024, 3, 4) + timedelta(minutes=5 * ONSET)
    assert not any(p.is_anomaly for p in points[:50])  # warm-up


def test_bad_input_names_the_field() -> None:
    """Empty, constant, NaN, infinite values and timestamps that go back are refused by name."""
    timestamps, values = seasonal_series("none")
    with pytest.raises(InvalidInput, match="values: the series is empty"):
        detect_anomalies([], [])
    with pytest.raises(InvalidInput, match="values: the series is constant"):
        detect_anomalies(timestamps[:100], np.full(100, 3.0))
    for bad in (np.nan, np.inf, -np.inf):
        broken = values.copy()
        broken[17] = bad
        with pytest.raises(InvalidInput, match=r"values\[17\]") as info:
            detect_anomalies(timestamps, broken)
        assert info.value.field == "values[17]"
    backwards = timestamps.copy()
    backwards[40] = backwards[38]
    with pytest.raises(InvalidInput, match=r"timestamps\[40\]: .* is earlier than"):
        detect_anomalies(backwards, values)
    with pytest.raises(InvalidInput, match="timestamps: 10 timestamps for 11 values"):
        detect_anomalies(timestamps[:10], values[:11])
    detector = AnomalyDetector()
    with pytest.raises(InvalidInput, match="value: nan is not a finite number"):
        detector.update(timestamps[0], float("nan"))


def test_row_order_keeps_timestamps_that_step_back() -> None:
    """With timestamp_order='row_order' a daylight-saving step back is scored, not refused."""
    timestamps, values = seasonal_series("none")
    timestamps[40] = timestamps[38]
    result = detect_anomalies(timestamps, values, AnomalySettings(timestamp_order="row_order"))
    assert result.n_points == N


def test_labelled_window_is_hit(bench_data: Path) -> None:
    """A NAB-layout daily series whose level jumps: the window is hit, no false positive."""
    root = bench_data / "anomaly"
    (nab_file,) = load_corpus(root, ["artificialWithAnomaly/art_daily_jumpsup.csv"])
    series = read_series_csv(root / "data" / nab_file.key)
    settings = AnomalySettings()
    result = detect_anomalies(series.timestamps, series.values, settings)
    scored = score_file(result.scores, nab_file.windows, settings.threshold, PROFILES["standard"])
    assert scored.windows_hit == 1 and scored.fp_rows == 0
    assert scored.raw > 0.8


def test_first_departure_from_a_flat_line_is_caught_at_once() -> None:
    """A metric stuck at one value that jumps is anomalous at the jump, a level shift; the
    flat part scores nothing."""
    timestamps = START + np.arange(2000) * STEP
    values = np.r_[np.zeros(1200), np.full(800, 5.0)]
    result = detect_anomalies(timestamps, values)
    assert max(result.scores[:1200]) == 0.0
    # Novelty 1 (the whole range), ramped by 1200 / learning, and an extreme context surprise.
    assert result.scores[1200] == pytest.approx(1.0, abs=0.02)
    assert [(a.index, a.kind) for a in result.anomalies] == [(1200, "level_shift")]


def test_sorted_window_quantile_is_numpys_linear_quantile() -> None:
    """The usual level's quantile over the last `capacity` values equals numpy.quantile."""
    rng = np.random.default_rng(5)
    values = rng.exponential(size=700)
    window = SortedWindow(500)
    for i, v in enumerate(values):
        window.add(float(v))
        if i >= 10:
            kept = values[max(0, i - 499) : i + 1]
            for q in (0.0, 0.25, 0.99, 0.995, 1.0):
                assert window.quantile(q) == pytest.approx(np.quantile(kept, q), rel=1e-12)


def test_the_usual_level_silences_a_series_that_is_always_a_little_new() -> None:
    """Heavy-tailed noise sets small new records all the time; with the usual level (a high
    quantile of recent evidence) subtracted, fewer of them score at all and the planted spike
    keeps its score."""
    timestamps, values = seasonal_series("spike")
    rng = np.random.default_rng(9)
    values = values + rng.standard_t(2, size=values.size)
    values[ONSET] += 40
    # One setting alone: the mechanism, not the ensemble's average over it.
    plain = detect_anomalies(
        timestamps, values, AnomalySettings(usual_quantile=None, ensemble=False)
    )
    usual = detect_anomalies(
        timestamps, values, AnomalySettings(usual_quantile=0.99, ensemble=False)
    )
    assert usual.scores[ONSET] == pytest.approx(plain.scores[ONSET], abs=0.01)
    assert usual.scores[ONSET] > 0.9
    scoring = [
        sum(s > 0.1 for i, s in enumerate(r.scores) if i != ONSET and i >= 750)
        for r in (plain, usual)
    ]
    assert scoring[1] < scoring[0] - 3, scoring


def test_the_default_ensemble_is_the_cross_validation_grid_around_the_default() -> None:
    """The 36 members are bench.anomaly_cv's grid with the context channel on, in its order (so
    the bench's averaged stream is the detector's float for float); ensemble=False is one."""
    expected = [
        (history, neighbours, floor, scale, learning)
        for history, neighbours in itertools.product(*DETECTOR_GRID.values())
        for floor, scale in CONTEXT_GRID
        if floor < OFF
        for learning in LEARNING_GRID
    ]
    settings = AnomalySettings()
    assert member_specs(settings) == expected
    assert len(expected) == 36
    single = settings.model_copy(update={"ensemble": False})
    assert member_specs(single) == [(4000, 5, 7.0, 0.01, 1500)]


def test_ensemble_score_is_the_mean_of_its_members_run_alone() -> None:
    """Each member run as its own single-setting detector gives a score stream; the ensemble's
    score is their mean at every point (summed in member order: exactly, not approximately)."""
    timestamps, values = seasonal_series("spike")
    timestamps, values = timestamps[:1300], values[:1300].copy()
    values[1200] += 15
    settings = AnomalySettings(history=400, learning=300, usual_window=200)
    ensemble = detect_anomalies(timestamps, values, settings).scores
    members = [
        detect_anomalies(
            timestamps,
            values,
            settings.model_copy(
                update={
                    "history": h,
                    "neighbours": k,
                    "surprise_floor": floor,
                    "score_scale": scale,
                    "learning": learning,
                    "ensemble": False,
                }
            ),
        ).scores
        for h, k, floor, scale, learning in member_specs(settings)
    ]
    assert len(members) == 36
    means = []
    for i in range(len(ensemble)):
        total = 0.0
        for member in members:
            total += member[i]
        means.append(total / len(members))
    assert ensemble == means
    assert ensemble[1200] > 0.5  # the planted spike scores, so the comparison is not all zeros
    assert len({round(m[1200], 6) for m in members}) > 1  # and the members do differ
