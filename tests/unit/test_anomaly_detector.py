"""The streaming detector: causal, batch = online, planted anomalies found and labelled."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bench.nab import PROFILES, score_file
from bench.nab_corpus import load_corpus
from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.detector import AnomalyDetector, detect_anomalies
from twinloop.replication.anomaly.models import AnomalyKind, AnomalySettings
from twinloop.replication.anomaly.series import read_series_csv

N, ONSET = 3456, 2600  # 12 days of 5-minute points; the anomaly starts on day 10
STEP = np.timedelta64(300, "s")
START = np.datetime64("2024-03-04T00:00:00")


def seasonal_series(kind: str, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A daily cycle (amplitude 10) plus unit Gaussian noise, with one planted anomaly."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    x = 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, N)
    after = t >= ONSET
    if kind == "spike":
        x[ONSET] += 12
    elif kind == "dip":
        x[ONSET] -= 12
    elif kind == "level_shift":
        x[after] += 8
    elif kind == "trend_change":
        x[after] += 0.05 * (t[after] - ONSET)
    elif kind == "variance_change":
        x[after] += rng.normal(0, 3, int(after.sum()))
    return START + t * STEP, x


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
    assert not [a for a in result.anomalies if 750 <= a.index < ONSET]


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
    assert result.scores[1200] == pytest.approx(1.0, abs=1e-3)
    assert [(a.index, a.kind) for a in result.anomalies] == [(1200, "level_shift")]
