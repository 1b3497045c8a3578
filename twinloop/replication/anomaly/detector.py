"""Streaming, causal anomaly detection on one metric: value novelty plus a seasonal context test.

Two channels of evidence, both in *fractions of the range seen so far*, so one threshold fits
every series:

* **novelty** — how far the new value lies from every one of the last ``history`` values
  (leaving out the latest ``exclusion`` points), divided by the range of all values seen;
  discounted where the neighbouring values are sparse (``SortedWindow.novelty``). A value no
  recent point came near is what most labelled incidents look like (new extremes, new levels,
  a flat line where the series never rests).
* **context** — the value against a robust baseline (level, or level + daily or weekly
  profile, whichever predicts best so far): the point deviation, CUSUM sums that catch level
  shifts and a running variance, each turned into a tail probability against its own history.
  Only surprises beyond ``surprise_floor`` (−log10 p) speak, so the channel adds seasonal
  and in-range anomalies without adding noise.

The evidence is then passed through a cooldown (a point scores only if it beats every raw
value of the previous ``cooldown`` points: one incident, one alert) and mapped to a score in
[0, 1] with ``raw / (raw + score_scale)``. Nothing looks ahead: the score of point t is
computed before point t is added to any state, and a whole-series run is literally the online
update applied to each point (``detect_anomalies``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from twinloop.contract import SECONDS_PER_DAY, SECONDS_PER_WEEK
from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.ensemble import Member, member_specs, own_spec
from twinloop.replication.anomaly.models import (
    Anomaly,
    AnomalyPattern,
    AnomalyResult,
    AnomalyScore,
    AnomalySettings,
    Channel,
    Direction,
)
from twinloop.replication.anomaly.patterns import classify, match_pattern
from twinloop.replication.anomaly.streaming import (
    SeasonalBaseline,
    SortedWindow,
    TailModel,
)

EPOCH = datetime(1970, 1, 1)
SPACING_SAMPLES = 16  # gaps looked at before the series' sampling interval is fixed
CUSUM_DRIFT = 1.0  # in units of the mean absolute error (≈ 0.8 σ for Gaussian noise)
Z_CAP = 8.0  # one point moves a CUSUM sum by at most this much
MAX_FOLLOW = 4  # an ambiguous anomaly is followed for at most this many × confirm points


def _seconds(timestamp: datetime | np.datetime64 | float | int, field_name: str) -> float:
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is not None:
            return timestamp.timestamp()
        return (timestamp - EPOCH).total_seconds()
    if isinstance(timestamp, np.datetime64):
        return float(timestamp.astype("datetime64[ms]").astype(np.int64)) / 1000.0
    if (
        isinstance(timestamp, int | float)
        and not isinstance(timestamp, bool)
        and math.isfinite(timestamp)
    ):
        return float(timestamp)
    raise InvalidInput(field_name, f"{timestamp!r} is not a timestamp")


@dataclass
class _Event:
    """An anomaly being followed until ``confirm`` points after its onset have been seen."""

    index: int
    seconds: float
    value: float
    score: float
    baseline: SeasonalBaseline
    profile: list[float]
    scale: float
    pre: list[float]
    post: list[float] = field(default_factory=list)

    def deseasonalised(self, seconds: float, value: float) -> float:
        """The value without the seasonal profile as it was at onset."""
        return value - self.profile[self.baseline.phase(seconds)]


class AnomalyDetector:
    """Scores one point at a time; ``update`` never uses a point after the one it scores.

    Finished anomalies (labelled once ``settings.confirm`` points after onset are in) are
    collected by ``completed()``; ``finish()`` labels the open one at the end of a series.
    """

    def __init__(
        self,
        settings: AnomalySettings | None = None,
        patterns: Sequence[AnomalyPattern] = (),
    ) -> None:
        self.settings = settings or AnomalySettings()
        self.patterns = tuple(patterns)
        s = self.settings
        self._n = 0
        self._last_seconds: float | None = None
        self._gaps: list[float] = []
        specs = member_specs(s)
        self._members = [
            Member(*spec, s.usual_quantile, s.usual_window, s.cooldown) for spec in specs
        ]
        self._own = self._members[specs.index(own_spec(s))]
        self._windows = {m.history: SortedWindow(m.history) for m in self._members}
        # The distinct (history, neighbours) pairs: each novelty is computed once per point.
        self._novelty_keys = list(dict.fromkeys(m.novelty_key for m in self._members))
        # The latest points wait here before joining the window: a value is not "seen before"
        # merely because the point just before it was alike (the matrix profile's exclusion
        # zone, for single values).
        self._pending: deque[float] = deque()
        self._max = -math.inf
        self._min = math.inf
        self._level = SeasonalBaseline(0.0, 0, s.level_alpha, s.seasonal_gamma)
        self._seasonal: list[SeasonalBaseline] = []
        self._tails = [TailModel(s.tail_history, 30, 100) for _ in range(5)]
        self._cusum_up = 0.0
        self._cusum_down = 0.0
        self._variance = 1.0
        self._recent_points: deque[tuple[float, float]] = deque(maxlen=4 * s.confirm)
        self._event: _Event | None = None
        self._done: list[Anomaly] = []
        # The last point's two channels before weighting (novelty, context −log10 p): the
        # score is a fixed function of them, so model selection (bench.anomaly_cv) can try
        # weightings, cooldowns and floors without re-running the detector.
        self.evidence: tuple[float, float] = (0.0, 0.0)

    # -- the per-point step -------------------------------------------------------------

    def update(self, timestamp: datetime | np.datetime64 | float, value: float) -> AnomalyScore:
        """Score ``value`` observed at ``timestamp`` from it and the past only."""
        seconds = _seconds(timestamp, "timestamp")
        index = self._n
        score, raw, channel, direction = self._step(seconds, float(value), "timestamp", "value")
        # Every field is computed here, none comes from the caller: skip re-validation (a
        # validated construction cost as much as the whole detector step).
        return AnomalyScore.model_construct(
            index=index,
            timestamp=EPOCH + timedelta(seconds=seconds),
            value=float(value),
            score=score,
            raw=raw,
            is_anomaly=score >= self.settings.threshold,
            channel=channel,
            direction=direction,
        )

    def _step(
        self, seconds: float, x: float, ts_field: str, value_field: str
    ) -> tuple[float, float, Channel, Direction | None]:
        s = self.settings
        if not math.isfinite(x):
            raise InvalidInput(value_field, f"{x} is not a finite number")
        if self._last_seconds is not None:
            gap = seconds - self._last_seconds
            if gap < 0 and s.timestamp_order == "strict":
                raise InvalidInput(
                    ts_field,
                    f"{EPOCH + timedelta(seconds=seconds)} is earlier than the previous "
                    f"{EPOCH + timedelta(seconds=self._last_seconds)} (timestamps must not "
                    "go back; timestamp_order='row_order', or --row-order, keeps the row order)",
                )
            if gap > 0 and len(self._gaps) < SPACING_SAMPLES:
                self._gaps.append(gap)
                if len(self._gaps) == SPACING_SAMPLES:
                    self._start_seasonal()
        self._last_seconds = seconds

        scoring = self._n >= s.warmup
        # The first departure from a constant series is measured against itself (novelty 1).
        value_range = self._max - self._min or abs(x - self._max)
        novelties = {
            (h, k): (
                self._windows[h].novelty(x, k) / value_range
                if scoring and value_range > 0.0
                else 0.0
            )
            for h, k in self._novelty_keys
        }
        surprise, deviation = self._context(seconds, x)
        total = 0.0
        for m in self._members:
            total += m.step(novelties[m.novelty_key], surprise, scoring, self._n)
        score = total / len(self._members)
        own = self._own
        novelty = novelties[own.novelty_key]
        self.evidence = (novelty, surprise if scoring else 0.0)
        raw = own.raw
        channel: Channel = (
            "none" if raw <= 0.0 else ("novelty" if novelty >= own.context else "context")
        )
        direction: Direction | None = (
            None if deviation == 0.0 else ("up" if deviation > 0 else "down")
        )

        self._follow_event(seconds, x, score)
        self._pending.append(x)
        if len(self._pending) > s.exclusion:
            oldest = self._pending.popleft()
            for window in self._windows.values():
                window.add(oldest)
        self._max = max(self._max, x)
        self._min = min(self._min, x)
        self._recent_points.append((seconds, x))
        self._n += 1
        return score, raw, channel, direction

    # -- the context channel -------------------------------------------------------------

    def _start_seasonal(self) -> None:
        """Once the sampling interval is known, add daily and weekly baselines that fit it."""
        s = self.settings
        spacing = sorted(self._gaps)[len(self._gaps) // 2]
        for period, max_bins in ((SECONDS_PER_DAY, 48), (SECONDS_PER_WEEK, 168)):
            points = period / spacing
            if points >= 6:
                baseline = SeasonalBaseline(
                    period, min(max_bins, round(points)), s.level_alpha, s.seasonal_gamma
                )
                baseline.level = self._level.level
                self._seasonal.append(baseline)

    def _baseline(self) -> SeasonalBaseline:
        """The baseline that predicts best so far; a seasonal one must clearly beat the level."""
        best = self._level
        bar = self.settings.seasonal_gain * self._level.scale.value
        for baseline in self._seasonal:
            ready = baseline.bins_seen >= 0.9 * baseline.bins
            if ready and baseline.scale.count > baseline.bins and baseline.scale.value < bar:
                bar = baseline.scale.value
                best = baseline
        return best

    def _context(self, seconds: float, x: float) -> tuple[float, float]:
        """(−log10 p of the most surprising context statistic, signed deviation in scales)."""
        chosen = self._baseline()
        phase = chosen.phase(seconds)
        predicted = chosen.predict(phase)
        surprise = 0.0
        z = 0.0
        if predicted is not None and chosen.scale.count >= 2:
            floor = 1e-3 * (self._max - self._min) + 1e-12
            z = (x - predicted) / max(chosen.scale.value, floor)
            self._cusum_up = max(0.0, self._cusum_up + min(z, Z_CAP) - CUSUM_DRIFT)
            self._cusum_down = max(0.0, self._cusum_down + min(-z, Z_CAP) - CUSUM_DRIFT)
            self._variance += 0.05 * (min(z * z, Z_CAP * Z_CAP) - self._variance)
            stats = (max(z, 0.0), max(-z, 0.0), self._cusum_up, self._cusum_down, self._variance)
            for tail, stat in zip(self._tails, stats, strict=True):
                surprise = max(surprise, tail.surprise(stat))
                tail.add(stat)
        for baseline in (self._level, *self._seasonal):
            baseline.update(baseline.phase(seconds), x)
        return surprise, z

    # -- anomaly events ------------------------------------------------------------------

    def _follow_event(self, seconds: float, x: float, score: float) -> None:
        s = self.settings
        if self._event is None and score >= s.threshold:
            baseline = self._baseline()
            event = _Event(
                index=self._n,
                seconds=seconds,
                value=x,
                score=score,
                baseline=baseline,
                profile=list(baseline.profile),
                scale=max(1.25 * baseline.scale.value, 1e-3 * (self._max - self._min)),
                pre=[],
            )
            event.pre = [event.deseasonalised(t, v) for t, v in self._recent_points]
            self._event = event
        if self._event is None:
            return
        event = self._event
        event.score = max(event.score, score)
        event.post.append(event.deseasonalised(seconds, x))
        seen = len(event.post)
        # Label after ``confirm`` points; an ambiguous window (a deviation that has neither
        # returned nor taken a clear shape) is followed for up to 4 × confirm points.
        if seen >= s.confirm and seen % (s.confirm // 2) == 0:
            *_, settled = classify(event.pre, event.post, event.scale)
            if settled or seen >= MAX_FOLLOW * s.confirm:
                self._close_event()

    def _close_event(self) -> None:
        event = self._event
        if event is None:
            return
        self._event = None
        kind, signature, _ = classify(event.pre, event.post, event.scale)
        match = match_pattern(kind, signature, self.patterns, self.settings.min_similarity)
        self._done.append(
            Anomaly(
                index=event.index,
                timestamp=EPOCH + timedelta(seconds=event.seconds),
                value=event.value,
                score=event.score,
                kind=kind,
                signature=signature,
                pattern=match,
                points_seen=len(event.post),
            )
        )

    def completed(self) -> list[Anomaly]:
        """Anomalies labelled since the last call (each is returned once)."""
        done, self._done = self._done, []
        return done

    def finish(self) -> list[Anomaly]:
        """Label the anomaly still open (with the points it has) and return all pending ones."""
        self._close_event()
        return self.completed()


def _timestamps_seconds(timestamps: Sequence[object] | npt.NDArray[np.generic]) -> list[float]:
    array = np.asarray(timestamps)
    if np.issubdtype(array.dtype, np.datetime64):
        if np.isnat(array).any():
            row = int(np.flatnonzero(np.isnat(array))[0])
            raise InvalidInput(f"timestamps[{row}]", "missing timestamp")
        ms = array.astype("datetime64[ms]").astype(np.int64)
        return [float(v) / 1000.0 for v in ms.tolist()]
    return [_seconds(t, f"timestamps[{i}]") for i, t in enumerate(array.tolist())]


def detect_anomalies(
    timestamps: Sequence[object] | npt.NDArray[np.generic],
    values: Sequence[float] | npt.NDArray[np.floating],
    settings: AnomalySettings | None = None,
    patterns: Sequence[AnomalyPattern] = (),
) -> AnomalyResult:
    """Score a whole series: the online detector applied point by point (same scores)."""
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 1 or vals.size == 0:
        raise InvalidInput("values", "the series is empty")
    seconds = _timestamps_seconds(timestamps)
    if len(seconds) != vals.size:
        raise InvalidInput("timestamps", f"{len(seconds)} timestamps for {vals.size} values")
    bad = np.flatnonzero(~np.isfinite(vals))
    if bad.size:
        raise InvalidInput(f"values[{int(bad[0])}]", f"{vals[bad[0]]} is not a finite number")
    if float(vals.max()) == float(vals.min()):
        raise InvalidInput("values", f"the series is constant ({vals[0]:g}): nothing can stand out")
    detector = AnomalyDetector(settings, patterns)
    scores: list[float] = []
    for i, (t, x) in enumerate(zip(seconds, vals.tolist(), strict=True)):
        score, *_ = detector._step(t, x, f"timestamps[{i}]", f"values[{i}]")
        scores.append(score)
    anomalies = detector.finish()
    return AnomalyResult(
        settings=detector.settings,
        n_points=vals.size,
        scores=scores,
        anomalies=anomalies,
        patterns_used=[p.name for p in detector.patterns],
    )
