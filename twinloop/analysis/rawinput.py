"""Raw per-unit A/B data as analyzer input: columns found, coded, and reduced to statistics.

A raw table has one row per unit: a variant column, segment (text) columns, numeric metric
columns and optionally a time column (when the unit arrived). This module reads it from
Parquet, CSV or Arrow (or takes an in-memory Arrow table), picks sensible defaults for the
columns, and builds the statistics engine's :class:`~twinloop.stats.rawdata.RawTable`.

It does not call ``rawdata.from_arrow``: that casts every dictionary column to strings, which
took 7 s on ten million rows. Here dictionary columns keep their integer indices (only the small
dictionaries become strings) and per-variant sums are one ``bincount`` per metric, so ten
million rows reduce in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from twinloop.analysis.cells import CellIndex, cell_index
from twinloop.analysis.inputs import MetricInput, RawSource
from twinloop.contract import SECONDS_PER_DAY
from twinloop.errors import InvalidInput
from twinloop.stats.rawdata import NULL_CATEGORY, Categorical, RawTable

Floats = npt.NDArray[np.float64]
TIME_NAMES = ("arrival_day", "arrival_time", "assigned_at", "timestamp", "time", "date", "day")
_SUFFIXES: dict[str, Literal["parquet", "csv", "arrow"]] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
# A text column with more distinct values than this share of the rows (and at least
# NEAR_UNIQUE_MIN of them) labels units, not segments: a segment of one or two units cannot be
# a root cause, and 100k single-unit "segments" made the search 20× slower.
NEAR_UNIQUE_SHARE = 0.5
NEAR_UNIQUE_MIN = 50


@dataclass(frozen=True, eq=False)
class RawInput:
    """Coded per-unit data, its cells, and each unit's day since the start (with a time column).

    ``boolean`` names the metric columns stored as booleans (known 0/1 without a scan);
    ``excluded_dims`` the text columns left out of the default segment dimensions because they
    are named like an id or nearly unique per row (column → why).
    """

    table: RawTable
    cells: CellIndex
    boolean: frozenset[str]
    time: Floats | None
    time_column: str | None
    excluded_dims: tuple[tuple[str, str], ...] = ()


def read_table(source: RawSource, base_dir: Path | None = None) -> pa.Table:
    """Read ``source.path`` (relative paths from ``base_dir``) as an Arrow table."""
    if source.path is None:
        raise InvalidInput("raw.path", "no file given (and no table passed in memory)")
    file = Path(source.path)
    if not file.is_absolute() and base_dir is not None:
        file = base_dir / file
    if not file.is_file():
        raise InvalidInput("raw.path", f"no such file: {str(file)!r}")
    kind = source.format or next(
        (_SUFFIXES[s.lower()] for s in reversed(file.suffixes) if s.lower() in _SUFFIXES), None
    )
    if kind is None:
        raise InvalidInput("raw.format", f"cannot tell the format of {file.name}; give format")
    try:
        if kind == "parquet":
            return pq.read_table(file)
        if kind == "csv":
            delimiter = "\t" if ".tsv" in file.suffixes else ","
            options = pacsv.ParseOptions(delimiter=delimiter)
            return pacsv.read_csv(str(file), parse_options=options)
        return feather.read_table(file)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput("raw.path", f"cannot read {file.name} as {kind}: {exc}") from exc


def raw_input(table: pa.Table, source: RawSource, declared: Sequence[MetricInput]) -> RawInput:
    """Code the variant and segment columns and collect the metric columns of ``table``."""
    names = list(table.column_names)
    if source.variant_column not in names:
        raise InvalidInput(
            "raw.variant_column", f"column {source.variant_column!r} not found; columns: {names}"
        )
    if table.num_rows == 0:
        raise InvalidInput("raw", "the table has no rows")
    time_column = _time_column(table, source)
    metric_names = metric_columns(table, source, declared, time_column)
    excluded: list[tuple[str, str]] = []
    if source.dimensions is not None:
        dims = list(source.dimensions)
    else:
        dims = []
        for name in names:
            if name in (source.variant_column, time_column):
                continue
            if not _is_text(table.schema.field(name).type):
                continue
            why = _unit_label(table, name)
            if why is None:
                dims.append(name)
            else:
                excluded.append((name, why))
    for dim in dims:
        if dim not in names:
            raise InvalidInput(f"raw.dimensions.{dim}", f"column not found; columns: {names}")
    variant = categorical(table.column(source.variant_column))
    if (variant.codes < 0).any():
        missing = int((variant.codes < 0).sum())
        raise InvalidInput("raw.variant_column", f"{missing} rows have no variant")
    metrics = {m: _numeric(table, m) for m in metric_names}
    coded = RawTable(
        source="<table>",
        n_rows=table.num_rows,
        variant_column=source.variant_column,
        variant=variant,
        dimensions={d: categorical(table.column(d), null=NULL_CATEGORY) for d in dims},
        metrics=metrics,
        covariates={},
    )
    time = None if time_column is None else _days(table.column(time_column), time_column)
    boolean = frozenset(m for m in metric_names if pa.types.is_boolean(table.schema.field(m).type))
    return RawInput(coded, cell_index(coded), boolean, time, time_column, tuple(excluded))


def _unit_label(table: pa.Table, name: str) -> str | None:
    """Why a text column labels units rather than segments, or None when it is a segment."""
    if _is_id(name):
        return "named like an id"
    rows = table.num_rows
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        # The dictionary bounds the distinct values: a small one needs no scan.
        bound = sum(len(chunk.dictionary) for chunk in column.chunks)
        if bound <= max(NEAR_UNIQUE_MIN, NEAR_UNIQUE_SHARE * rows):
            return None
    distinct = int(pc.count_distinct(column).as_py())
    if distinct > max(NEAR_UNIQUE_MIN, NEAR_UNIQUE_SHARE * rows):
        return f"{distinct:,} distinct values in {rows:,} rows"
    return None


def metric_columns(
    table: pa.Table, source: RawSource, declared: Sequence[MetricInput], time_column: str | None
) -> list[str]:
    """The metric columns: as given, else the declared metrics, else every numeric non-id."""
    names = table.column_names
    if source.metrics is not None:
        chosen = list(source.metrics)
    elif declared:
        chosen = [m.name for m in declared]
        chosen += [m.denominator for m in declared if m.denominator and m.denominator not in chosen]
    else:
        reserved = {source.variant_column, time_column, *(source.dimensions or ())}
        chosen = [
            n
            for n in names
            if n not in reserved and not _is_id(n) and _is_numeric(table.schema.field(n).type)
        ]
    for name in chosen:
        if name not in names:
            raise InvalidInput(f"raw.metrics.{name}", f"column not found; columns: {names}")
    if not chosen:
        raise InvalidInput("raw.metrics", f"no numeric metric columns; columns: {names}")
    return chosen


def categorical(column: pa.ChunkedArray, null: str | None = None) -> Categorical:
    """Integer codes into sorted string categories; nulls become ``null`` or code -1.

    Dictionary columns keep their indices (only the dictionary is turned into strings).
    """
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    chunks = column.unify_dictionaries().chunks
    if not chunks:
        return Categorical(np.zeros(0, dtype=np.int32), ())
    labels = [
        NULL_CATEGORY if v is None else str(v)
        for v in pc.cast(chunks[0].dictionary, pa.string()).to_pylist()
    ]
    parts = [pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False) for chunk in chunks]
    indices = parts[0] if len(parts) == 1 else np.concatenate(parts)
    has_missing = bool((indices < 0).any())
    if null is not None and has_missing:
        missing = indices < 0
        labels.append(null)
        indices = np.where(missing, len(labels) - 1, indices)
    categories, remap = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    remap = remap.ravel().astype(np.int32)
    if np.array_equal(remap, np.arange(remap.shape[0])) and not has_missing:
        codes = indices.astype(np.int32)  # dictionary already sorted: no gather needed
    else:
        lookup = np.append(remap, np.int32(-1))
        codes = lookup[indices]  # a missing index (-1) picks the appended -1
    return Categorical(codes, tuple(str(c) for c in categories))


def _time_column(table: pa.Table, source: RawSource) -> str | None:
    if source.time_column is not None:
        if source.time_column not in table.column_names:
            raise InvalidInput("raw.time_column", f"column {source.time_column!r} not found")
        return source.time_column
    return next((n for n in TIME_NAMES if n in table.column_names), None)


def _days(column: pa.ChunkedArray, name: str) -> Floats:
    """Days since the earliest unit, from numbers (already days), dates or timestamps."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        seconds = pc.cast(pc.cast(column, pa.timestamp("s", tz=kind.tz)), pa.int64())
        values = np.asarray(seconds.to_numpy(zero_copy_only=False), dtype=np.float64)
        values = values / SECONDS_PER_DAY
    elif pa.types.is_date(kind):
        days = pc.cast(pc.cast(column, pa.date32()), pa.int32())
        values = np.asarray(days.to_numpy(zero_copy_only=False), dtype=np.float64)
    elif _is_numeric(kind):
        values = np.asarray(
            pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
    else:
        raise InvalidInput("raw.time_column", f"column {name!r} is {kind}, not a time or number")
    finite = np.isfinite(values)
    if not finite.any():
        raise InvalidInput("raw.time_column", f"column {name!r} has no values")
    return values - float(values[finite].min())


def _numeric(table: pa.Table, name: str) -> Floats:
    column = table.column(name)
    if not _is_numeric(column.type):
        raise InvalidInput(f"metrics.{name}", f"column {name!r} is {column.type}, not numeric")
    values = np.asarray(
        pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    if not np.isfinite(values).all():  # one pass in the usual case of clean data
        if np.isinf(values).any():
            raise InvalidInput(f"metrics.{name}", f"column {name!r} has infinite values")
        if np.isnan(values).all():
            raise InvalidInput(f"metrics.{name}", f"column {name!r} has no values (all missing)")
    return values


def _is_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    )


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return True
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _is_id(name: str) -> bool:
    lowered = name.lower()
    return lowered == "id" or lowered.endswith(("_id", "uuid"))
