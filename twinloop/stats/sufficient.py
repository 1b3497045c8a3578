"""Mergeable sufficient statistics of one metric in one variant, kept as exact integer sums.

Workers (Ray tasks, file chunks, segments) each reduce their rows to a frozen statistics object;
``a + b`` merges two disjoint samples. Every finite float is an integer multiple of 2^-1074, so
the sums are stored as Python integers in those units (squares and cross-products in units of
2^-2148): addition is exact, merging in any order or grouping gives bit-identical means and
variances, and a user's ``(n, mean, std)`` round-trips exactly. Integer arithmetic runs in C,
several times faster than :class:`fractions.Fraction`. Only the final reducer makes floats,
each correctly rounded (Python's int / int true division). Rows are reduced with a two-pass
(centred) sum, so a metric with a large mean and a small spread keeps its variance.

Every constructor checks its arguments and raises :class:`InvalidInput` naming ``field``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from twinloop.errors import InvalidInput
from twinloop.stats.exact import (
    ONE,
    ONE_SQ,
    REL_VARIANCE_NOISE,
    SCALE,
    Bivariate,
    add,
    centred_from_arrays,
    checked_pair,
    checked_square,
    count,
    exact_from_centred,
    finite_array,
    pair_moments,
    ratio,
    square_units,
    units,
)


@dataclass(frozen=True, slots=True, repr=False)
class SampleStats:
    """Count, sum and sum of squares of a continuous metric; ``a + b`` merges disjoint samples.

    ``exact`` holds (Σx·2^1074, Σx²·2^2148) as integers. Invariant: ``n >= 0`` and the implied
    variance is ``>= 0``; ``variance`` uses ``n - 1``.
    """

    n: int
    exact: tuple[int, int]
    # (mean, variance) as floats, computed once.
    _floats: tuple[float, float] | None = field(default=None, init=False, compare=False)

    @classmethod
    def from_sums(cls, n: Any, sum: Any, sum_sq: Any, *, field: str = "stats") -> SampleStats:
        """From ``n``, Σx and Σx² as a user's SQL returns them."""
        size = count(n, f"{field}.n")
        total = units(sum, f"{field}.sum")
        squares = square_units(sum_sq, f"{field}.sum_sq")
        if squares < 0:
            raise InvalidInput(f"{field}.sum_sq", f"must be >= 0, got {sum_sq!r}")
        if size == 0:
            if total or squares:
                raise InvalidInput(f"{field}.n", "is 0 but the sums are not")
            return cls(0, (0, 0))
        return cls(size, (total, checked_square(size, total, squares, f"{field}.sum_sq")))

    @classmethod
    def from_mean_std(cls, n: Any, mean: Any, std: Any, *, field: str = "stats") -> SampleStats:
        """From ``n``, the mean and the sample standard deviation (``ddof=1``)."""
        size = count(n, f"{field}.n")
        mu = units(mean, f"{field}.mean")
        sigma = units(std, f"{field}.std")
        if sigma < 0:
            raise InvalidInput(f"{field}.std", f"must be >= 0, got {std!r}")
        if size == 0:
            return cls(0, (0, 0))
        return cls(size, (size * mu, (size - 1) * sigma * sigma + size * mu * mu))

    @classmethod
    def from_moments(cls, n: int, mean: Any, m2: Any, *, field: str = "stats") -> SampleStats:
        """From ``n``, the mean and the centred sum of squares Σ(x-x̄)²."""
        mu = units(mean, f"{field}.mean")
        centred = square_units(m2, f"{field}.m2")
        if centred < 0:
            raise InvalidInput(f"{field}.m2", f"must be >= 0, got {m2!r}")
        return cls(n, (n * mu, centred + n * mu * mu))

    @classmethod
    def from_array(cls, values: npt.ArrayLike, *, field: str = "values") -> SampleStats:
        """From raw per-unit values (two-pass, so large means keep their small spreads)."""
        x = finite_array(values, field)
        if x.size == 0:
            return cls(0, (0, 0))
        mean = float(np.mean(x))
        return cls.from_moments(int(x.size), mean, float(np.sum((x - mean) ** 2)), field=field)

    def __add__(self, other: SampleStats) -> SampleStats:
        if type(other) is not SampleStats:
            return NotImplemented
        (a, b), (c, d) = self.exact, other.exact
        return SampleStats(self.n + other.n, (a + c, b + d))

    def __repr__(self) -> str:
        return f"SampleStats(n={self.n}, sum={self.sum!r}, sum_sq={self.sum_sq!r})"

    def _moments(self) -> tuple[float, float]:
        if self._floats is None:
            n, (total, squares) = self.n, self.exact
            mean = ratio(total, n * ONE) if n else math.nan
            variance = ratio(n * squares - total * total, n * (n - 1) * ONE_SQ) if n > 1 else 0.0
            object.__setattr__(self, "_floats", (mean, variance))
        assert self._floats is not None
        return self._floats

    @property
    def sum(self) -> float:
        """Σx, correctly rounded."""
        return ratio(self.exact[0], ONE)

    @property
    def sum_sq(self) -> float:
        """Σx², correctly rounded."""
        return ratio(self.exact[1], ONE_SQ)

    @property
    def mean(self) -> float:
        """The sample mean; NaN when ``n == 0`` (callers check ``n`` first)."""
        return self._moments()[0]

    @property
    def variance(self) -> float:
        """The unbiased sample variance (``ddof=1``); 0 for fewer than two units."""
        return self._moments()[1]

    @property
    def std(self) -> float:
        """The sample standard deviation (``ddof=1``)."""
        return math.sqrt(self.variance)

    @property
    def is_constant(self) -> bool:
        """True when the variance is zero, or rounding noise next to the mean's square."""
        return self.n < 2 or self.variance <= REL_VARIANCE_NOISE * self.mean**2


