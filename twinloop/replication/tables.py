"""Tabular input: reading Parquet, Arrow IPC, CSV and JSON files into pyarrow, and typed columns.

Library errors are translated here into ``InvalidInput`` naming the file or the column, so the
history and synthetic-data modules never see a raw ``ArrowInvalid``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.json as pajson
import pyarrow.parquet as pq
from numpy.typing import NDArray

from twinloop.errors import InvalidInput

TIMESTAMP_NAMES = ("timestamp", "time", "ts", "date", "datetime", "ds")
SUFFIXES = (
    ".parquet",
    ".pq",
    ".arrow",
    ".feather",
    ".ipc",
    ".csv",
    ".tsv",
    ".json",
    ".jsonl",
    ".ndjson",
)
# A number as text: what float() accepts, without the words float() also takes ("nan", "inf").
_MISSING = pa.array(["", "na", "n/a", "null", "none"])
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def read_table(path: str | Path, *, field: str = "history") -> pa.Table:
    """Read a table; the format comes from the file suffix (see ``SUFFIXES``)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInput(
            field, f"{p.name}: unknown format {suffix or '(none)'!r}; use {', '.join(SUFFIXES)}"
        )
    if not p.is_file():
        raise InvalidInput(field, f"file not found: {p}")
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(p)
        if suffix in (".arrow", ".feather", ".ipc"):
            return _read_ipc(p)
        if suffix in (".csv", ".tsv"):
            return _read_csv(p, "\t" if suffix == ".tsv" else ",")
        if suffix == ".json":
            return _read_json(p, field)
        return pajson.read_json(p)
    except (pa.ArrowInvalid, pa.ArrowTypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(field, f"cannot read {p.name}: {exc}") from exc


def _read_ipc(p: Path) -> pa.Table:
    try:
        return feather.read_table(p)
    except pa.ArrowInvalid:
        with pa.OSFile(str(p)) as source:  # the streaming IPC format
            return pa.ipc.open_stream(source).read_all()


def _read_csv(p: Path, delimiter: str) -> pa.Table:
    parse = pacsv.ParseOptions(delimiter=delimiter)
    try:
        return pacsv.read_csv(p, parse_options=parse)
    except pa.ArrowInvalid:
        # Type inference saw numbers first and a word later: re-read as text so that the
        # column check can name the column, the row and the value.
        with p.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh, delimiter=delimiter), [])
        convert = pacsv.ConvertOptions(column_types={h: pa.string() for h in header})
        return pacsv.read_csv(p, parse_options=parse, convert_options=convert)


