"""The detector's conformance check: planted anomalies in a seasonal series are found and named.

A product requirement outside NAB, used by ``bench.anomaly_cv`` to keep only candidates that
still do what ``docs/anomalies.md`` promises: in a daily cycle (amplitude 10, unit noise, 12
days of 5-minute points) a spike and a dip *inside the range* (±12 at onset), a level shift
(+8), a trend change (+0.05 per point) and a variance change (σ 1 → 3) are each found — at the
onset (the level shift within 3 points, the variance change within 60, the trend within a day)
and labelled with the planted kind — with no alert between the end of the learning period and
the onset. The same series and criteria as ``tests/unit/test_anomaly_detector.py``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from twinloop.replication.anomaly.detector import detect_anomalies
from twinloop.replication.anomaly.models import AnomalySettings

N, ONSET = 3456, 2600
STEP = np.timedelta64(300, "s")
START = np.datetime64("2024-03-04T00:00:00")
WITHIN = {"spike": 0, "dip": 0, "level_shift": 3, "trend_change": 288, "variance_change": 60}


def seasonal_series(
    kind: str, seed: int = 1
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]:
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


def failures(settings: AnomalySettings) -> list[str]:
    """What the detector with ``settings`` misses (empty: it conforms)."""
    missed = []
    for kind, within in WITHIN.items():
        timestamps, values = seasonal_series(kind)
        anomalies = detect_anomalies(timestamps, values, settings).anomalies
        after = [a for a in anomalies if a.index >= ONSET]
        if not after or after[0].index - ONSET > within or after[0].kind != kind:
            missed.append(f"{kind}: not found at onset")
        if [a for a in anomalies if settings.learning <= a.index < ONSET]:
            missed.append(f"{kind}: false alarm before onset")
    return missed