@dataclass(frozen=True, slots=True)
class BinomialStats:
    """Units and successes of a conversion metric; ``a + b`` merges disjoint samples."""

    n: int
    successes: int

    @classmethod
    def from_counts(cls, n: Any, successes: Any, *, field: str = "stats") -> BinomialStats:
        """From the number of units and of units that converted (``successes <= n``)."""
        size = count(n, f"{field}.n")
        hits = count(successes, f"{field}.successes")
        if hits > size:
            raise InvalidInput(f"{field}.successes", f"{hits} exceeds n = {size}")
        return cls(size, hits)

    @classmethod
    def from_array(cls, values: npt.ArrayLike, *, field: str = "values") -> BinomialStats:
        """From per-unit 0/1 outcomes."""
        x = finite_array(values, field)
        if np.any((x != 0) & (x != 1)):
            bad = x[(x != 0) & (x != 1)][0]
            raise InvalidInput(field, f"a conversion metric takes 0 or 1 per unit, got {bad:g}")
        return cls(int(x.size), int(np.count_nonzero(x)))

    def __add__(self, other: BinomialStats) -> BinomialStats:
        if type(other) is not BinomialStats:
            return NotImplemented
        return BinomialStats(self.n + other.n, self.successes + other.successes)

    @property
    def rate(self) -> float:
        """The conversion rate; NaN when ``n == 0``."""
        return self.successes / self.n if self.n else math.nan

    def as_sample(self) -> SampleStats:
        """The same data as a 0/1 continuous sample (for Welch, CUPED or pooling)."""
        hits = self.successes << SCALE
        return SampleStats(self.n, (hits, hits << SCALE))


class _PairStats:
    """Shared behaviour of two paired columns a, b; ``exact`` = (Σa, Σa², Σb, Σb², Σab)."""

    __slots__ = ()
    n: int
    exact: Bivariate
    _floats: tuple[float, float, float, float, float] | None

    def moments(self) -> tuple[float, float, float, float, float]:
        """(mean a, mean b, variance a, variance b, covariance), ``ddof=1``; computed once."""
        if self._floats is None:
            object.__setattr__(self, "_floats", pair_moments(self.n, self.exact))
        assert self._floats is not None
        return self._floats

    def _sum(self, index: int) -> float:
        return ratio(self.exact[index], ONE if index in (0, 2) else ONE_SQ)