def _read_json(p: Path, field: str) -> pa.Table:
    """A JSON array of records, or an object of equal-length column lists."""
    data: Any = json.loads(p.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        columns = {str(k): v for k, v in data.items()}
    elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
        names = list(dict.fromkeys(k for r in data for k in r))
        columns = {k: [r.get(k) for r in data] for k in names}
    else:
        raise InvalidInput(field, f"{p.name}: expected an array of records or an object of columns")
    arrays: dict[str, pa.Array] = {}
    for name, values in columns.items():
        if not isinstance(values, list):
            raise InvalidInput(f"{field}.{name}", "a column must be a list of values")
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed types (numbers and words): keep as text; the column check names the value.
            arrays[name] = pa.array([None if v is None else str(v) for v in values])
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise InvalidInput(field, f"{p.name}: columns have different lengths {sorted(lengths)}")
    return pa.table(arrays)


def find_timestamp_column(table: pa.Table, name: str | None, field: str) -> str:
    """The named column, else a conventionally named one, else the first temporal column."""
    if name is not None:
        if name not in table.column_names:
            raise InvalidInput(
                f"{field}.timestamp",
                f"column {name!r} not found; columns: {', '.join(table.column_names)}",
            )
        return name
    lowered: dict[str, str] = {str(c).lower(): str(c) for c in table.column_names}
    for candidate in TIMESTAMP_NAMES:
        if candidate in lowered:
            return lowered[candidate]
    for column_name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_temporal(column.type):
            return str(column_name)
    raise InvalidInput(
        f"{field}.timestamp",
        f"no timestamp column (looked for {', '.join(TIMESTAMP_NAMES)} or a temporal type) "
        f"among {', '.join(table.column_names)}",
    )


def column_as_time(
    column: pa.ChunkedArray, field: str
) -> tuple[NDArray[np.float64], Literal["datetime", "numeric"]]:
    """Seconds since the epoch (UTC) for temporal or ISO-text columns; numbers stay numbers."""
    if column.null_count:
        row = _first_null(column)
        raise InvalidInput(field, f"timestamp missing at row {row}")
    kind: Literal["datetime", "numeric"] = "datetime"
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        seconds = _epoch_seconds(column)
    elif is_textual(column.type):
        seconds = _parse_text_time(column.cast(pa.string()), field)
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        seconds = column.to_numpy().astype(np.float64)
        kind = "numeric"
        bad = np.flatnonzero(~np.isfinite(seconds))
        if bad.size:
            raise InvalidInput(field, f"timestamp {seconds[bad[0]]} at row {int(bad[0])}")
    else:
        raise InvalidInput(field, f"cannot use a {column.type} column as timestamps")
    return seconds, kind


def _epoch_seconds(column: pa.ChunkedArray) -> NDArray[np.float64]:
    ts = column.cast(pa.timestamp("us")) if pa.types.is_date(column.type) else column
    micros = pc.cast(ts, pa.int64()).to_numpy()
    unit = ts.type.unit
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return np.asarray(micros, dtype=np.float64) * scale


def _parse_text_time(text: pa.ChunkedArray, field: str) -> NDArray[np.float64]:
    for target in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
        try:
            return _epoch_seconds(pc.cast(text, target))
        except pa.ArrowInvalid:
            continue
    if text_is_numeric(text, every=True):
        return np.asarray(pc.cast(text, pa.float64()).to_numpy(), dtype=np.float64)
    for row, value in enumerate(text.to_pylist()):
        try:
            pc.cast(pa.array([value]), pa.timestamp("ns", tz="UTC"))
        except pa.ArrowInvalid:
            try:
                pc.cast(pa.array([value]), pa.timestamp("ns"))
            except pa.ArrowInvalid:
                raise InvalidInput(
                    field, f"value {value!r} at row {row} is not an ISO-8601 timestamp"
                ) from None
    raise InvalidInput(field, "timestamps mix values with and without a UTC offset")


def column_as_float(column: pa.ChunkedArray, field: str) -> NDArray[np.float64]:
    """A numeric (or boolean, or number-as-text) column as float64 with NaN for missing."""
    t = column.type
    if (
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or (pa.types.is_decimal(t))
    ):
        return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    if pa.types.is_null(t):
        return np.full(len(column), np.nan)
    if is_textual(t):
        text = column.cast(pa.string())
        # Text columns keep empty cells as "" (not null): read the usual missing markers as null.
        blank = pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(text)), value_set=_MISSING)
        text = pc.if_else(blank, pa.scalar(None, pa.string()), text)
        bad = pc.invert(pc.match_substring_regex(text, _NUMBER, ignore_case=True))
        # "nan"/"inf" spelled out count as numbers here; infinities are refused later.
        words = pc.is_in(
            pc.utf8_lower(pc.utf8_trim_whitespace(text)),
            value_set=pa.array(["nan", "inf", "+inf", "-inf", "infinity"]),
        )
        bad = pc.fill_null(pc.and_(bad, pc.invert(words)), False)
        hits = np.flatnonzero(np.asarray(bad.to_numpy(zero_copy_only=False), dtype=bool))
        if hits.size:
            row = int(hits[0])
            raise InvalidInput(
                field,
                f"not numeric: value {text[row].as_py()!r} at row {row} "
                f"({hits.size} non-numeric values)",
            )
        return np.asarray(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    raise InvalidInput(field, f"not numeric: a {t} column")


def is_textual(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return is_textual(t.value_type)
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def text_is_numeric(column: pa.ChunkedArray, *, every: bool = False) -> bool:
    """Whether any (or, with ``every``, all non-null) values of a text column are numbers."""
    matches = pc.match_substring_regex(column.cast(pa.string()), _NUMBER)
    found = pc.all(matches) if every else pc.any(matches)
    return bool(found.as_py())


def _first_null(column: pa.ChunkedArray) -> int:
    mask = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return int(np.flatnonzero(mask)[0])
