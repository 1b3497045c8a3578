"""Synthetic data for edge cases: copula rows plus surges, mix shifts, drift, gaps and outliers.

Rows are generated in order and the row index is read as time (a regenerated timestamp column
makes that explicit), so an edge case has a place: cold start at the beginning, a surge and a
drift from a stated fraction of the rows on. Each edge case reports what it measured on the
output next to what was requested. Segment-mix shifts re-sample whole rows conditionally on the
segment, so they are applied first; the others transform the rows in the order given. An
integer column named like an id with distinct values (``customer_id``) is not modelled but
numbered on from the source's largest id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray
from pydantic import Field, TypeAdapter, ValidationError

from twinloop.contract import FrozenModel, invalid_input
from twinloop.errors import InvalidInput
from twinloop.replication.findings import Finding
from twinloop.replication.synthetic.copula import GaussianCopula, Marginal
from twinloop.replication.synthetic.edgecases import (
    ColdStart,
    ConceptDrift,
    EdgeCaseReport,
    ExtremeValues,
    MissingValues,
    SegmentMixShift,
    TrafficSurge,
    apply_edge_case,
    segment_targets,
)
from twinloop.replication.tables import is_textual

FloatArray = NDArray[np.float64]
EdgeCase = Annotated[
    ColdStart | TrafficSurge | SegmentMixShift | ConceptDrift | MissingValues | ExtremeValues,
    Field(discriminator="kind"),
]
_EDGE_CASE = TypeAdapter(EdgeCase)
# Short names for the command line: NAME:MAGNITUDE[:COLUMN].
_SHORT = {
    "cold-start": ("cold_start", "fraction"),
    "surge": ("traffic_surge", "factor"),
    "segment-shift": ("segment_shift", "magnitude"),
    "mix-shift": ("segment_shift", "magnitude"),
    "drift": ("drift", "magnitude"),
    "missing": ("missing", "rate"),
    "extreme": ("extreme", "rate"),
}


class SyntheticSpec(FrozenModel):
    """How many rows, the seed, and the edge cases to inject."""

    rows: int = Field(ge=1, le=50_000_000)
    seed: int = Field(default=0, ge=0)
    edge_cases: tuple[EdgeCase, ...] = ()
    keep_missing: bool = Field(
        default=True, description="Blank values at each column's source missing rate."
    )


class SyntheticResult(FrozenModel):
    """What was generated: shape, the spec (with the seed), per-edge-case measurements."""

    seed: int
    spec: SyntheticSpec
    rows: int
    columns: list[str]
    source_rows: int
    edge_cases: list[EdgeCaseReport]
    findings: list[Finding]


def parse_edge_case(text: str, field: str = "edge_case") -> EdgeCase:
    """``drift:0.2``, ``surge:3:traffic``, ``missing:0.05``, … (NAME:MAGNITUDE[:COLUMN])."""
    parts = [p.strip() for p in text.split(":")]
    name = parts[0].lower().replace("_", "-")
    if name not in _SHORT or len(parts) not in (2, 3):
        raise InvalidInput(
            field, f"{text!r} is not NAME:MAGNITUDE[:COLUMN] with NAME in {', '.join(_SHORT)}"
        )
    kind, key = _SHORT[name]
    data: dict[str, object] = {"kind": kind, key: parts[1]}
    if len(parts) == 3:
        multi = kind in ("cold_start", "missing", "extreme")
        data["columns" if multi else "column"] = [parts[2]] if multi else parts[2]
    try:
        return _EDGE_CASE.validate_python(data)
    except ValidationError as exc:
        err = invalid_input(exc, data, field=field)
        raise InvalidInput(err.field, f"{text!r}: {err.message}") from None


def synthesize(source: pa.Table, spec: SyntheticSpec) -> tuple[pa.Table, SyntheticResult]:
    """Fit the copula to ``source`` and generate ``spec.rows`` rows with the edge cases."""
    if source.num_rows == 0:
        raise InvalidInput("source", "the table has no rows")
    temporal, ids, modelled, findings = _roles(source)
    if not modelled:
        raise InvalidInput("source", "no numeric, boolean or text column to synthesise")
    copula = GaussianCopula.fit(source, modelled)
    values, reports = _generate(copula, spec)
    marginals = {m.name: m for m in copula.marginals}
    columns: dict[str, pa.Array] = {}
    for name in source.column_names:
        if name in temporal:
            columns[name] = _time_grid(source.column(name), spec.rows)
        elif name in ids:
            start = int(pc.max(source.column(name)).as_py()) + 1
            columns[name] = pa.array(np.arange(start, start + spec.rows, dtype=np.int64))
        elif name in marginals:
            columns[name] = _to_arrow(marginals[name], values[name])
    table = pa.table(columns)
    result = SyntheticResult(
        seed=spec.seed,
        spec=spec,
        rows=spec.rows,
        columns=table.column_names,
        source_rows=source.num_rows,
        edge_cases=[reports[i] for i in range(len(reports))],
        findings=findings,
    )
    return table, result


def _roles(source: pa.Table) -> tuple[list[str], list[str], list[str], list[Finding]]:
    """(time, id and modelled columns, findings for the columns left out or renumbered)."""
    named = list(zip(source.column_names, source.columns, strict=True))
    temporal = [n for n, c in named if pa.types.is_temporal(c.type)]
    ids = [n for n, c in named if _is_identifier(n, c)]
    modelled = [n for n, c in named if n not in temporal and n not in ids and _modelable(c.type)]
    findings = [
        Finding(
            code="column_dropped",
            field=f"source.{n}",
            message=f"{n} ({source.schema.field(n).type}) cannot be synthesised; left out",
        )
        for n in source.column_names
        if n not in temporal and n not in modelled and n not in ids
    ]
    findings += [
        Finding(
            code="id_regenerated",
            field=f"source.{n}",
            message=f"{n} is a unique integer id; synthetic rows get new ids after the "
            "source's largest, so they never collide with real ones",
        )
        for n in ids
    ]
    return temporal, ids, modelled, findings


def _generate(
    copula: GaussianCopula, spec: SyntheticSpec
) -> tuple[dict[str, FloatArray], dict[int, EdgeCaseReport]]:
    """The modelled columns' values with the edge cases applied, and each case's report.

    Seed children: 0 the copula's uniforms, 1 the blanked cells, 2 + i the i-th edge case.
    """
    seeds = np.random.SeedSequence(spec.seed).spawn(2 + len(spec.edge_cases))
    rng = np.random.default_rng(seeds[0])
    uniforms = copula.sample_uniform(spec.rows, rng)
    reports: dict[int, EdgeCaseReport] = {}
    for i, shift in enumerate(spec.edge_cases):
        if isinstance(shift, SegmentMixShift):
            rng_i = np.random.default_rng(seeds[2 + i])
            reports[i] = _mix_shift(copula, shift, uniforms, rng_i, i)
    values = {m.name: m.quantile(uniforms[:, j]) for j, m in enumerate(copula.marginals)}
    if spec.keep_missing:
        blank_rng = np.random.default_rng(seeds[1])
        for m in copula.marginals:
            if m.missing_rate > 0:
                values[m.name][blank_rng.random(spec.rows) < m.missing_rate] = np.nan
    marginals = {m.name: m for m in copula.marginals}
    for i, case in enumerate(spec.edge_cases):
        if i not in reports:
            reports[i] = apply_edge_case(
                case,
                values,
                marginals,
                np.random.default_rng(seeds[2 + i]),
                f"edge_cases[{i}]",
            )
    return values, reports


def write_parquet(table: pa.Table, path: str | Path, result: SyntheticResult | None = None) -> None:
    """Write Parquet; the result (seed, spec, measurements) goes into the schema metadata."""
    if result is not None:
        meta = dict(table.schema.metadata or {})
        meta[b"twinloop.synthetic"] = result.model_dump_json().encode()
        table = table.replace_schema_metadata(meta)
    pq.write_table(table, str(path))


def read_result(path: str | Path) -> SyntheticResult | None:
    """The result stored by ``write_parquet``, if any."""
    meta = pq.read_schema(str(path)).metadata or {}
    raw = meta.get(b"twinloop.synthetic")
    return None if raw is None else SyntheticResult.model_validate(json.loads(raw))


def _is_identifier(name: str, column: pa.ChunkedArray) -> bool:
    """An integer column named like an id whose values are all distinct."""
    lowered = name.lower()
    named = lowered == "id" or lowered.endswith(("_id", "id_"))
    return bool(
        named
        and pa.types.is_integer(column.type)
        and column.null_count == 0
        and len(pc.unique(column)) == len(column)
    )


def _modelable(t: pa.DataType) -> bool:
    return bool(
        is_textual(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
    )


def _mix_shift(
    copula: GaussianCopula,
    case: SegmentMixShift,
    uniforms: FloatArray,
    rng: np.random.Generator,
    index: int,
) -> EdgeCaseReport:
    """Re-sample the rows after ``start`` with exact per-segment counts (conditional copula)."""
    field = f"edge_cases[{index}]"
    names = copula.names
    column = case.column or next((m.name for m in copula.marginals if m.kind == "category"), None)
    if column is None or column not in names:
        raise InvalidInput(f"{field}.column", f"no segment (text) column {column or ''!r} found")
    j = names.index(column)
    marginal = copula.marginals[j]
    if marginal.kind != "category":
        raise InvalidInput(f"{field}.column", f"{column!r} is not a segment (text) column")
    source_p = np.diff(np.concatenate([[0.0], marginal.cumulative]))
    target = segment_targets(case, marginal.categories, source_p, field)
    rows = uniforms.shape[0]
    first = int(np.floor(case.start * rows))
    window = rows - first
    counts = _largest_remainder(target, window)
    lower = np.concatenate([[0.0], marginal.cumulative[:-1]])
    u = np.concatenate(
        [rng.uniform(lower[k], marginal.cumulative[k], size=c) for k, c in enumerate(counts)]
    )
    rng.shuffle(u)
    if window:
        uniforms[first:] = copula.sample_uniform(window, rng, fixed=(j, u))
    measured = 0.5 * float(np.abs(counts / max(window, 1) - source_p).sum())
    return EdgeCaseReport(
        kind="segment_shift",
        columns=[column],
        requested=float(0.5 * np.abs(target - source_p).sum()),
        measured=measured,
        rows_affected=window,
        note="total variation distance between the segment mix after the shift and the source mix",
    )


def _largest_remainder(p: FloatArray, total: int) -> NDArray[np.int64]:
    raw = p * total
    counts = np.floor(raw).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(raw - counts))[:short]] += 1
    return counts


def _time_grid(column: pa.ChunkedArray, rows: int) -> pa.Array:
    """A regular grid from the source's first timestamp at its median step."""
    as_int = (
        column.cast(pa.int64())
        if not pa.types.is_date(column.type)
        else (column.cast(pa.date32()).cast(pa.int32()).cast(pa.int64()))
    )
    ticks = np.unique(np.asarray(as_int.drop_null().to_numpy(), dtype=np.int64))
    step = int(np.median(np.diff(ticks))) if ticks.size > 1 else 1
    grid = ticks[0] + step * np.arange(rows, dtype=np.int64)
    if pa.types.is_date(column.type):
        return pa.array(grid.astype(np.int32), type=pa.int32()).cast(pa.date32())
    return pa.array(grid, type=pa.int64()).cast(column.type)


def _to_arrow(marginal: Marginal, values: FloatArray) -> pa.Array:
    missing = np.isnan(values)
    if marginal.kind == "category":
        codes = np.where(missing, 0, values).astype(np.int64)
        labels = np.array(marginal.categories, dtype=object)[codes]
        return pa.array(labels, type=pa.string(), mask=missing)
    if marginal.kind == "int":
        return pa.array(np.rint(np.where(missing, 0, values)).astype(np.int64), mask=missing)
    if marginal.kind == "bool":
        return pa.array(np.where(missing, 0, values) >= 0.5, mask=missing)
    return pa.array(values, type=pa.float64(), mask=missing)
