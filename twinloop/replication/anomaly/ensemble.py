"""The detector's ensemble: the settings whose scores it averages, and one setting's scoring state.

Picking one setting by cross-validation on NAB's seven categories overfits (nested estimate
66.1 standard against 73.9 CV for the pick); averaging the settings CV cannot tell apart
generalises better (71.9 nested, ``bench/anomaly_ensemble.py``). The detector computes each
distinct novelty (one sorted window per history) and the context surprise once per point, and
every ``Member`` turns them into its own score.
"""

from __future__ import annotations

from collections import deque

from twinloop.replication.anomaly.models import AnomalySettings
from twinloop.replication.anomaly.streaming import SortedWindow

USUAL_MIN = 50  # raw values seen before the usual level is subtracted

# history, neighbours, context floor, context weight (score_scale), learning
MemberSpec = tuple[int, int, float | None, float, int]


def own_spec(s: AnomalySettings) -> MemberSpec:
    return (s.history, s.neighbours, s.surprise_floor, s.score_scale, s.learning)


def member_specs(s: AnomalySettings) -> list[MemberSpec]:
    """The settings whose scores are averaged: ``s`` alone, or the 36 around it.

    The ensemble spans the knobs model selection could not pin down (picking one of them by
    cross-validation on seven NAB categories overfits; averaging does not): history and the
    learning ramp × ½, 1, 2; neighbours × 1, 2; the context channel's weight × 1, 2. The
    context channel is never off in a member: an in-range dip only it sees would be diluted
    below the threshold. The order is fixed (it is the order of ``bench.anomaly_cv``'s grid)
    so the mean is the same float in the bench and here.
    """
    if not s.ensemble:
        return [own_spec(s)]
    histories = (max(10, s.history // 2), s.history, 2 * s.history)
    neighbours = (s.neighbours, min(50, 2 * s.neighbours))
    contexts = ((s.surprise_floor, 2 * s.score_scale), (s.surprise_floor, s.score_scale))
    learnings = (max(1, s.learning // 2), s.learning, 2 * s.learning)
    return [
        (h, k, floor, scale, learning)
        for h in histories
        for k in neighbours
        for floor, scale in contexts
        for learning in learnings
    ]


class Member:
    """One setting's scoring state: its usual level and cooldown over its own raw evidence."""

    def __init__(
        self,
        history: int,
        neighbours: int,
        floor: float | None,
        scale: float,
        learning: int,
        usual_quantile: float | None,
        usual_window: int,
        cooldown: int,
    ) -> None:
        self.history, self.floor, self.scale, self.learning = history, floor, scale, learning
        self.novelty_key = (history, neighbours)
        self.usual_quantile = usual_quantile
        self.usual = SortedWindow(usual_window)
        self.cooldown = cooldown
        # The cooldown's running maximum: (index, raw) pairs with decreasing raws, so the
        # largest raw of the last ``cooldown`` points is the first one (O(1) per point).
        self._peaks: deque[tuple[int, float]] = deque()
        self.raw = 0.0
        self.context = 0.0

    def step(self, novelty: float, surprise: float, scoring: bool, n: int) -> float:
        """This setting's score for point ``n`` (the single detector's formula); called once
        for every point, in order."""
        self.context = (
            self.scale * max(0.0, surprise - self.floor)
            if scoring and self.floor is not None
            else 0.0
        )
        # Early on every value is a little new: evidence ramps up over the learning period.
        raw = max(novelty, self.context) * min(1.0, n / self.learning)
        if self.usual_quantile is not None:
            # Evidence counts above what is usual for this series (its recent high quantile):
            # a heavy-tailed series is new a little all the time, a flat one never.
            usual = (
                self.usual.quantile(self.usual_quantile) if len(self.usual) >= USUAL_MIN else 0.0
            )
            self.usual.add(raw)
            raw = max(0.0, raw - usual)
        self.raw = raw
        # One incident, one alert: a point scores only if it beats the recent raw values.
        out = raw
        if self.cooldown:
            peaks = self._peaks
            while peaks and peaks[0][0] < n - self.cooldown:
                peaks.popleft()
            if peaks and raw <= peaks[0][1]:
                out = 0.0
            while peaks and peaks[-1][1] <= raw:
                peaks.pop()
            peaks.append((n, raw))
        return out / (out + self.scale)
