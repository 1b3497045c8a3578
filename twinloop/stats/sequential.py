"""Always-valid inference for experiments that are peeked at: asymptotic confidence sequences.

A fixed-horizon 95% interval checked after every batch excludes the truth far more than 5% of
the time. A confidence sequence (Howard, Ramdas, McAuliffe & Sekhon, 2021) holds at every sample
size at once: P(∃N: θ ∉ CS_N) <= α. We use the two-sided normal-mixture boundary (their eq. 14)
applied, as in Waudby-Smith et al. (2023, "Time-uniform central limit theory and asymptotic
confidence sequences"), to the effect estimate with its estimated variance — the same construction
GrowthBook uses for its sequential mode:

    half-width = s · sqrt( 2(Nρ² + 1) / (N²ρ²) · log( sqrt(Nρ² + 1) / α ) ),

with N the units in both arms, s² = N·Var(effect) the per-unit variance, and the mixture
parameter ρ² = (-2 log α + log(1 - 2 log α)) / N* chosen so the boundary is tightest at the
planned size N* (``tuning_n``). The always-valid p-value is the smallest α whose sequence
excludes 0, i.e. 1 / (mixture likelihood ratio) — the mixture SPRT's p-value (Johari et al., 2017).
"""

from __future__ import annotations

import math

from twinloop.errors import InvalidInput
from twinloop.stats.results import Interval


def mixture_rho_sq(alpha: float, tuning_n: float) -> float:
    """The mixture parameter ρ² that makes the boundary tightest at ``tuning_n`` units."""
    _check(alpha, tuning_n)
    log_a = -2 * math.log(alpha)
    return (log_a + math.log(1 + log_a)) / tuning_n


def half_width(variance: float, n_total: int, alpha: float, tuning_n: float) -> float:
    """Half-width of the confidence sequence for an estimate with ``variance`` after ``n_total``."""
    if n_total <= 0:
        raise InvalidInput("n_total", f"must be > 0, got {n_total}")
    if variance < 0:
        raise InvalidInput("variance", f"must be >= 0, got {variance!r}")
    rho_sq = mixture_rho_sq(alpha, tuning_n)
    spread = math.sqrt(variance * n_total)
    growth = n_total * rho_sq + 1
    return spread * math.sqrt(
        2 * growth / (n_total * n_total * rho_sq) * math.log(math.sqrt(growth) / alpha)
    )


def interval(
    estimate: float, variance: float, n_total: int, alpha: float, tuning_n: float
) -> Interval:
    """The (1 - α) confidence sequence around ``estimate`` at ``n_total`` units."""
    width = half_width(variance, n_total, alpha, tuning_n)
    return Interval(lower=estimate - width, upper=estimate + width, level=1 - alpha)


def p_value(
    estimate: float, variance: float, n_total: int, alpha: float, tuning_n: float
) -> float | None:
    """Always-valid p-value of 'effect = 0': min(1, 1/Λ), Λ the normal-mixture likelihood ratio.

    Λ = (Nρ² + 1)^(-1/2) · exp( z² · Nρ² / (2(Nρ² + 1)) ), z = estimate / sqrt(variance), with
    ρ² tuned by ``alpha`` as for the sequence, so p <= α exactly when the sequence excludes 0.
    """
    if n_total <= 0 or variance <= 0:
        return None
    rho_sq = mixture_rho_sq(alpha, tuning_n)
    growth = n_total * rho_sq + 1
    z_sq = estimate * estimate / variance
    log_lr = -0.5 * math.log(growth) + z_sq * n_total * rho_sq / (2 * growth)
    return 1.0 if log_lr <= 0 else math.exp(-log_lr)


def _check(alpha: float, tuning_n: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput("alpha", f"must be in (0, 1), got {alpha!r}")
    if not tuning_n > 0:
        raise InvalidInput("sequential_tuning_n", f"must be > 0, got {tuning_n!r}")
