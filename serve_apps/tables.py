"""Tables in JSON request and response bodies: records or columns in, columns out.

A KPI history or a population arrives either as an array of records
(``[{"timestamp": "2024-01-01", "revenue": 10.5}, ...]``) or as an object of equal-length columns
(``{"timestamp": [...], "revenue": [...]}``) — the two shapes ``twinloop.replication.tables``
reads from a ``.json`` file. Size limits are checked before anything is converted.
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

import pyarrow as pa

from serve_apps.limits import Limits, check_limit
from twinloop.errors import InvalidInput

Cell: TypeAlias = str | float | bool | None
JsonTable: TypeAlias = list[dict[str, Cell]] | dict[str, list[Cell]]


def table_from_json(data: JsonTable, limits: Limits, field: str) -> pa.Table:
    """Check the size, then build an Arrow table; a column of mixed types is kept as text."""
    if isinstance(data, dict):
        columns = data
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise InvalidInput(field, f"columns have different lengths {sorted(lengths)}")
        rows = lengths.pop() if lengths else 0
    else:
        rows = len(data)
        check_limit(f"{field}.rows", rows, limits.max_rows)
        names = list(dict.fromkeys(k for record in data for k in record))
        check_limit(f"{field}.columns", len(names), limits.max_columns)
        columns = {k: [record.get(k) for record in data] for k in names}
    check_limit(f"{field}.rows", rows, limits.max_rows)
    check_limit(f"{field}.columns", len(columns), limits.max_columns)
    if rows == 0 or not columns:
        raise InvalidInput(field, "the table has no rows")
    arrays: dict[str, pa.Array] = {}
    for name, values in columns.items():
        if not name:
            raise InvalidInput(field, "a column has an empty name")
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            # Numbers and words mixed: keep as text so the core names the bad value.
            arrays[name] = pa.array([None if v is None else str(v) for v in values])
    return pa.table(arrays)


def table_to_columns(table: pa.Table) -> dict[str, list[Any]]:
    """Columns as JSON-safe lists: times as ISO text, NaN and infinities as null."""
    out: dict[str, list[Any]] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_temporal(column.type):
            column = column.cast(pa.string())
        elif pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        values = column.to_pylist()
        if pa.types.is_floating(column.type):
            values = [v if v is None or math.isfinite(v) else None for v in values]
        out[name] = values
    return out
