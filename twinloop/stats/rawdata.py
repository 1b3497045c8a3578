"""Raw per-unit experiment data: read Parquet, CSV or Arrow files into validated numpy columns.

A raw file has one row per randomisation unit: a variant column, dimension columns (segments
such as country or device), numeric metric columns, and optionally each metric's pre-period
covariate. :func:`load_raw` reads it with pyarrow (no pandas), checks it, and returns a
:class:`RawTable` whose methods reduce a metric to per-variant sufficient statistics with
vectorised group sums — so ten million rows become a handful of numbers before any test runs.
Missing metric values drop that unit from that metric only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from twinloop.errors import InvalidInput
from twinloop.stats.inputs import MetricSpec
from twinloop.stats.results import Direction, Role
from twinloop.stats.sufficient import BinomialStats, CovariateStats, RatioStats, SampleStats

Format = Literal["parquet", "csv", "arrow"]
Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
_SUFFIXES: dict[str, Format] = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv",
    ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
}  # fmt: skip
NULL_CATEGORY = "<null>"


@dataclass(frozen=True, slots=True)
class Categorical:
    """A dimension (or the variant) column as integer codes into ``categories``."""

    codes: npt.NDArray[np.int32]
    categories: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class RawTable:
    """Validated per-unit data: variant codes, dimensions, metrics (NaN = missing), covariates."""

    source: str
    n_rows: int
    variant_column: str
    variant: Categorical
    dimensions: Mapping[str, Categorical]
    metrics: Mapping[str, npt.NDArray[np.float64]]
    covariates: Mapping[str, npt.NDArray[np.float64]]

    @property
    def variants(self) -> tuple[str, ...]:
        """Variant names found in the data, sorted."""
        return self.variant.categories

    def mask(self, **where: str) -> Mask:
        """Rows whose dimensions equal the given values, e.g. ``mask(country="DE")``."""
        selected = np.ones(self.n_rows, dtype=bool)
        for dimension, value in where.items():
            column = self.dimensions.get(dimension)
            if column is None:
                raise InvalidInput(
                    f"dimensions.{dimension}", f"unknown dimension; have {sorted(self.dimensions)}"
                )
            if value not in column.categories:
                return np.zeros(self.n_rows, dtype=bool)
            selected &= column.codes == column.categories.index(value)
        return selected

    def units(self, mask: Mask | None = None) -> dict[str, int]:
        """Rows (units) per variant, for the sample-ratio check."""
        codes = self.variant.codes if mask is None else self.variant.codes[mask]
        counts = np.bincount(codes, minlength=len(self.variants))
        return {name: int(c) for name, c in zip(self.variants, counts, strict=True)}

    def sample_stats(self, metric: str, mask: Mask | None = None) -> dict[str, SampleStats]:
        """Per-variant count, mean and centred sum of squares of ``metric``."""
        codes, (x,) = self._select(mask, self._metric(metric))
        n, mean, m2, _ = _group_moments(codes, len(self.variants), x)
        return {
            name: SampleStats.from_moments(int(n[i]), mean[i], m2[i], field=f"metrics.{metric}")
            for i, name in enumerate(self.variants)
        }

    def binomial_stats(self, metric: str, mask: Mask | None = None) -> dict[str, BinomialStats]:
        """Per-variant units and conversions of a 0/1 ``metric``."""
        codes, (x,) = self._select(mask, self._metric(metric))
        if np.any((x != 0) & (x != 1)):
            raise InvalidInput(f"metrics.{metric}", "a conversion metric takes 0 or 1 per unit")
        k = len(self.variants)
        n = np.bincount(codes, minlength=k)
        hits = np.bincount(codes, weights=x, minlength=k)
        return {
            name: BinomialStats(int(n[i]), round(float(hits[i])))
            for i, name in enumerate(self.variants)
        }

    def covariate_stats(self, metric: str, mask: Mask | None = None) -> dict[str, CovariateStats]:
        """Per-variant sums of ``metric`` with its pre-period covariate (for CUPED)."""
        if metric not in self.covariates:
            raise InvalidInput(f"covariates.{metric}", "no pre-period covariate for this metric")
        y, x = self._metric(metric), self.covariates[metric]
        codes, (y, x) = self._select(mask, y, x)
        return {
            name: CovariateStats.from_centred(*values)
            for name, values in zip(
                self.variants, _bivariate(codes, len(self.variants), y, x), strict=True
            )
        }

    def ratio_stats(
        self, numerator: str, denominator: str, mask: Mask | None = None
    ) -> dict[str, RatioStats]:
        """Per-variant sums of a ratio metric Σnumerator / Σdenominator."""
        codes, (y, x) = self._select(mask, self._metric(numerator), self._metric(denominator))
        return {
            name: RatioStats.from_centred(*values)
            for name, values in zip(
                self.variants, _bivariate(codes, len(self.variants), y, x), strict=True
            )
        }

    def metric_spec(
        self,
        metric: str,
        *,
        metric_type: Literal["mean", "proportion", "ratio"] = "mean",
        denominator: str | None = None,
        cuped: bool = True,
        direction: Direction = "higher",
        role: Role = "primary",
        name: str | None = None,
        mask: Mask | None = None,
    ) -> MetricSpec:
        """A :class:`MetricSpec` for :func:`twinloop.stats.compare.compare` from this table."""
        variants: Mapping[str, Any]
        if metric_type == "ratio":
            if denominator is None:
                raise InvalidInput("denominator", "a ratio metric needs a denominator column")
            variants = self.ratio_stats(metric, denominator, mask)
        elif metric_type == "proportion":
            variants = self.binomial_stats(metric, mask)
        elif cuped and metric in self.covariates:
            variants = self.covariate_stats(metric, mask)
        else:
            variants = self.sample_stats(metric, mask)
        return MetricSpec(
            name=name or metric,
            variants=dict(variants),
            direction=direction,
            role=role,
            metric_type=metric_type,
        )

    def _metric(self, name: str) -> npt.NDArray[np.float64]:
        column = self.metrics.get(name)
        if column is None:
            raise InvalidInput(f"metrics.{name}", f"unknown metric; have {sorted(self.metrics)}")
        return column

    def _select(
        self, mask: Mask | None, *columns: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.int32], list[npt.NDArray[np.float64]]]:
        """Codes and columns of the rows in ``mask`` where every column has a value."""
        keep = None if mask is None else np.asarray(mask, dtype=bool)
        if keep is not None and keep.shape != (self.n_rows,):
            raise InvalidInput("mask", f"needs {self.n_rows} booleans, got shape {keep.shape}")
        for column in columns:
            missing = np.isnan(column)
            if missing.any():
                keep = ~missing if keep is None else keep & ~missing
        if keep is None:  # every row counts: no copies of ten-million-row columns
            return self.variant.codes, list(columns)
        return self.variant.codes[keep], [column[keep] for column in columns]


def load_raw(
    path: str | Path,
    *,
    variant_column: str = "variant",
    metrics: Sequence[str] | None = None,
    dimensions: Sequence[str] | None = None,
    covariates: Mapping[str, str] | None = None,
    format: Format | None = None,
) -> RawTable:
    """Read a Parquet, CSV or Arrow IPC/Feather file of per-unit rows into a :class:`RawTable`.

    ``metrics`` defaults to every numeric column that is not the variant or a covariate;
    ``dimensions`` to every text column but the variant; ``covariates`` maps a metric to its
    pre-period column. The format comes from the suffix (``.csv.gz`` works) unless given.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInput("path", f"no such file: {str(file)!r}")
    kind = format or _format_of(file)
    try:
        if kind == "parquet":
            table = pq.read_table(file)
        elif kind == "csv":
            delimiter = "\t" if ".tsv" in file.suffixes else ","
            table = pacsv.read_csv(str(file), parse_options=pacsv.ParseOptions(delimiter=delimiter))
        else:
            table = feather.read_table(file)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput("path", f"cannot read {file.name} as {kind}: {exc}") from exc
    return from_arrow(
        table,
        variant_column=variant_column,
        metrics=metrics,
        dimensions=dimensions,
        covariates=covariates,
        source=str(file),
    )


