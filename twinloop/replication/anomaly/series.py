"""Reading a single-metric series (a timestamp column and one value column) from CSV.

The anomaly CLI and the NAB harness both read series this way; NAB's ``timestamp,value`` files
work as they are. Row order is kept as the truth: nothing is sorted or de-duplicated here (the
detector decides what to do with timestamps that step back).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from twinloop.errors import InvalidInput

TIMESTAMP_NAMES = ("timestamp", "time", "ts", "date", "datetime")


@dataclass(frozen=True)
class Series:
    """A series as read: timestamps (``datetime64[s]``, row order kept) and float values."""

    name: str
    timestamps: npt.NDArray[np.datetime64]
    values: npt.NDArray[np.float64]
    value_column: str

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _timestamp_column(table: pa.Table, field: str) -> npt.NDArray[np.datetime64]:
    names = [name.lower() for name in table.column_names]
    index = next((names.index(n) for n in TIMESTAMP_NAMES if n in names), 0)
    column = table.column(index)
    name = table.column_names[index]
    if pa.types.is_timestamp(column.type):
        if column.type.tz is not None:
            column = pc.cast(column, pa.timestamp(column.type.unit))  # stored as UTC
        stamps = column.cast(pa.timestamp("s")).to_numpy(zero_copy_only=False)
    elif pa.types.is_date(column.type):
        stamps = column.cast(pa.timestamp("s")).to_numpy(zero_copy_only=False)
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        # Epoch seconds: the common export format of monitoring systems.
        seconds = column.to_numpy(zero_copy_only=False).astype(np.float64)
        if not np.all(np.isfinite(seconds)):
            raise InvalidInput(f"{field}.{name}", "epoch timestamps must be finite")
        stamps = seconds.astype(np.int64).astype("datetime64[s]")
    else:
        try:
            parsed = pc.strptime(column, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=False)
        except pa.ArrowInvalid as exc:
            raise InvalidInput(
                f"{field}.{name}", f"not a timestamp column (first value {column[0]!s})"
            ) from exc
        stamps = parsed.to_numpy(zero_copy_only=False)
    if np.isnat(stamps).any():
        row = int(np.flatnonzero(np.isnat(stamps))[0])
        raise InvalidInput(f"{field}.{name}[{row}]", "missing timestamp")
    out: npt.NDArray[np.datetime64] = np.asarray(stamps).astype("datetime64[s]")
    return out


def read_series_csv(path: str | Path, value_column: str | None = None) -> Series:
    """Read ``path``: the timestamp column (named like ``timestamp``, else the first) and one value.

    ``value_column`` picks the value column; by default the file must hold exactly one other
    column. Non-numeric or missing values are refused with the column and row named.
    """
    source = Path(path)
    field = str(source)
    if not source.is_file():
        raise InvalidInput("series", f"{field} is not a file")
    try:
        table = pacsv.read_csv(source)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput("series", f"{field} is not a readable CSV: {exc}") from exc
    if table.num_rows == 0:
        raise InvalidInput(f"{field}.rows", "the series is empty")
    if table.num_columns < 2:
        raise InvalidInput(
            f"{field}.columns", f"need a timestamp and a value, got {table.column_names}"
        )
    stamps = _timestamp_column(table, field)
    names = [name.lower() for name in table.column_names]
    ts_index = next((names.index(n) for n in TIMESTAMP_NAMES if n in names), 0)
    others = [name for i, name in enumerate(table.column_names) if i != ts_index]
    if value_column is None:
        if len(others) != 1:
            raise InvalidInput(f"{field}.columns", f"choose one value column among {others}")
        value_column = others[0]
    elif value_column not in others:
        raise InvalidInput("value_column", f"{value_column!r} is not among {others}")
    column = table.column(value_column)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise InvalidInput(f"{field}.{value_column}", f"not numeric (type {column.type})")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise InvalidInput(f"{field}.{value_column}[{row}]", "missing value")
    values = column.to_numpy(zero_copy_only=False).astype(np.float64)
    return Series(name=source.stem, timestamps=stamps, values=values, value_column=value_column)
