"""What kind an anomaly is, its signature, and which known pattern of a library it matches.

An anomaly window is read as deviations from the baseline frozen at onset, in units of the noise
scale then: ``pre`` the points before onset, ``post`` the onset and the points after it. A
level shift is a step that stays, a trend change a hinge (a line that starts bending away), a
variance change a wider spread of point-to-point changes, and anything that returns is a spike
or a dip. The library is a plain list of ``AnomalyPattern`` models; this module never stores
it (callers keep it wherever they like, e.g. the project's Store).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.models import (
    Anomaly,
    AnomalyKind,
    AnomalyPattern,
    PatternMatch,
    PatternSignature,
)

FloatArray = npt.NDArray[np.float64]

SUSTAINED = 3.0  # a deviation still this large at the end of the window has not returned
SPREAD_CHANGE = math.log(2.0)  # noise doubled (or halved)
MIN_SHAPE_POINTS = 6  # points after onset needed before a shape other than spike/dip is named
# Signatures are compared by shape more than by size: what share of the peak persists (shift /
# |peak|), how much of it is a slope (drift / |peak|), the noise change, the duration, and the
# size only on a log scale. The widths say how far apart a feature may be before two
# anomalies stop looking alike (e.g. a peak e ≈ 2.7 times larger costs as much as a persistence
# 0.25 apart).
SHAPE_WIDTHS = (1.0, 0.25, 0.3, 0.5, 0.25)


def _mad(values: FloatArray) -> float:
    if values.size == 0:
        return 0.0
    return float(np.median(np.abs(values - np.median(values))))


def _step_sse(r: FloatArray) -> float:
    """Residual sum of squares of the best single step (two constant pieces)."""
    n = r.size
    if n < 2:
        return 0.0
    c1 = np.cumsum(r)
    c2 = np.cumsum(r * r)
    left_n = np.arange(1, n)
    left = c2[:-1] - c1[:-1] ** 2 / left_n
    right_sum = c1[-1] - c1[:-1]
    right = (c2[-1] - c2[:-1]) - right_sum**2 / (n - left_n)
    return float(np.min(left + right))


def _hinge_sse(r: FloatArray) -> float:
    """Residual sum of squares of the best hinge: flat, then a straight line from a bend."""
    n = r.size
    j = np.arange(n, dtype=np.float64)
    best = float(np.sum((r - r.mean()) ** 2))
    for bend in range(0, n - 2, max(1, n // 48)):
        x = np.maximum(j - bend, 0.0)
        design = np.column_stack((np.ones(n), x))
        coef, *_ = np.linalg.lstsq(design, r, rcond=None)
        best = min(best, float(np.sum((r - design @ coef) ** 2)))
    return best


def classify(
    pre: Sequence[float], post: Sequence[float], floor_scale: float = 0.0
) -> tuple[AnomalyKind, PatternSignature, bool]:
    """Label an anomaly window, compute its signature, and say whether the label is settled.

    A label is not settled while the window is still ambiguous: a deviation that has neither
    returned nor become clearly a step or clearly a bend may still turn out either way.

    ``pre`` and ``post`` are de-seasonalised values (the seasonal profile at onset removed)
    before and from the onset. Deviations are measured from the median before onset in units
    of the noise before onset (from point-to-point changes, so a slow trend does not inflate
    it), never below ``floor_scale``.
    """
    y_pre = np.asarray(pre, dtype=np.float64)
    y_post = np.asarray(post, dtype=np.float64)
    if y_post.size == 0:
        raise InvalidInput("post", "an anomaly window needs at least its onset point")
    centre = float(np.median(y_pre)) if y_pre.size else float(y_post[0])
    noise = 1.4826 * _mad(np.diff(y_pre)) / math.sqrt(2.0) if y_pre.size >= 3 else 0.0
    scale = max(noise, floor_scale, 1e-12)
    r_pre = (y_pre - centre) / scale
    r_post = (y_post - centre) / scale
    h = r_post.size
    peak = float(r_post[int(np.argmax(np.abs(r_post)))])
    third = max(1, h // 3)
    shift = float(np.median(r_post[-third:]))
    if h >= 4:
        # The onset point itself is left out: a lone spike would tilt the line.
        slope = float(np.polyfit(np.arange(h - 1, dtype=np.float64), r_post[1:], 1)[0])
        drift = slope * (h - 2)
    else:
        drift = 0.0
    duration = float(np.mean(np.abs(r_post) > SUSTAINED))
    # Point-to-point changes ignore steps and slow trends: they measure the noise alone.
    noise_after = _mad(np.diff(r_post)) if h >= 3 else 0.0
    noise_before = _mad(np.diff(r_pre)) if r_pre.size >= 3 else noise_after
    spread = math.log((noise_after + 0.05) / (noise_before + 0.05))
    end_spread = 1.4826 * _mad(r_post[-third:])
    kind: AnomalyKind
    if h < MIN_SHAPE_POINTS:
        # Too few points after onset to tell a step, a bend or a change of noise from a spike.
        kind = "spike" if peak >= 0 else "dip"
        settled = False
    elif abs(shift) >= max(SUSTAINED, 1.5 * end_spread):
        both = np.concatenate((r_pre, r_post))
        ratio = _hinge_sse(both) / max(_step_sse(both), 1e-12)
        kind = "trend_change" if ratio < 0.8 else "level_shift"
        settled = ratio < 0.6 or ratio > 1.0
    elif abs(spread) >= SPREAD_CHANGE:
        kind = "variance_change"
        settled = True
    else:
        kind = "spike" if peak >= 0 else "dip"
        settled = abs(shift) < 0.5 * SUSTAINED
    signature = PatternSignature(
        peak=round(peak, 4),
        shift=round(shift, 4),
        drift=round(drift, 4),
        spread=round(spread, 4),
        duration=round(duration, 4),
    )
    return kind, signature, settled


def _shape(s: PatternSignature) -> tuple[float, float, float, float, float]:
    size = max(abs(s.peak), 1e-9)
    return (math.log(size), s.shift / size, s.drift / size, s.spread, s.duration)


def similarity(a: PatternSignature, b: PatternSignature) -> float:
    """exp(−d²/2) of the width-scaled distance between two shapes (1 = identical, 0 = opposite
    directions)."""
    if (a.peak >= 0) != (b.peak >= 0):
        return 0.0
    d2 = sum(((x - y) / w) ** 2 for x, y, w in zip(_shape(a), _shape(b), SHAPE_WIDTHS, strict=True))
    return math.exp(-0.5 * d2)


def match_pattern(
    kind: AnomalyKind,
    signature: PatternSignature,
    library: Sequence[AnomalyPattern],
    min_similarity: float,
) -> PatternMatch | None:
    """The most similar pattern of the library (of the same kind, if it names one), or None."""
    best: PatternMatch | None = None
    for pattern in library:
        if pattern.kind is not None and pattern.kind != kind:
            continue
        sim = similarity(signature, pattern.signature)
        if sim >= min_similarity and (best is None or sim > best.similarity):
            best = PatternMatch(name=pattern.name, similarity=round(sim, 4))
    return best


def learn_pattern(anomaly: Anomaly, name: str, description: str = "") -> AnomalyPattern:
    """Turn a detected anomaly into a library entry, so its next occurrence is recognised."""
    return AnomalyPattern(
        name=name, kind=anomaly.kind, signature=anomaly.signature, description=description
    )


def _pattern(name: str, kind: AnomalyKind, description: str, **features: float) -> AnomalyPattern:
    return AnomalyPattern(
        name=name, kind=kind, description=description, signature=PatternSignature(**features)
    )


DEFAULT_PATTERNS: tuple[AnomalyPattern, ...] = (
    _pattern(
        "isolated spike",
        "spike",
        "one point far above, then back to normal",
        peak=12.0,
        shift=0.0,
        drift=0.0,
        spread=0.0,
        duration=0.02,
    ),
    _pattern(
        "burst of spikes",
        "spike",
        "several high points in a short time",
        peak=15.0,
        shift=0.5,
        drift=0.0,
        spread=0.4,
        duration=0.15,
    ),
    _pattern(
        "isolated drop",
        "dip",
        "one point far below, then back to normal",
        peak=-12.0,
        shift=0.0,
        drift=0.0,
        spread=0.0,
        duration=0.02,
    ),
    _pattern(
        "step up",
        "level_shift",
        "the level jumps up and stays",
        peak=10.0,
        shift=8.0,
        drift=0.0,
        spread=0.0,
        duration=1.0,
    ),
    _pattern(
        "step down",
        "level_shift",
        "the level drops and stays",
        peak=-10.0,
        shift=-8.0,
        drift=0.0,
        spread=0.0,
        duration=1.0,
    ),
    _pattern(
        "outage",
        "level_shift",
        "the metric falls far below anything normal and stays",
        peak=-40.0,
        shift=-35.0,
        drift=0.0,
        spread=-1.0,
        duration=1.0,
    ),
    _pattern(
        "ramp up",
        "trend_change",
        "the metric starts climbing steadily",
        peak=10.0,
        shift=8.0,
        drift=6.0,
        spread=0.0,
        duration=0.7,
    ),
    _pattern(
        "ramp down",
        "trend_change",
        "the metric starts falling steadily",
        peak=-10.0,
        shift=-8.0,
        drift=-6.0,
        spread=0.0,
        duration=0.7,
    ),
    _pattern(
        "volatility burst",
        "variance_change",
        "noise several times wider than before",
        peak=10.0,
        shift=0.0,
        drift=0.0,
        spread=1.3,
        duration=0.4,
    ),
    _pattern(
        "flatline",
        "variance_change",
        "the metric stops moving (a stuck sensor or feed)",
        peak=-4.0,
        shift=-1.0,
        drift=0.0,
        spread=-2.5,
        duration=0.2,
    ),
)