def from_arrow(
    table: pa.Table,
    *,
    variant_column: str = "variant",
    metrics: Sequence[str] | None = None,
    dimensions: Sequence[str] | None = None,
    covariates: Mapping[str, str] | None = None,
    source: str = "<table>",
) -> RawTable:
    """Validate an in-memory Arrow table into a :class:`RawTable` (see :func:`load_raw`)."""
    names = list(table.column_names)
    if variant_column not in names:
        raise InvalidInput(
            "variant_column", f"column {variant_column!r} not found in {source}; columns: {names}"
        )
    if table.num_rows == 0:
        raise InvalidInput("path", f"{source} has no rows")
    covariate_map = dict(covariates or {})
    for metric, column in covariate_map.items():
        if column not in names:
            raise InvalidInput(f"covariates.{metric}", f"column {column!r} not found in {source}")
    numeric = [n for n in names if _is_numeric(table.schema.field(n).type)]
    reserved = {variant_column, *covariate_map.values()}
    metric_names = list(metrics) if metrics is not None else [
        n for n in numeric if n not in reserved and n not in (dimensions or ())
    ]  # fmt: skip
    dimension_names = list(dimensions) if dimensions is not None else [
        n for n in names if n not in reserved and n not in numeric
    ]  # fmt: skip
    if not metric_names:
        raise InvalidInput("metrics", f"no numeric metric columns in {source}; columns: {names}")
    variant = _categorical(table.column(variant_column))
    if (variant.codes < 0).any():
        missing = int((variant.codes < 0).sum())
        raise InvalidInput("variant_column", f"{missing} rows have no {variant_column!r} value")
    dims: dict[str, Categorical] = {}
    for name in dimension_names:
        if name not in names:
            raise InvalidInput(f"dimensions.{name}", f"column not found in {source}")
        dims[name] = _categorical(table.column(name), null=NULL_CATEGORY)
    metric_columns = {m: _numeric(table, m, f"metrics.{m}", source) for m in metric_names}
    for metric in covariate_map:
        if metric not in metric_columns:
            raise InvalidInput(f"covariates.{metric}", "covariate given for an unknown metric")
    covariate_columns = {
        m: _numeric(table, c, f"covariates.{m}", source) for m, c in covariate_map.items()
    }
    return RawTable(
        source=source,
        n_rows=table.num_rows,
        variant_column=variant_column,
        variant=variant,
        dimensions=dims,
        metrics=metric_columns,
        covariates=covariate_columns,
    )


