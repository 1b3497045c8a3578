"""Power and minimum detectable effect of a two-sided two-sample test.

With k = effect / se(effect), a two-sided level-α z test has power Φ(k - z) + Φ(-k - z),
z = Φ⁻¹(1 - α/2) (statsmodels' ``NormalIndPower``); the t version uses the noncentral t with
n₁ + n₂ - 2 degrees of freedom (``TTestIndPower``). The minimum detectable effect at power 1 - β
is k*·se where k* solves power(k*) = 1 - β (≈ z + Φ⁻¹(1 - β), exactly by root finding).
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy import optimize, special

from twinloop.errors import InvalidInput


def normal_power(k: float, alpha: float) -> float:
    """Power of a two-sided z test when the true effect is ``k`` standard errors."""
    _check_alpha(alpha)
    z = float(special.ndtri(1 - alpha / 2))
    return float(special.ndtr(k - z) + special.ndtr(-k - z))


def t_power(k: float, dof: float, alpha: float) -> float:
    """Power of a two-sided t test with ``dof`` degrees of freedom; noncentrality ``k``."""
    _check_alpha(alpha)
    if not dof > 0:
        raise InvalidInput("dof", f"must be > 0, got {dof!r}")
    crit = float(special.stdtrit(dof, 1 - alpha / 2))
    far_tail = float(special.nctdtr(dof, k, -crit))
    # scipy returns NaN for a far tail below ~1e-300 at large noncentrality: it is 0.
    far_tail = 0.0 if math.isnan(far_tail) else far_tail
    return float(1 - special.nctdtr(dof, k, crit)) + far_tail


@lru_cache(maxsize=256)
def detectable_k(alpha: float, power: float) -> float:
    """The effect, in standard errors, that a two-sided z test detects with ``power``."""
    _check_alpha(alpha)
    if not 0 < power < 1:
        raise InvalidInput("power", f"must be in (0, 1), got {power!r}")
    if power <= alpha:
        return 0.0
    z = float(special.ndtri(1 - alpha / 2))
    start = z + float(special.ndtri(power))
    return float(
        optimize.brentq(lambda k: normal_power(k, alpha) - power, 0.0, max(start, 0) + 10.0,
                        xtol=1e-14, rtol=1e-15)
    )  # fmt: skip


def power_two_sample(
    effect_size: float, nobs1: float, alpha: float, ratio: float = 1.0, test: str = "normal"
) -> float:
    """Power for a standardized ``effect_size`` (Cohen's d), n₁ units and n₂ = ratio·n₁."""
    if not nobs1 > 0 or not ratio > 0:
        raise InvalidInput("nobs1", f"nobs1 and ratio must be > 0, got {nobs1!r}, {ratio!r}")
    nobs2 = nobs1 * ratio
    k = effect_size * math.sqrt(1 / (1 / nobs1 + 1 / nobs2))
    if test == "t":
        return t_power(k, nobs1 + nobs2 - 2, alpha)
    return normal_power(k, alpha)


def mde_effect_size(
    nobs1: float, alpha: float, power: float, ratio: float = 1.0, test: str = "normal"
) -> float:
    """The standardized effect detectable with ``power`` by n₁ and n₂ = ratio·n₁ units."""
    if not nobs1 > 0 or not ratio > 0:
        raise InvalidInput("nobs1", f"nobs1 and ratio must be > 0, got {nobs1!r}, {ratio!r}")
    scale = math.sqrt(1 / nobs1 + 1 / (nobs1 * ratio))
    k = detectable_k(alpha, power)
    if test == "t":
        dof = nobs1 * (1 + ratio) - 2
        # The t test needs a slightly larger effect than the z test; 3k + 1 brackets it for any
        # dof >= 1 while keeping the noncentral t in the range where scipy evaluates it.
        k = float(
            optimize.brentq(lambda x: t_power(x, dof, alpha) - power, 0.0, 3 * k + 1.0,
                            xtol=1e-14, rtol=1e-15)
        )  # fmt: skip
    return k * scale


def sample_size(effect_size: float, alpha: float, power: float, ratio: float = 1.0) -> float:
    """Units in the first group (n₂ = ratio·n₁) for a z test to reach ``power``; not rounded."""
    if not effect_size != 0:
        raise InvalidInput("effect_size", "must be non-zero")
    k = detectable_k(alpha, power)
    return (k / abs(effect_size)) ** 2 * (1 + 1 / ratio)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput("alpha", f"must be in (0, 1), got {alpha!r}")
