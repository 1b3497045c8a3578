"""Exact, mergeable co-moments of a few variables across replicates (n, Σx, Σxxᵀ).

Replicates stream back from workers in any order. Each one becomes a :class:`Moments` of its
KPI values; ``a + b`` merges. The sums are :class:`fractions.Fraction` of the floats' binary
values (as in ``twinloop.stats.sufficient``), so merging in any order or grouping gives
bit-identical means and covariances — results do not depend on the number of workers or on
which replicate finished first. ``twinloop.stats`` holds one- and two-variable statistics; a
paired ratio KPI (two models × numerator and denominator) needs four, hence this small general
form. Only the final reducer turns the sums into floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

_ZERO = Fraction(0)


def _exact(value: float) -> Fraction:
    if not math.isfinite(value):
        raise ValueError(f"replicate values must be finite, got {value!r}")
    return Fraction(value)


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, sums and sums of cross-products of k variables; ``a + b`` merges disjoint sets.

    ``cross`` holds the upper triangle of Σxxᵀ row by row (k(k+1)/2 entries).
    """

    n: int
    sums: tuple[Fraction, ...]
    cross: tuple[Fraction, ...]

    @classmethod
    def empty(cls, k: int) -> Moments:
        return cls(0, (_ZERO,) * k, (_ZERO,) * (k * (k + 1) // 2))

    @classmethod
    def of(cls, values: Sequence[float]) -> Moments:
        """The moments of one observation of k variables."""
        x = [_exact(float(v)) for v in values]
        k = len(x)
        return cls(1, tuple(x), tuple(x[i] * x[j] for i in range(k) for j in range(i, k)))

    @classmethod
    def merge_all(cls, parts: Iterable[Moments], k: int) -> Moments:
        total = cls.empty(k)
        for part in parts:
            total = total + part
        return total

    @property
    def k(self) -> int:
        return len(self.sums)

    def __add__(self, other: Moments) -> Moments:
        if type(other) is not Moments:
            return NotImplemented
        if other.k != self.k:
            raise ValueError(f"cannot merge moments of {self.k} and {other.k} variables")
        return Moments(
            self.n + other.n,
            tuple(a + b for a, b in zip(self.sums, other.sums, strict=True)),
            tuple(a + b for a, b in zip(self.cross, other.cross, strict=True)),
        )

    def mean(self) -> NDArray[np.float64]:
        """The k means (NaN when empty)."""
        if self.n == 0:
            return np.full(self.k, math.nan)
        return np.array([float(s / self.n) for s in self.sums])

    def covariance(self) -> NDArray[np.float64]:
        """The k × k sample covariance (ddof=1); zeros for fewer than two observations."""
        k, n = self.k, self.n
        cov = np.zeros((k, k))
        if n < 2:
            return cov
        pos = 0
        for i in range(k):
            for j in range(i, k):
                # n·Σxy − Σx·Σy is exact; dividing once keeps a tiny spread next to a big mean.
                centred = n * self.cross[pos] - self.sums[i] * self.sums[j]
                cov[i, j] = cov[j, i] = float(centred / (n * (n - 1)))
                pos += 1
        # Exact arithmetic cannot go negative on the diagonal; guard the float conversion.
        np.fill_diagonal(cov, np.maximum(np.diag(cov), 0.0))
        return cov
