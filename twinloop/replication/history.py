"""KPI history: a validated table of timestamps, metric series and optional segment columns.

A history arrives as Parquet, Arrow IPC, CSV or JSON (see ``tables.read_table``), as a pyarrow
Table, or as arrays. Validation refuses what cannot be used (no rows, no metric column, a
non-numeric value in a metric column, an unparseable or missing timestamp, infinities, a metric
with no values) with ``InvalidInput`` naming the column, and repairs or reports the rest as coded
findings: unsorted timestamps are sorted (stably), duplicate (timestamp, segment) rows keep the
last one in file order, gaps and irregular steps against the inferred step are counted, missing
values and constant metrics are noted (those checks and repairs live in ``cleaning``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike, NDArray

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.replication.cleaning import (
    FloatArray,
    TextArray,
    TimeKind,
    check_columns,
    clean_rows,
    time_label,
)
from twinloop.replication.findings import Finding
from twinloop.replication.tables import (
    column_as_float,
    column_as_time,
    find_timestamp_column,
    is_textual,
    read_table,
    text_is_numeric,
)

_T = TypeVar("_T", bound=np.generic)
ROW_ORDER = "(row order)"  # the time of a cross-sectional history: its rows' positions


class HistorySummary(FrozenModel):
    """The JSON face of a validated history: shape, time span, inferred step and findings."""

    rows: int
    metrics: list[str]
    segments: list[str]
    time_kind: TimeKind
    start: str
    end: str
    step: float | None
    findings: list[Finding]


@dataclass(frozen=True)
class KpiHistory:
    """Time-sorted, de-duplicated KPI rows; metric arrays are float64 (NaN = missing), read-only.

    ``time`` holds seconds since the epoch (UTC) when ``time_kind`` is ``"datetime"``, else the
    numbers as given. ``step`` is the median spacing of distinct timestamps (None for one row).
    """

    time: FloatArray
    time_kind: TimeKind
    metrics: Mapping[str, FloatArray]
    segments: Mapping[str, TextArray]
    step: float | None
    findings: tuple[Finding, ...]
    timestamp_column: str = "timestamp"

    @property
    def n_rows(self) -> int:
        return int(self.time.shape[0])

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.metrics)

    def values(self, name: str) -> FloatArray:
        """One metric's values; an unknown name is ``InvalidInput`` listing the known ones."""
        if name not in self.metrics:
            raise InvalidInput(
                "history.metrics", f"unknown metric {name!r}; known: {', '.join(self.metrics)}"
            )
        return self.metrics[name]

    def matrix(self, names: Sequence[str] | None = None) -> FloatArray:
        """Metrics as an (rows × metrics) array, in ``names`` order (default: all)."""
        chosen = list(self.metrics) if names is None else list(names)
        if not chosen:
            return np.empty((self.n_rows, 0))
        return np.column_stack([self.values(n) for n in chosen])

    def require_single_series(self, field: str = "history.segments") -> None:
        """Refuse segmented rows where one row per timestamp is needed."""
        if self.segments:
            raise InvalidInput(
                field,
                f"the history has segment columns ({', '.join(self.segments)}); "
                "select one segment or collapse them first",
            )

    def select(self, **values: str) -> KpiHistory:
        """Rows of one segment value per named column; the named segment columns are dropped."""
        mask = np.ones(self.n_rows, dtype=bool)
        for column, value in values.items():
            if column not in self.segments:
                raise InvalidInput(f"segments.{column}", f"not a segment column: {column!r}")
            mask &= self.segments[column] == value
            if not mask.any():
                raise InvalidInput(f"segments.{column}", f"no rows with {column} = {value!r}")
        rest = {k: v[mask] for k, v in self.segments.items() if k not in values}
        return _build(
            self.time[mask],
            self.time_kind,
            {k: v[mask] for k, v in self.metrics.items()},
            rest,
            (),
            self.timestamp_column,
        )

    def collapse(self, how: Literal["sum", "mean"]) -> KpiHistory:
        """One row per timestamp: metrics summed (counts, money) or averaged (rates)."""
        if not self.segments:
            return self
        times, inverse = np.unique(self.time, return_inverse=True)
        out: dict[str, FloatArray] = {}
        for name, vals in self.metrics.items():
            ok = ~np.isnan(vals)
            sums = np.bincount(inverse, weights=np.where(ok, vals, 0.0), minlength=times.size)
            counts = np.bincount(inverse, weights=ok.astype(float), minlength=times.size)
            with np.errstate(invalid="ignore", divide="ignore"):
                agg = sums if how == "sum" else sums / counts
            out[name] = np.where(counts > 0, agg, np.nan)
        return _build(times, self.time_kind, out, {}, (), self.timestamp_column)

    def regular(self) -> KpiHistory:
        """The same series on the full step grid, NaN where a step is missing (no segments)."""
        self.require_single_series()
        if self.step is None or self.n_rows < 2:
            return self
        index = np.rint((self.time - self.time[0]) / self.step).astype(np.int64)
        if np.unique(index).size != index.size:
            raise InvalidInput(
                "history.timestamp", "steps are irregular; the rows do not fit one regular grid"
            )
        size = int(index[-1]) + 1
        grid = self.time[0] + self.step * np.arange(size, dtype=np.float64)
        metrics = {}
        for name, vals in self.metrics.items():
            full = np.full(size, np.nan)
            full[index] = vals
            metrics[name] = full
        return KpiHistory(
            time=_frozen(grid),
            time_kind=self.time_kind,
            metrics={k: _frozen(v) for k, v in metrics.items()},
            segments={},
            step=self.step,
            findings=self.findings,
            timestamp_column=self.timestamp_column,
        )

    def time_labels(self) -> list[str]:
        """Timestamps as ISO-8601 strings (datetime) or plain numbers (numeric)."""
        return [time_label(t, self.time_kind) for t in self.time]

    def summary(self) -> HistorySummary:
        return HistorySummary(
            rows=self.n_rows,
            metrics=list(self.metrics),
            segments=list(self.segments),
            time_kind=self.time_kind,
            start=time_label(self.time[0], self.time_kind),
            end=time_label(self.time[-1], self.time_kind),
            step=self.step,
            findings=list(self.findings),
        )

    def to_table(self) -> pa.Table:
        if self.time_kind == "datetime":
            time = pa.array(np.rint(self.time * 1e6).astype("datetime64[us]"))
        else:
            time = pa.array(self.time)
        columns: dict[str, pa.Array] = {self.timestamp_column: time}
        columns.update({k: pa.array(v, type=pa.string()) for k, v in self.segments.items()})
        columns.update({k: pa.array(v, from_pandas=True) for k, v in self.metrics.items()})
        return pa.table(columns)


