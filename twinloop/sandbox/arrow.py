"""Arrow tables inside pydantic results: kept as ``pyarrow.Table``, written as columns in JSON.

Replicate-level data is the part of a result a statistician re-analyses, so it stays a real
Arrow table in Python (zero-copy to Parquet) and becomes ``{column: [values…]}`` in JSON; that
form validates back into a table, so a result survives a JSON round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import pyarrow as pa
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema


def _to_table(value: Any) -> pa.Table:
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, Mapping):
        try:
            return pa.table({str(k): list(v) for k, v in value.items()})
        except (pa.ArrowException, TypeError) as exc:
            raise ValueError(f"not a table of equal-length columns: {exc}") from exc
    raise ValueError("expected an Arrow table or a {column: [values]} mapping")


def _to_columns(table: pa.Table) -> dict[str, list[Any]]:
    return table.to_pydict()  # type: ignore[no-any-return]


ArrowTable = Annotated[
    pa.Table,
    PlainValidator(_to_table),
    PlainSerializer(_to_columns, when_used="json"),
    WithJsonSchema(
        {
            "type": "object",
            "description": "An Arrow table as {column: [values]}",
            "additionalProperties": {"type": "array"},
        }
    ),
]


def rows_to_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pa.Table:
    """Build a table from row dicts with a fixed column order (empty rows give empty columns)."""
    return pa.table({name: [row.get(name) for row in rows] for name in columns})