@dataclass(frozen=True, slots=True, repr=False)
class RatioStats(_PairStats):
    """Per-unit numerator and denominator sums, squares and cross-products of a ratio metric.

    The metric is Σnumerator / Σdenominator (e.g. revenue per session with users as units);
    ``n`` counts the randomisation units; ``exact`` holds Σx, Σx², Σy, Σy², Σxy in units
    (x numerator, y denominator). ``a + b`` merges disjoint samples.
    """

    n: int
    exact: Bivariate
    _floats: tuple[float, float, float, float, float] | None = field(
        default=None, init=False, compare=False
    )

    @classmethod
    def from_sums(
        cls,
        n: Any,
        num_sum: Any,
        num_sum_sq: Any,
        den_sum: Any,
        den_sum_sq: Any,
        cross_sum: Any,
        *,
        field: str = "stats",
    ) -> RatioStats:
        """From ``n`` and the five sums Σx, Σx², Σy, Σy², Σxy (x numerator, y denominator)."""
        names = ("num_sum", "num_sum_sq", "den_sum", "den_sum_sq", "cross_sum")
        values = (num_sum, num_sum_sq, den_sum, den_sum_sq, cross_sum)
        size = count(n, f"{field}.n")
        return cls(size, checked_pair(size, values, field, names))

    @classmethod
    def from_arrays(
        cls, numerator: npt.ArrayLike, denominator: npt.ArrayLike, *, field: str = "values"
    ) -> RatioStats:
        """From per-unit numerators and denominators of equal length."""
        return cls.from_centred(*centred_from_arrays(numerator, denominator, field))

    @classmethod
    def from_centred(
        cls, n: int, mean_x: float, mean_y: float, cxx: float, cyy: float, cxy: float
    ) -> RatioStats:
        """From two-pass moments: means and centred sums Σ(x-x̄)², Σ(y-ȳ)², Σ(x-x̄)(y-ȳ)."""
        return cls(n, exact_from_centred(n, mean_x, mean_y, cxx, cyy, cxy))

    def __add__(self, other: RatioStats) -> RatioStats:
        if type(other) is not RatioStats:
            return NotImplemented
        return RatioStats(self.n + other.n, add(self.exact, other.exact))

    def __repr__(self) -> str:
        return f"RatioStats(n={self.n}, num_sum={self.num_sum!r}, den_sum={self.den_sum!r})"

    @property
    def num_sum(self) -> float:
        """Σ numerator."""
        return self._sum(0)

    @property
    def den_sum(self) -> float:
        """Σ denominator."""
        return self._sum(2)


@dataclass(frozen=True, slots=True, repr=False)
class CovariateStats(_PairStats):
    """A metric with its pre-period covariate: sums, squares and cross-product, for CUPED.

    ``exact`` holds Σy, Σy², Σx, Σx², Σxy in units, y the experiment-period metric and x the same
    units' pre-period covariate. ``a + b`` merges disjoint samples.
    """

    n: int
    exact: Bivariate
    _floats: tuple[float, float, float, float, float] | None = field(
        default=None, init=False, compare=False
    )

    @classmethod
    def from_sums(
        cls,
        n: Any,
        sum: Any,
        sum_sq: Any,
        pre_sum: Any,
        pre_sum_sq: Any,
        cross_sum: Any,
        *,
        field: str = "stats",
    ) -> CovariateStats:
        """From ``n`` and Σy, Σy², Σx, Σx², Σxy (y the metric, x its pre-period covariate)."""
        names = ("sum", "sum_sq", "pre_sum", "pre_sum_sq", "cross_sum")
        values = (sum, sum_sq, pre_sum, pre_sum_sq, cross_sum)
        size = count(n, f"{field}.n")
        return cls(size, checked_pair(size, values, field, names))

    @classmethod
    def from_arrays(
        cls, values: npt.ArrayLike, pre_values: npt.ArrayLike, *, field: str = "values"
    ) -> CovariateStats:
        """From per-unit metric values and their pre-period covariate."""
        return cls.from_centred(*centred_from_arrays(values, pre_values, field))

    @classmethod
    def from_centred(
        cls, n: int, mean_y: float, mean_x: float, cyy: float, cxx: float, cyx: float
    ) -> CovariateStats:
        """From two-pass moments of the metric y and its covariate x."""
        return cls(n, exact_from_centred(n, mean_y, mean_x, cyy, cxx, cyx))

    def __add__(self, other: CovariateStats) -> CovariateStats:
        if type(other) is not CovariateStats:
            return NotImplemented
        return CovariateStats(self.n + other.n, add(self.exact, other.exact))

    def __repr__(self) -> str:
        return f"CovariateStats(n={self.n}, sum={self._sum(0)!r}, pre_sum={self._sum(2)!r})"

    @property
    def outcome(self) -> SampleStats:
        """The metric alone, without its covariate."""
        return SampleStats(self.n, (self.exact[0], self.exact[1]))


Stats = SampleStats | BinomialStats | RatioStats | CovariateStats
S = TypeVar("S", SampleStats, BinomialStats, RatioStats, CovariateStats)


def merge(parts: Iterable[S]) -> S:
    """Sum statistics of disjoint samples (any order gives identical results)."""
    iterator = iter(parts)
    try:
        total = next(iterator)
    except StopIteration:
        raise InvalidInput("parts", "nothing to merge") from None
    for part in iterator:
        total = total + part
    return total
