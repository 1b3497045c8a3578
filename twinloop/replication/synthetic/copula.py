"""A Gaussian copula over empirical marginals: new rows with a table's marginals and rank structure.

Each column keeps its own distribution (the sorted observed values, read back through the
quantile function) while dependence lives in a latent standard-normal vector with correlation
``R``. ``R`` is set from the observed Spearman matrix by ``R = 2 sin(π ρ_s / 6)``, the exact
relation for a Gaussian copula, so the generated rank correlations match the source's (up to
ties). Text columns are categories occupying consecutive slices of the latent uniform, so a row's
segment is sampled jointly with its numbers, and sampling can be conditioned on a segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from scipy import special, stats

from twinloop.errors import InvalidInput
from twinloop.replication.tables import column_as_float, is_textual

ColumnKind = Literal["float", "int", "bool", "category"]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Marginal:
    """One column's empirical distribution; ``values`` sorted (numbers) or category labels."""

    name: str
    kind: ColumnKind
    values: FloatArray
    categories: tuple[str, ...]
    cumulative: FloatArray  # category upper bounds on the uniform scale
    missing_rate: float

    def quantile(self, u: FloatArray) -> FloatArray:
        """Values at uniform positions u: interpolated for floats, order statistics otherwise."""
        if self.kind == "category":
            return np.searchsorted(self.cumulative, u, side="right").astype(np.float64)
        n = self.values.size
        if self.kind == "float":
            pos = u * (n - 1)
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, n - 1)
            frac = pos - lo
            out: FloatArray = self.values[lo] + frac * (self.values[hi] - self.values[lo])
            return out
        picked: FloatArray = self.values[np.minimum((u * n).astype(np.int64), n - 1)]
        return picked


@dataclass(frozen=True)
class GaussianCopula:
    """Fitted marginals of the modelled columns and their latent correlation matrix."""

    marginals: tuple[Marginal, ...]
    correlation: FloatArray
    source_rows: int

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.marginals]

    @classmethod
    def fit(cls, table: pa.Table, columns: list[str], field: str = "source") -> GaussianCopula:
        """Fit the given columns (numbers, booleans or text) of ``table``."""
        if table.num_rows < 2:
            raise InvalidInput(field, f"needs at least 2 rows, got {table.num_rows}")
        marginals, ranks = [], []
        for name in columns:
            marginal, codes = _marginal(table.column(name), name, f"{field}.{name}")
            marginals.append(marginal)
            ranks.append(stats.rankdata(codes, nan_policy="omit"))
        rho = _spearman(np.column_stack(ranks)) if ranks else np.empty((0, 0))
        latent = _nearest_correlation(2.0 * np.sin(np.pi * rho / 6.0))
        return cls(tuple(marginals), latent, table.num_rows)

    def sample_uniform(
        self,
        rows: int,
        rng: np.random.Generator,
        fixed: tuple[int, FloatArray] | None = None,
    ) -> FloatArray:
        """Latent uniforms (rows × columns); ``fixed=(j, u)`` conditions column j on u."""
        m = len(self.marginals)
        if fixed is None:
            chol = np.linalg.cholesky(self.correlation)
            z = rng.standard_normal((rows, m)) @ chol.T
        else:
            j, u = fixed
            rest = [i for i in range(m) if i != j]
            z = np.empty((rows, m))
            z[:, j] = special.ndtri(np.clip(u, 1e-12, 1 - 1e-12))
            link = self.correlation[rest, j]
            cond = self.correlation[np.ix_(rest, rest)] - np.outer(link, link)
            chol = np.linalg.cholesky(_nearest_correlation(cond, unit_diagonal=False))
            z[:, rest] = np.outer(z[:, j], link) + rng.standard_normal((rows, m - 1)) @ chol.T
        return np.asarray(special.ndtr(z), dtype=np.float64)


def _marginal(column: pa.ChunkedArray, name: str, field: str) -> tuple[Marginal, FloatArray]:
    t = column.type
    n = len(column)
    if is_textual(t):
        labels = column.cast(pa.string()).to_pylist()
        present = [v for v in labels if v is not None]
        if not present:
            raise InvalidInput(field, "has no values")
        cats, counts = np.unique(np.array(present, dtype=object).astype(str), return_counts=True)
        lookup = {c: i for i, c in enumerate(cats)}
        codes = np.array([np.nan if v is None else lookup[v] for v in labels], dtype=np.float64)
        cumulative = np.cumsum(counts) / counts.sum()
        cumulative[-1] = 1.0
        marginal = Marginal(
            name,
            "category",
            np.empty(0),
            tuple(str(c) for c in cats),
            cumulative,
            1.0 - len(present) / n,
        )
        return marginal, codes
    values = column_as_float(column, field)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InvalidInput(field, "has no finite values")
    if np.isinf(values).any():
        raise InvalidInput(field, "contains infinite values")
    kind: ColumnKind = (
        "bool" if pa.types.is_boolean(t) else "int" if pa.types.is_integer(t) else "float"
    )
    marginal = Marginal(name, kind, np.sort(finite), (), np.empty(0), 1.0 - finite.size / n)
    return marginal, values


def _spearman(ranks: FloatArray) -> FloatArray:
    """Spearman matrix from per-column ranks; pairwise-complete when values are missing."""
    if not np.isnan(ranks).any():
        return np.atleast_2d(np.corrcoef(ranks, rowvar=False))
    m = ranks.shape[1]
    rho = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            ok = ~np.isnan(ranks[:, i]) & ~np.isnan(ranks[:, j])
            if ok.sum() > 2:
                a = stats.rankdata(ranks[ok, i])
                b = stats.rankdata(ranks[ok, j])
                rho[i, j] = rho[j, i] = float(np.corrcoef(a, b)[0, 1])
    return np.nan_to_num(rho)


def _nearest_correlation(matrix: FloatArray, *, unit_diagonal: bool = True) -> FloatArray:
    """Clip eigenvalues so the matrix is positive definite (pairwise estimates may not be)."""
    if matrix.size == 0:
        return matrix
    sym = (np.nan_to_num(matrix) + np.nan_to_num(matrix).T) / 2.0
    w, v = np.linalg.eigh(sym)
    fixed = (v * np.clip(w, 1e-6, None)) @ v.T
    if unit_diagonal:
        d = np.sqrt(np.diag(fixed))
        fixed = fixed / np.outer(d, d)
    return np.asarray(fixed, dtype=np.float64)
