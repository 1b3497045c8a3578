"""The daily KPI series calibration needs, checked once: complete, finite, non-constant, sane.

Calibration refuses what it cannot fit rather than guessing: a missing required column, a
missing or non-finite value, a negative count, a constant series (it carries nothing to fit),
more conversions than interactions, non-daily rows, or too few days once the holdout is taken.
Each refusal is ``InvalidInput`` naming the column as ``history.<column>``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinloop.contract import SECONDS_PER_DAY
from twinloop.errors import InvalidInput
from twinloop.replication.history import KpiHistory

FloatArray = NDArray[np.float64]
REQUIRED = ("new", "active", "churned", "interactions", "conversions", "revenue")
OPTIONAL = ("satisfaction", "model_accuracy", "latency_p50_ms", "latency_p95_ms")
# 1970-01-01 was a Thursday: weekday (Monday = 0) of epoch day d is (d + 3) mod 7.
_EPOCH_WEEKDAY = 3


@dataclass(frozen=True)
class DailyKpis:
    """Daily series of one business; ``weekday0`` is the weekday of row 0 (Monday = 0)."""

    new: FloatArray
    active: FloatArray
    churned: FloatArray
    interactions: FloatArray
    conversions: FloatArray
    revenue: FloatArray
    satisfaction: FloatArray | None
    model_accuracy: FloatArray | None
    latency_p50_ms: FloatArray | None
    latency_p95_ms: FloatArray | None
    weekday0: int
    start: str

    @property
    def days(self) -> int:
        return int(self.new.size)

    @property
    def exposure(self) -> FloatArray:
        """Customers at risk during each day: the day's active count before its churn."""
        return self.active + self.churned

    def series(self, name: str) -> FloatArray | None:
        """A KPI by name, with ``conversion_rate`` derived from conversions / interactions."""
        if name == "conversion_rate":
            return np.divide(
                self.conversions,
                self.interactions,
                out=np.zeros_like(self.conversions),
                where=self.interactions > 0,
            )
        value: FloatArray | None = getattr(self, name)
        return value

    def head(self, days: int) -> DailyKpis:
        """The first ``days`` rows (the training window)."""
        cut: dict[str, Any] = {
            name: (None if getattr(self, name) is None else getattr(self, name)[:days])
            for name in (*REQUIRED, *OPTIONAL)
        }
        return replace(self, **cut)


def daily_kpis(history: KpiHistory, holdout_days: int, min_train_days: int) -> DailyKpis:
    """Validate a KPI history for calibration; the first failing column is named."""
    history.require_single_series("history.segments")
    if history.n_rows < 2 or history.step is None:
        raise InvalidInput("history", f"{history.n_rows} rows; calibration needs a daily series")
    if history.time_kind == "datetime":
        day_step, weekday0 = SECONDS_PER_DAY, _weekday(float(history.time[0]))
    else:
        day_step, weekday0 = 1.0, 0  # numbered days: day 0 is taken to be a Monday, as in the twin
    if not np.isclose(history.step, day_step):
        raise InvalidInput(
            f"history.{history.timestamp_column}",
            f"rows are {history.step:g} {'s' if day_step > 1 else 'units'} apart; calibration "
            "needs one row per day",
        )
    gaps = int(np.rint((history.time[-1] - history.time[0]) / day_step)) + 1 - history.n_rows
    if gaps:
        raise InvalidInput(
            f"history.{history.timestamp_column}", f"{gaps} days are missing; fill the gaps first"
        )
    train = history.n_rows - holdout_days
    if train < min_train_days:
        raise InvalidInput(
            "history",
            f"{history.n_rows} daily rows leave {train} for fitting after holding back "
            f"{holdout_days} (holdout_days); at least {min_train_days} are needed",
        )
    columns: dict[str, FloatArray | None] = {}
    for name in REQUIRED:
        if name not in history.metrics:
            raise InvalidInput(
                f"history.{name}",
                f"column missing; calibration needs {', '.join(REQUIRED)} "
                f"(have {', '.join(history.metric_names)})",
            )
        columns[name] = _checked(history, name)
    for name in OPTIONAL:
        columns[name] = _checked(history, name) if name in history.metrics else None
    over = np.flatnonzero(columns["conversions"] > columns["interactions"])  # type: ignore[operator]
    if over.size:
        raise InvalidInput(
            "history.conversions",
            f"exceeds interactions on {over.size} days (first at row {int(over[0])})",
        )
    sat = columns["satisfaction"]
    if sat is not None and (sat.min() < 0 or sat.max() > 1):
        raise InvalidInput("history.satisfaction", "values must lie in [0, 1]")
    acc = columns["model_accuracy"]
    if acc is not None and (acc.min() < 0 or acc.max() > 1):
        raise InvalidInput("history.model_accuracy", "values must lie in [0, 1]")
    return DailyKpis(
        **columns,  # type: ignore[arg-type]
        weekday0=weekday0,
        start=history.time_labels()[0],
    )


def _weekday(epoch_seconds: float) -> int:
    return (int(np.floor(epoch_seconds / SECONDS_PER_DAY)) + _EPOCH_WEEKDAY) % 7


def _checked(history: KpiHistory, name: str) -> FloatArray:
    field = f"history.{name}"
    values = np.asarray(history.metrics[name], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InvalidInput(
            field,
            f"{bad.size} missing or non-finite values (first at row {int(bad[0])}); "
            "calibration needs a complete series",
        )
    if values.min() < 0:
        raise InvalidInput(field, f"negative value {values.min():g}; counts and money are >= 0")
    if name in REQUIRED and np.all(values == values[0]):
        raise InvalidInput(field, f"constant ({values[0]:g}); a constant series has nothing to fit")
    return values
