"""The leaf table a root-cause localizer reads: actual vs expected KPI per dimension combination.

A *leaf* is one full combination of the categorical dimensions (``country=DE, device=ios``).
Two KPI shapes are supported:

* **additive** — the KPI of a set of leaves is the sum of theirs (counts, revenue): one ``actual``
  and one ``expected`` value per leaf;
* **derived** — the KPI is a ratio of two additive sums (conversion = conversions / visits): an
  actual and expected numerator and denominator per leaf, and a set's KPI is
  ``sum(numerator) / sum(denominator)``.

Dimension values are kept as strings (``p2p=1`` and ``p2p="1"`` are the same value) and coded as
integers per dimension, so every group-by later is a ``bincount`` over integer keys. Rows that
repeat a combination are summed: raw exports often split one leaf over several rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from twinloop.errors import InvalidInput

KpiKind = Literal["additive", "derived"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The value arrays each kind carries, in order.
VALUE_FIELDS: dict[str, tuple[str, ...]] = {
    "additive": ("actual", "expected"),
    "derived": (
        "numerator_actual",
        "numerator_expected",
        "denominator_actual",
        "denominator_expected",
    ),
}


@dataclass(frozen=True, eq=False)
class LeafTable:
    """Leaves of one KPI: integer-coded dimensions and non-negative, finite value arrays.

    Invariants (checked by the constructors): at least one leaf and one dimension; every value
    array has one finite value ``>= 0`` per leaf; no two leaves share a combination.
    ``codes[i, j]`` indexes ``labels[j]``. Build one with :meth:`additive`, :meth:`derived`
    or :func:`twinloop.analysis.localizer.sources.leaf_table_from_arrow`.
    """

    kind: KpiKind
    dims: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    codes: IntArray
    values: Mapping[str, FloatArray]

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Number of distinct values per dimension."""
        return tuple(len(lab) for lab in self.labels)

    def value(self, name: str) -> FloatArray:
        """One value array by name (``actual``, ``numerator_expected``, …)."""
        return self.values[name]

    @classmethod
    def additive(
        cls,
        dims: Mapping[str, Sequence[object] | npt.ArrayLike],
        actual: npt.ArrayLike,
        expected: npt.ArrayLike,
    ) -> LeafTable:
        """Leaves of an additive KPI; ``dims`` maps each dimension name to one value per leaf."""
        return _build("additive", dims, {"actual": actual, "expected": expected})

    @classmethod
    def derived(
        cls,
        dims: Mapping[str, Sequence[object] | npt.ArrayLike],
        numerator_actual: npt.ArrayLike,
        numerator_expected: npt.ArrayLike,
        denominator_actual: npt.ArrayLike,
        denominator_expected: npt.ArrayLike,
    ) -> LeafTable:
        """Leaves of a ratio KPI ``numerator / denominator`` with actual and expected parts."""
        return _build(
            "derived",
            dims,
            {
                "numerator_actual": numerator_actual,
                "numerator_expected": numerator_expected,
                "denominator_actual": denominator_actual,
                "denominator_expected": denominator_expected,
            },
        )


def _as_values(name: str, raw: npt.ArrayLike, n: int) -> FloatArray:
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(name, f"not numeric ({exc})") from exc
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InvalidInput(name, f"needs one value per leaf ({n}), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"{name}[{row}]", f"must be finite, got {arr[row]}")
    neg = arr < 0
    if neg.any():
        row = int(np.flatnonzero(neg)[0])
        raise InvalidInput(f"{name}[{row}]", f"must be >= 0, got {arr[row]:g}")
    return arr


def _as_labels(name: str, raw: Sequence[object] | npt.ArrayLike) -> npt.NDArray[np.str_]:
    arr = np.asarray(raw)
    if arr.ndim != 1:
        raise InvalidInput(f"dims.{name}", f"needs a 1-D column, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        # 1.0 and 1 must be the same value; integral floats print as integers.
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if whole.all():
            arr = arr.astype(np.int64)
    if arr.dtype.kind == "O" and any(v is None for v in arr.tolist()):
        row = next(i for i, v in enumerate(arr.tolist()) if v is None)
        raise InvalidInput(f"dims.{name}[{row}]", "missing value")
    return arr.astype(str)


def _build(
    kind: KpiKind,
    dims: Mapping[str, Sequence[object] | npt.ArrayLike],
    raw_values: Mapping[str, npt.ArrayLike],
) -> LeafTable:
    if not dims:
        raise InvalidInput("dims", "at least one dimension is needed")
    names = tuple(str(d) for d in dims)
    if len(set(names)) != len(names):
        raise InvalidInput("dims", f"dimension names repeat: {list(names)}")
    columns = [_as_labels(name, dims[name]) for name in names]
    n = int(columns[0].shape[0])
    for name, col in zip(names, columns, strict=True):
        if col.shape[0] != n:
            raise InvalidInput(f"dims.{name}", f"has {col.shape[0]} values, expected {n}")
    if n == 0:
        raise InvalidInput("leaves", "the table is empty (no leaves)")
    values = {key: _as_values(key, raw, n) for key, raw in raw_values.items()}
    labels: list[tuple[str, ...]] = []
    codes = np.empty((n, len(names)), dtype=np.int64)
    for j, col in enumerate(columns):
        uniq, inverse = np.unique(col, return_inverse=True)
        labels.append(tuple(str(u) for u in uniq))
        codes[:, j] = inverse.ravel()
    codes, values = _merge_duplicates(codes, values)
    codes.setflags(write=False)
    for arr in values.values():
        arr.setflags(write=False)
    return LeafTable(kind=kind, dims=names, labels=tuple(labels), codes=codes, values=values)


def _merge_duplicates(
    codes: IntArray, values: dict[str, FloatArray]
) -> tuple[IntArray, dict[str, FloatArray]]:
    """Sum rows that share a combination; leaves must be unique for every later group-by."""
    uniq, inverse = np.unique(codes, axis=0, return_inverse=True)
    if uniq.shape[0] == codes.shape[0]:
        return np.ascontiguousarray(codes), values
    inverse = inverse.ravel()
    m = int(uniq.shape[0])
    merged = {
        k: np.bincount(inverse, weights=v, minlength=m).astype(np.float64)
        for k, v in values.items()
    }
    return np.ascontiguousarray(uniq.astype(np.int64)), merged