def read_history(
    path: str | Path,
    *,
    timestamp: str | None = None,
    segments: Sequence[str] | None = None,
    field: str = "history",
    cross_sectional: bool = False,
) -> KpiHistory:
    """Read and validate a KPI history file (format from the suffix)."""
    return history_from_table(
        read_table(path, field=field),
        timestamp=timestamp,
        segments=segments,
        field=field,
        cross_sectional=cross_sectional,
    )


def history_from_table(
    table: pa.Table,
    *,
    timestamp: str | None = None,
    segments: Sequence[str] | None = None,
    field: str = "history",
    cross_sectional: bool = False,
) -> KpiHistory:
    """Validate a pyarrow Table: one timestamp column, optional segments, numeric metrics.

    With ``segments=None`` a text column none of whose values is a number is taken as a segment;
    a text column that mixes numbers and words is a metric with a bad value and is refused.
    ``cross_sectional``: a table without a timestamp column is accepted as rows in file order
    (finding ``no_timestamp``) — enough to fit a graph, not to find lags.
    """
    if table.num_rows == 0:
        raise InvalidInput(field, "the table has no rows")
    try:
        ts_name = find_timestamp_column(table, timestamp, field)
    except InvalidInput:
        if timestamp is not None or not cross_sectional:
            raise
        numbered = table.append_column(ROW_ORDER, pa.array(np.arange(table.num_rows)))
        history = history_from_table(numbered, timestamp=ROW_ORDER, segments=segments, field=field)
        note = Finding(
            code="no_timestamp",
            field=f"{field}.timestamp",
            message="no timestamp column: rows are taken as cross-sectional, in file order "
            "(lagged edges need a timestamp)",
        )
        return replace(history, findings=(note, *history.findings))
    time, kind = column_as_time(table.column(ts_name), f"{field}.{ts_name}")
    declared = list(segments) if segments is not None else None
    for name in declared or []:
        if name not in table.column_names:
            raise InvalidInput(f"{field}.segments", f"column {name!r} not found")
    seg: dict[str, TextArray] = {}
    metrics: dict[str, FloatArray] = {}
    for name in table.column_names:
        if name == ts_name:
            continue
        column = table.column(name)
        auto_segment = declared is None and is_textual(column.type) and not text_is_numeric(column)
        if (declared is not None and name in declared) or auto_segment:
            seg[name] = np.array(column.cast(pa.string()).to_pylist(), dtype=object)
        else:
            metrics[name] = column_as_float(column, f"{field}.{name}")
    return _validated(time, kind, metrics, seg, ts_name, field)


