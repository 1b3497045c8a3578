"""Exact integer arithmetic on floats, for sufficient statistics that merge without rounding.

Every finite float is an integer multiple of 2^-1074 (the smallest subnormal), so a sum of floats
is kept exactly as a Python integer in those units, and a sum of squares or cross-products in
units of 2^-2148. Integer addition is exact and associative; floats are made back by Python's
correctly rounded int / int division. This module also holds the argument checks shared by the
statistics constructors; each raises :class:`InvalidInput` naming ``field``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from twinloop.errors import InvalidInput

SCALE = 1074  # 2^-1074 is the smallest positive float: every float is an integer of these
ONE = 1 << SCALE  # units of a sum per 1.0
ONE_SQ = 1 << (2 * SCALE)  # units of a square or cross-product per 1.0
# A variance this small relative to the mean's square (std < 1e-7·|mean|) is what rounding of
# float sums (n·Σx² - (Σx)² cancels to ~1e-16 of the mean's square) leaves of a constant metric.
REL_VARIANCE_NOISE = 1e-14
# User-supplied float sums may imply a variance this far below zero (relative to (Σx)²).
FORGIVEN = 10**9
Bivariate = tuple[int, int, int, int, int]  # Σa, Σa², Σb, Σb², Σab in units


def units(value: Any, field: str) -> int:
    """``value`` as an exact integer number of 2^-1074; rejects NaN and infinities."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value) << SCALE
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(field, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidInput(field, f"must be finite, got {value!r}")
    numerator, denominator = number.as_integer_ratio()
    return numerator << (SCALE - denominator.bit_length() + 1)


def square_units(value: Any, field: str) -> int:
    """``value`` as an exact integer number of 2^-2148 (the unit of squares)."""
    return units(value, field) << SCALE


def count(value: Any, field: str) -> int:
    """``value`` as a non-negative integer count, naming ``field`` when it is not one."""
    if isinstance(value, bool):
        raise InvalidInput(field, f"must be a count, got {value!r}")
    integral = isinstance(value, float | np.floating) and float(value).is_integer()
    if isinstance(value, int | np.integer) or integral:
        result = int(value)
    else:
        raise InvalidInput(field, f"must be a whole number, got {value!r}")
    if result < 0:
        raise InvalidInput(field, f"must be >= 0, got {result}")
    return result


def ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, correctly rounded; ±inf beyond the float range."""
    try:
        return numerator / denominator
    except OverflowError:
        return math.copysign(math.inf, numerator) * math.copysign(1, denominator)


def checked_square(n: int, total: int, squares: int, field: str) -> int:
    """Σx² units, with a rounding-level negative variance clamped to zero, a real one refused."""
    centred = n * squares - total * total
    if centred >= 0:
        return squares
    if -centred * FORGIVEN <= total * total:
        return -(-total * total // n)  # the smallest Σx² with a variance >= 0
    variance = ratio(centred, n * max(n - 1, 1) * ONE_SQ)
    raise InvalidInput(field, f"implies a variance below zero ({variance:.6g})")


def finite_array(values: npt.ArrayLike, field: str) -> npt.NDArray[np.float64]:
    """``values`` as a flat float array; NaN or infinities are refused naming ``field``."""
    try:
        x = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInput(field, "must be numbers") from None
    if not np.all(np.isfinite(x)):
        raise InvalidInput(field, "contains NaN or infinite values; drop missing units first")
    return x


def add(a: Bivariate, b: Bivariate) -> Bivariate:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4])


def checked_pair(
    size: int, values: tuple[Any, ...], field: str, names: tuple[str, ...]
) -> Bivariate:
    """Check five user sums (Σa, Σa², Σb, Σb², Σab) and return them in exact units."""
    a = units(values[0], f"{field}.{names[0]}")
    aa = square_units(values[1], f"{field}.{names[1]}")
    b = units(values[2], f"{field}.{names[2]}")
    bb = square_units(values[3], f"{field}.{names[3]}")
    ab = square_units(values[4], f"{field}.{names[4]}")
    for value, name in ((aa, names[1]), (bb, names[3])):
        if value < 0:
            raise InvalidInput(f"{field}.{name}", f"must be >= 0, got {ratio(value, ONE_SQ):g}")
    if size == 0:
        if any((a, aa, b, bb, ab)):
            raise InvalidInput(f"{field}.n", "is 0 but the sums are not")
        return 0, 0, 0, 0, 0
    aa = checked_square(size, a, aa, f"{field}.{names[1]}")
    bb = checked_square(size, b, bb, f"{field}.{names[3]}")
    caa, cbb, cab = size * aa - a * a, size * bb - b * b, size * ab - a * b
    # Cauchy–Schwarz: a covariance beyond the product of the spreads is impossible data
    # (beyond what rounding of the user's float sums can explain).
    noise = (a * b) ** 2 // FORGIVEN**2
    if cab * cab * FORGIVEN > caa * cbb * (FORGIVEN + 1) + noise * FORGIVEN:
        rho = cab / math.sqrt(float(caa) * float(cbb)) if caa and cbb else math.inf
        raise InvalidInput(
            f"{field}.{names[4]}", f"implies a correlation of {rho:.6g}, outside [-1, 1]"
        )
    return a, aa, b, bb, ab


def centred_from_arrays(
    a: npt.ArrayLike, b: npt.ArrayLike, field: str
) -> tuple[int, float, float, float, float, float]:
    x = finite_array(a, field)
    y = finite_array(b, field)
    if x.size != y.size:
        raise InvalidInput(field, f"paired columns differ in length ({x.size} vs {y.size})")
    if x.size == 0:
        return 0, 0.0, 0.0, 0.0, 0.0, 0.0
    mx, my = float(np.mean(x)), float(np.mean(y))
    dx, dy = x - mx, y - my
    return int(x.size), mx, my, float(dx @ dx), float(dy @ dy), float(dx @ dy)


def exact_from_centred(
    n: int, mean_a: float, mean_b: float, caa: float, cbb: float, cab: float
) -> Bivariate:
    """Exact sums of a sample with these means and centred sums (Σab = Cab + n·ā·b̄)."""
    if n == 0:
        return 0, 0, 0, 0, 0
    ua, ub = units(mean_a, "mean"), units(mean_b, "mean")
    return (
        n * ua,
        square_units(caa, "m2") + n * ua * ua,
        n * ub,
        square_units(cbb, "m2") + n * ub * ub,
        square_units(cab, "m2") + n * ua * ub,
    )


def pair_moments(n: int, exact: Bivariate) -> tuple[float, float, float, float, float]:
    if n == 0:
        return math.nan, math.nan, 0.0, 0.0, 0.0
    a, aa, b, bb, ab = exact
    mean_a, mean_b = ratio(a, n * ONE), ratio(b, n * ONE)
    if n == 1:
        return mean_a, mean_b, 0.0, 0.0, 0.0
    scale = n * (n - 1) * ONE_SQ
    return (
        mean_a,
        mean_b,
        ratio(n * aa - a * a, scale),
        ratio(n * bb - b * b, scale),
        ratio(n * ab - a * b, scale),
    )
