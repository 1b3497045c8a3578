"""CUPED: variance reduction with a pre-period covariate (Deng, Xu, Kohavi & Walker, 2013).

Each unit's metric y is replaced by y - θ(x - x̄), where x is the same unit's pre-period value.
θ is the pooled within-variant regression slope ΣCxy / ΣCxx — pooling *within* variants keeps the
treatment effect out of θ, and makes the CUPED effect equal to the treatment coefficient of the
ANCOVA regression y ~ treatment + x. With one θ for both arms, the variance of the effect shrinks
by about 1 - ρ², ρ being the within-variant correlation of y and x.
"""

from __future__ import annotations

import math

from twinloop.stats.frequentist import Contrast
from twinloop.stats.results import CupedDetail
from twinloop.stats.sufficient import CovariateStats

# A covariate whose spread is below this fraction of its mean's square is constant up to rounding.
_REL_NOISE = 1e-14


def pooled_theta(control: CovariateStats, treatment: CovariateStats) -> tuple[float, float] | None:
    """(θ, ρ): the pooled within-variant slope and correlation; None if x has no spread."""
    cxx = cyy = cxy = scale = 0.0
    for stats in (control, treatment):
        if stats.n < 2:
            continue
        _, mx, vy, vx, cov = stats.moments()
        dof = stats.n - 1
        cyy, cxx, cxy = cyy + vy * dof, cxx + vx * dof, cxy + cov * dof
        scale += mx * mx * dof
    if cxx <= _REL_NOISE * scale or cxx <= 0:
        return None
    theta = cxy / cxx
    rho = cxy / math.sqrt(cxx * cyy) if cyy > 0 else 0.0
    return theta, rho


def cuped(
    control: CovariateStats, treatment: CovariateStats
) -> tuple[Contrast, CupedDetail] | None:
    """The CUPED-adjusted Welch contrast and its detail; None when CUPED cannot apply.

    Needs ``n >= 2`` in both arms. Var(ȳ - θx̄) = (σy² + θ²σx² - 2θσxy)/n per arm (θ treated as
    known, the usual large-sample simplification); degrees of freedom by Welch–Satterthwaite.
    The relative lift divides by the unadjusted control mean, with Cov(Δ, ȳc) = -(σy² - θσxy)/n.
    """
    fitted = pooled_theta(control, treatment)
    if fitted is None:
        return None
    theta, rho = fitted
    arms = []
    for stats in (control, treatment):
        my, mx, vy, vx, cxy = stats.moments()
        adjusted = max(vy + theta * theta * vx - 2 * theta * cxy, 0.0) / stats.n
        arms.append((my, mx, vy / stats.n, adjusted, (vy - theta * cxy) / stats.n, stats.n))
    (myc, mxc, var_c, adj_c, cov_c, nc), (myt, mxt, var_t, adj_t, _, nt) = arms
    delta = (myt - myc) - theta * (mxt - mxc)
    var = adj_c + adj_t
    denominator = adj_c**2 / (nc - 1) + adj_t**2 / (nt - 1)
    dof = var * var / denominator if denominator > 0 else None
    contrast = Contrast("cuped_welch_t", myc, myt, delta, var, var, var_c, -cov_c, dof)
    unadjusted = var_c + var_t
    ratio = var / unadjusted if unadjusted > 0 else 1.0
    return contrast, CupedDetail(theta=theta, correlation=rho, variance_ratio=ratio)
