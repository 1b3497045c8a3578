"""Streaming statistics the anomaly detector is built from: sorted windows, tails, robust baselines.

Every class here sees one value at a time and never looks ahead. They are plain Python on floats
on purpose: per point they do a handful of ``bisect`` operations on lists of a few thousand
floats, which is faster than crossing into numpy for one value at a time.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque


class SortedWindow:
    """The last ``capacity`` values kept both in arrival order and sorted (O(log n) queries)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.sorted: list[float] = []
        self._fifo: deque[float] = deque()

    def __len__(self) -> int:
        return len(self.sorted)

    def add(self, value: float) -> None:
        insort(self.sorted, value)
        self._fifo.append(value)
        if len(self._fifo) > self.capacity:
            oldest = self._fifo.popleft()
            del self.sorted[bisect_left(self.sorted, oldest)]

    def quantile(self, q: float) -> float:
        """The ``q`` quantile, linearly interpolated between order statistics (numpy's default).

        Written as ``low + (high - low) * fraction`` so that bench code reproducing it on
        arrays gets the same float.
        """
        s = self.sorted
        position = q * (len(s) - 1)
        low = math.floor(position)
        high = min(low + 1, len(s) - 1)
        return s[low] + (s[high] - s[low]) * (position - low)

    def median(self) -> float:
        s = self.sorted
        n = len(s)
        return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])

    def novelty(self, value: float, k: int) -> float:
        """How far ``value`` lies from every stored value, discounted in sparse regions.

        The distance ``d`` to the nearest stored value counts fully where values are dense,
        and is scaled by ``d / spacing`` where the neighbour's own ``k`` neighbours are spread
        thinner than ``d`` (a new height among rare spikes is less new than a jump off a flat
        line). Returns 0 for an empty window.
        """
        s = self.sorted
        n = len(s)
        if n == 0:
            return 0.0
        i = bisect_left(s, value)
        below = value - s[i - 1] if i > 0 else math.inf
        above = s[i] - value if i < n else math.inf
        if below <= above:
            distance = below
            j = i - 1
            spacing = (s[j] - s[max(j - k, 0)]) / k
        else:
            distance = above
            j = i
            spacing = (s[min(j + k, n - 1)] - s[j]) / k
        if distance <= 0.0:
            return 0.0
        return distance * min(1.0, distance / spacing) if spacing > 0.0 else distance


class TailModel:
    """Tail probability of a non-negative statistic against its own recent history.

    Inside the observed range it is the empirical exceedance frequency; beyond the ``k``-th
    largest value it extrapolates an exponential tail fitted to the top ``k`` (the
    peaks-over-threshold idea), so a value far past everything seen gets a small, finite p.
    ``surprise`` returns −log10 p, 0 until ``min_history`` values have been seen.

    Zeros (most of a one-sided statistic's history) are counted but not kept sorted: inserting
    them at the front of the sorted list would move the whole list every time.
    """

    def __init__(self, capacity: int, k: int, min_history: int) -> None:
        self.capacity = capacity
        self.k = k
        self.min_history = min_history
        self._positive: list[float] = []
        self._fifo: deque[float] = deque()

    def surprise(self, value: float) -> float:
        n = len(self._fifo)
        if n < self.min_history or value <= 0.0:
            return 0.0
        s = self._positive
        m = len(s)
        k = max(2, min(self.k, n // 4))
        count = m - bisect_left(s, value)
        if count > k:
            return -math.log10(count / n)
        threshold = s[m - k] if m >= k else 0.0
        mean_excess = sum(s[max(m - k, 0) :]) / k - threshold
        if mean_excess <= 0.0:
            mean_excess = max(1e-3 * abs(threshold), 1e-12)
        log10_p = math.log10(k / n) - max(value - threshold, 0.0) / mean_excess / math.log(10.0)
        return -log10_p

    def add(self, value: float) -> None:
        self._fifo.append(value)
        if value > 0.0:
            insort(self._positive, value)
        if len(self._fifo) > self.capacity:
            oldest = self._fifo.popleft()
            if oldest > 0.0:
                del self._positive[bisect_left(self._positive, oldest)]


class RobustScale:
    """Exponentially weighted mean absolute error whose updates are clipped at ``clip`` × itself.

    The clip keeps one outlier from inflating the scale (heavy tails); the first observations
    are averaged plainly so the scale is usable early.
    """

    def __init__(self, alpha: float, clip: float = 4.0) -> None:
        self.alpha = alpha
        self.clip = clip
        self.value = 0.0
        self.count = 0

    def add(self, error: float) -> None:
        e = abs(error)
        self.count += 1
        if self.count == 1:
            self.value = e
            return
        rate = max(self.alpha, 1.0 / self.count)
        if self.value > 0.0:
            e = min(e, self.clip * self.value)
        self.value += rate * (e - self.value)


class SeasonalBaseline:
    """Additive level + one seasonal profile (Holt–Winters without trend) with clipped updates.

    ``period_bins == 0`` gives a level-only baseline. The profile is indexed by the phase of the
    timestamp (time of day, time of week), so gaps in the series do not shift it. Updates use
    the error clipped at 3 scales, so an anomaly bends the baseline only a little.
    """

    def __init__(self, period_s: float, period_bins: int, alpha: float, gamma: float) -> None:
        self.period_s = period_s
        self.bins = period_bins
        self.alpha = alpha
        self.gamma = gamma
        self.profile = [0.0] * max(period_bins, 1)
        self.seen = [0] * max(period_bins, 1)
        self.bins_seen = 0  # phase bins visited at least once
        self.level: float | None = None
        self.scale = RobustScale(alpha=0.01)

    def phase(self, timestamp: float) -> int:
        if self.bins == 0:
            return 0
        return int((timestamp % self.period_s) / self.period_s * self.bins) % self.bins

    def predict(self, phase: int) -> float | None:
        if self.level is None:
            return None
        return self.level + self.profile[phase]

    def update(self, phase: int, value: float) -> None:
        if self.level is None:
            self.level = value
            return
        if self.bins and self.seen[phase] == 0:
            # The first visit of a phase bin sets it from the level (no error to learn from).
            self.profile[phase] = value - self.level
            self.seen[phase] = 1
            self.bins_seen += 1
            return
        error = value - (self.level + self.profile[phase])
        self.scale.add(error)
        bound = 3.0 * self.scale.value
        clipped = max(-bound, min(bound, error)) if bound > 0.0 else error
        self.level += self.alpha * clipped
        if self.bins:
            self.profile[phase] += self.gamma * (1.0 - self.alpha) * clipped
            self.seen[phase] += 1
