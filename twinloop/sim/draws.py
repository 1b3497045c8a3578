"""Vectorised draw helpers of the lifecycle engine: uint32 thresholds, categories, percentiles.

A probability becomes a uint32 threshold once, so a step decides an event by comparing raw random
bits with it (no float conversion per slot); a categorical draw costs one uniform whatever numpy
version runs it; the latency percentiles come from one partial sort instead of a full one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

TWO32 = 4_294_967_296.0


def threshold(p: NDArray[np.floating]) -> NDArray[np.uint32]:
    """Probability → uint32 threshold t with P(bits < t) = t / 2³² ≈ p."""
    return np.minimum(np.asarray(p, dtype=np.float64) * TWO32, TWO32 - 1).astype(np.uint32)


def categorical(rng: np.random.Generator, p: NDArray[np.float64], size: int) -> NDArray[np.int64]:
    """Draw category indices with probabilities p (one uniform per draw, stable across numpy)."""
    cum = np.cumsum(p)
    idx = np.searchsorted(cum / cum[-1], rng.random(size), side="right")
    return np.minimum(idx, p.size - 1)


def percentiles(x: NDArray[np.floating]) -> tuple[float, float]:
    """p50 and p95 with linear interpolation (numpy's default), by one partial sort."""
    pos = np.array([0.5, 0.95]) * (x.size - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, x.size - 1)
    part = np.partition(x, np.unique(np.concatenate([lo, hi])))
    vals = part[lo] + (part[hi] - part[lo]) * (pos - lo)
    return float(vals[0]), float(vals[1])