def _format_of(file: Path) -> Format:
    for suffix in reversed(file.suffixes):
        if suffix.lower() in _SUFFIXES:
            return _SUFFIXES[suffix.lower()]
    raise InvalidInput("format", f"cannot tell the format of {file.name}; use parquet, csv, arrow")


def _is_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    )


def _numeric(table: pa.Table, name: str, field: str, source: str) -> npt.NDArray[np.float64]:
    if name not in table.column_names:
        raise InvalidInput(field, f"column {name!r} not found in {source}")
    column = table.column(name)
    if not _is_numeric(column.type):
        raise InvalidInput(field, f"column {name!r} is not numeric ({column.type})")
    values: Floats = np.asarray(
        pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    finite = np.isfinite(values)
    if not finite.any():
        raise InvalidInput(field, f"column {name!r} has no values (all missing)")
    if np.isinf(values).any():
        raise InvalidInput(field, f"column {name!r} has infinite values")
    return values


def _categorical(column: pa.ChunkedArray, null: str | None = None) -> Categorical:
    """Dictionary-encode a column as strings; nulls become ``null`` or code -1."""
    text = pc.cast(column, pa.string()) if not pa.types.is_string(column.type) else column
    if null is not None:
        text = pc.fill_null(text, null)
    encoded = pc.dictionary_encode(text).combine_chunks()
    categories = [str(v) for v in encoded.dictionary.to_pylist()]
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    # Sorted categories make variant order independent of row order.
    order = np.argsort(categories, kind="stable")
    remap = np.empty(len(categories) + 1, dtype=np.int32)
    remap[order] = np.arange(len(categories), dtype=np.int32)
    remap[-1] = -1
    return Categorical(remap[codes], tuple(categories[i] for i in order))


def _group_moments(
    codes: npt.NDArray[np.int32], k: int, x: Floats
) -> tuple[npt.NDArray[np.int64], Floats, Floats, Floats]:
    """Per-group counts, means, centred sums of squares Σ(x - x̄)², and the shifted values.

    Values are shifted by their overall mean first, so Σd² - n·d̄² loses precision only to the
    groups' mean differences (small between variants) — one pass of group sums, no gather of
    per-group means back onto ten million rows.
    """
    shift = float(x.mean()) if x.size else 0.0
    d = x - shift
    n = np.bincount(codes, minlength=k).astype(np.int64)
    total = np.bincount(codes, weights=d, minlength=k)
    mean_d = total / np.maximum(n, 1)
    squares = np.bincount(codes, weights=d * d, minlength=k)
    m2: Floats = np.maximum(squares - total * mean_d, 0.0)
    return n, mean_d + shift, m2, d


def _bivariate(
    codes: npt.NDArray[np.int32], k: int, a: Floats, b: Floats
) -> list[tuple[int, float, float, float, float, float]]:
    """Per-group (n, ā, b̄, Σ(a-ā)², Σ(b-b̄)², Σ(a-ā)(b-b̄)) from shifted group sums."""
    n, mean_a, caa, da = _group_moments(codes, k, a)
    _, mean_b, cbb, db = _group_moments(codes, k, b)
    safe = np.maximum(n, 1)
    sum_da = np.bincount(codes, weights=da, minlength=k)
    sum_db = np.bincount(codes, weights=db, minlength=k)
    cab = np.bincount(codes, weights=da * db, minlength=k) - sum_da * sum_db / safe
    return [
        (int(n[i]), float(mean_a[i]), float(mean_b[i]), float(caa[i]), float(cbb[i]), float(cab[i]))
        for i in range(k)
    ]
