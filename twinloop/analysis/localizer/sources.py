"""Building leaf tables from files and Arrow tables: leaf exports, KPI histories and A/B units.

Three shapes of input reach the localizer:

* a **leaf export** — one row per leaf with actual and expected columns (the Squeeze B0
  ``real,predict,a,b,c,d`` files): :func:`read_leaf_table` / :func:`leaf_table_from_arrow`;
* a **KPI history** — one row per leaf and period; the expected value of the anomalous period is
  the mean of the same leaf over the periods before it (the RobustSpot RS files, converted the
  way RiskLoc's code does): :func:`leaf_table_from_history` / :func:`read_rs_case`;
* **per-unit A/B data** — one row per unit with a variant column: the expected treatment value
  of a leaf is control's per-unit rate there times the treatment's units (:func:`ab_leaf_table`).

pyarrow reads ``.csv``, ``.csv.gz`` and ``.parquet``; dimension columns are read as strings so
``p2p=1`` stays ``"1"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from twinloop.analysis.localizer.leaves import FloatArray, LeafTable
from twinloop.errors import InvalidInput

#: An Arrow table, or a mapping of column name to array (numpy, list).
TableLike: TypeAlias = pa.Table | Mapping[str, npt.ArrayLike]


def read_table(path: str | Path, dims: Sequence[str] = ()) -> pa.Table:
    """Read a CSV(.gz) or Parquet file; the ``dims`` columns are read as strings."""
    source = Path(path)
    if not source.is_file():
        raise InvalidInput("path", f"{source} is not a file")
    try:
        if source.suffix == ".parquet":
            return pq.read_table(source)
        types = {name: pa.string() for name in dims}
        return pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInput("path", f"cannot read {source}: {exc}") from exc


def _column(table: TableLike, name: str, field: str) -> npt.NDArray[np.generic]:
    names = table.column_names if isinstance(table, pa.Table) else list(table)
    if name not in names:
        raise InvalidInput(f"{field}", f"column {name!r} not found (columns: {', '.join(names)})")
    if isinstance(table, pa.Table):
        col = table.column(name)
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise InvalidInput(f"{field}[{row}]", f"column {name!r} has a missing value")
        return np.asarray(col.to_numpy(zero_copy_only=False))
    return np.asarray(table[name])


def _numeric(table: TableLike, name: str, field: str) -> FloatArray:
    raw = _column(table, name, field)
    try:
        return np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"column {name!r} is not numeric") from exc


def _leaf_index(
    table: TableLike, dims: Sequence[str], rows: npt.NDArray[np.bool_] | None = None
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.str_]]]:
    """Each (selected) row's leaf index, and each leaf's value per dimension (as strings).

    Dimensions are dictionary-encoded by Arrow (fast on millions of string rows) and the
    per-dimension codes folded into one integer key, so the leaves are one ``np.unique`` of
    integers — not a row-wise unique of string tuples.
    """
    if not dims:
        raise InvalidInput("dims", "name at least one dimension column")
    labels: list[npt.NDArray[np.str_]] = []
    codes: list[npt.NDArray[np.int64]] = []
    for d in dims:
        raw = _column(table, d, f"dims.{d}")
        if rows is not None:
            raw = raw[rows]
        encoded = pa.array(raw).cast(pa.string()).dictionary_encode()
        if encoded.null_count:
            raise InvalidInput(f"dims.{d}", "has a missing value")
        dictionary = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=str)
        labels.append(dictionary)
        codes.append(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64))
    n_rows = codes[0].shape[0] if codes else 0
    key = np.zeros(n_rows, dtype=np.int64)
    radix = 1
    for code, dictionary in zip(codes, labels, strict=True):
        radix *= max(len(dictionary), 1)
        if radix >= 2**62:
            raise InvalidInput("dims", "too many value combinations to index")
        key = key * max(len(dictionary), 1) + code
    uniq, leaf = np.unique(key, return_inverse=True)
    digits: dict[str, npt.NDArray[np.str_]] = {}
    rest = uniq.copy()
    for d, dictionary in zip(reversed(dims), reversed(labels), strict=True):
        size = max(len(dictionary), 1)
        digits[d] = dictionary[rest % size]
        rest //= size
    return leaf.ravel().astype(np.int64), {d: digits[d] for d in dims}


def leaf_table_from_arrow(
    table: TableLike,
    dims: Sequence[str],
    *,
    actual: str | None = None,
    expected: str | None = None,
    numerator_actual: str | None = None,
    numerator_expected: str | None = None,
    denominator_actual: str | None = None,
    denominator_expected: str | None = None,
) -> LeafTable:
    """A leaf table from named columns: ``actual``/``expected`` (additive) or the four
    numerator/denominator columns (derived); rows sharing a combination are summed."""
    if not dims:
        raise InvalidInput("dims", "name at least one dimension column")
    columns = {d: _column(table, d, f"dims.{d}") for d in dims}
    derived = (numerator_actual, numerator_expected, denominator_actual, denominator_expected)
    if actual is not None or expected is not None:
        if any(c is not None for c in derived):
            raise InvalidInput("columns", "give actual/expected or numerator/denominator, not both")
        if actual is None or expected is None:
            raise InvalidInput("actual" if actual is None else "expected", "column name missing")
        return LeafTable.additive(
            columns, _numeric(table, actual, "actual"), _numeric(table, expected, "expected")
        )
    names = ("numerator_actual", "numerator_expected", "denominator_actual", "denominator_expected")
    missing = [n for n, c in zip(names, derived, strict=True) if c is None]
    if missing:
        raise InvalidInput(missing[0], "column name missing (or give actual and expected)")
    values = [_numeric(table, str(c), n) for n, c in zip(names, derived, strict=True)]
    return LeafTable.derived(columns, *values)


def read_leaf_table(path: str | Path, dims: Sequence[str], **columns: str | None) -> LeafTable:
    """Read a leaf export (CSV(.gz)/Parquet); ``columns`` as in :func:`leaf_table_from_arrow`."""
    return leaf_table_from_arrow(read_table(path, dims), dims, **columns)


def leaf_table_from_history(
    table: TableLike,
    dims: Sequence[str],
    *,
    time: str,
    at: float,
    history: int,
    step: float,
    numerator: FloatArray,
    denominator: FloatArray,
) -> LeafTable:
    """A derived leaf table for period ``at`` of a leaf × period history.

    The expected numerator and denominator of a leaf are each its mean over the periods
    ``at - step·history … at - step`` in which it appears (0 when it appears in none); the
    leaves are those present at ``at``. ``numerator``/``denominator`` hold one value per row.
    """
    if history < 1:
        raise InvalidInput("history", f"must be >= 1, got {history}")
    stamps = _numeric(table, time, "time")
    n_rows = stamps.shape[0]
    if numerator.shape[0] != n_rows or denominator.shape[0] != n_rows:
        raise InvalidInput("numerator", "needs one value per row")
    now = stamps == at
    if not now.any():
        raise InvalidInput("at", f"no row has {time} == {at:g}")
    past = (stamps < at) & (stamps >= at - step * history)
    rows = now | past
    leaf, leaf_dims = _leaf_index(table, dims, rows)
    m = int(leaf.max()) + 1
    is_now = now[rows]
    num, den = numerator[rows], denominator[rows]
    present = np.bincount(leaf[is_now], minlength=m) > 0
    periods = np.bincount(leaf[~is_now], minlength=m).astype(np.float64)
    seen = np.maximum(periods, 1.0)
    values = (
        np.bincount(leaf[is_now], weights=num[is_now], minlength=m),
        np.bincount(leaf[~is_now], weights=num[~is_now], minlength=m) / seen,
        np.bincount(leaf[is_now], weights=den[is_now], minlength=m),
        np.bincount(leaf[~is_now], weights=den[~is_now], minlength=m) / seen,
    )
    dim_columns = {d: v[present] for d, v in leaf_dims.items()}
    return LeafTable.derived(dim_columns, *(v[present] for v in values))


def read_rs_case(path: str | Path, timestamp: float, history: int = 4) -> LeafTable:
    """One RobustSpot RS case: success rate ``(cnt - value) / cnt`` at minute ``timestamp``.

    Columns ``min`` (unix seconds, step 60), ``value`` (failures), ``cnt`` (attempts) and the
    attribute columns. Expected values follow RiskLoc's conversion: the leaf's mean over the
    ``history`` minutes before, over the minutes it appears in.
    """
    head = read_table(path)
    dims = [c for c in head.column_names if c not in ("min", "value", "cnt")]
    table = read_table(path, dims)
    cnt = _numeric(table, "cnt", "cnt")
    failures = _numeric(table, "value", "value")
    return leaf_table_from_history(
        table,
        dims,
        time="min",
        at=timestamp,
        history=history,
        step=60.0,
        numerator=cnt - failures,
        denominator=cnt,
    )


def ab_leaf_table(
    data: TableLike,
    *,
    variant: str,
    dims: Sequence[str],
    metric: str,
    control: str,
    treatment: str,
    denominator: str | None = None,
    prior_units: float = 1.0,
) -> LeafTable:
    """Leaves of the treatment with expectations from control, from per-unit A/B rows.

    Per leaf, the expected treatment ``metric`` (and ``denominator``, for a ratio metric such
    as revenue per visit) is control's per-unit mean in that leaf times the treatment's units
    there. A leaf with few control units is shrunk toward control's overall per-unit mean with
    ``prior_units`` pseudo-units, and one with none takes that overall mean.
    """
    if prior_units < 0:
        raise InvalidInput("prior_units", f"must be >= 0, got {prior_units}")
    arms = _column(data, variant, "variant").astype(str)
    is_c, is_t = arms == control, arms == treatment
    if not is_c.any():
        raise InvalidInput("control", f"no unit has {variant} == {control!r}")
    if not is_t.any():
        raise InvalidInput("treatment", f"no unit has {variant} == {treatment!r}")
    used = is_c | is_t
    leaf, leaf_dims = _leaf_index(data, dims, used)
    m = int(leaf.max()) + 1
    arm_c = is_c[used]
    units_c = np.bincount(leaf[arm_c], minlength=m).astype(np.float64)
    units_t = np.bincount(leaf[~arm_c], minlength=m).astype(np.float64)
    has_t = units_t > 0
    dim_columns = {d: v[has_t] for d, v in leaf_dims.items()}

    def expected_and_actual(name: str, field: str) -> tuple[FloatArray, FloatArray]:
        values = _numeric(data, name, field)[used]
        if not np.all(np.isfinite(values)):
            raise InvalidInput(field, f"column {name!r} has a non-finite value")
        sum_c = np.bincount(leaf[arm_c], weights=values[arm_c], minlength=m)
        sum_t = np.bincount(leaf[~arm_c], weights=values[~arm_c], minlength=m)
        overall = float(sum_c.sum()) / float(units_c.sum())
        rate = (sum_c + prior_units * overall) / np.maximum(units_c + prior_units, 1e-300)
        rate = np.where(units_c + prior_units > 0, rate, overall)
        return (rate * units_t)[has_t], sum_t[has_t].astype(np.float64)

    expected, actual = expected_and_actual(metric, "metric")
    if denominator is None:
        return LeafTable.additive(dim_columns, actual, expected)
    den_expected, den_actual = expected_and_actual(denominator, "denominator")
    return LeafTable.derived(dim_columns, actual, expected, den_actual, den_expected)