def history_from_arrays(
    timestamps: ArrayLike,
    metrics: Mapping[str, ArrayLike],
    *,
    segments: Mapping[str, Sequence[str]] | None = None,
    field: str = "history",
) -> KpiHistory:
    """Validate in-memory arrays: ``datetime64`` or ISO strings or numbers for time."""
    table_columns: dict[str, pa.Array] = {}
    ts = np.asarray(timestamps)
    if ts.ndim != 1 or ts.size == 0:
        raise InvalidInput(f"{field}.timestamp", "timestamps must be a non-empty 1-d sequence")
    if ts.dtype.kind == "M" and np.datetime_data(ts.dtype)[0] not in ("D", "s", "ms", "us", "ns"):
        ts = ts.astype("datetime64[s]")  # Arrow has no minute or hour unit
    table_columns["timestamp"] = pa.array(ts)
    for name, labels in (segments or {}).items():
        table_columns[name] = pa.array([str(v) for v in labels], type=pa.string())
    for name, values in metrics.items():
        arr = np.asarray(values)
        if arr.shape != ts.shape:
            raise InvalidInput(f"{field}.{name}", f"has {arr.size} values for {ts.size} timestamps")
        try:
            table_columns[name] = pa.array(arr, from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(f"{field}.{name}", f"not numeric: {exc}") from exc
    return history_from_table(
        pa.table(table_columns),
        timestamp="timestamp",
        segments=list(segments or {}),
        field=field,
    )


def _frozen(arr: NDArray[_T]) -> NDArray[_T]:
    out = np.ascontiguousarray(arr)
    out.setflags(write=False)
    return out


def _validated(
    time: FloatArray,
    kind: TimeKind,
    metrics: dict[str, FloatArray],
    segments: dict[str, TextArray],
    ts_name: str,
    field: str,
) -> KpiHistory:
    findings = check_columns(time, metrics, segments, ts_name, field)
    return _build(time, kind, metrics, segments, tuple(findings), ts_name, field)


def _build(
    time: FloatArray,
    kind: TimeKind,
    metrics: Mapping[str, FloatArray],
    segments: Mapping[str, TextArray],
    findings: tuple[Finding, ...],
    ts_name: str,
    field: str = "history",
) -> KpiHistory:
    rows = clean_rows(time, kind, metrics, segments, findings, ts_name, field)
    return KpiHistory(
        time=_frozen(rows.time),
        time_kind=kind,
        metrics={k: _frozen(v) for k, v in rows.metrics.items()},
        segments={k: _frozen(v) for k, v in rows.segments.items()},
        step=rows.step,
        findings=rows.findings,
        timestamp_column=ts_name,
    )
