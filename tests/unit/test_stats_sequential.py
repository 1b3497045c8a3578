"""Confidence sequences stay valid under continuous peeking; fixed-horizon intervals do not."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sps

from twinloop.stats import sequential

ALPHA = 0.05
Draw = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]


def _peeking_error_rates(draw: Draw, seed: int) -> tuple[float, float]:
    """Share of null A/A paths whose interval ever excludes 0: (sequence, fixed-horizon)."""
    rng = np.random.default_rng(seed)
    paths, per_arm, step = 1000, 2000, 100
    a, b = draw(rng, (paths, per_arm)), draw(rng, (paths, per_arm))
    sums = [np.cumsum(x, axis=1) for x in (a, b)]
    squares = [np.cumsum(x * x, axis=1) for x in (a, b)]
    ever_seq = np.zeros(paths, dtype=bool)
    ever_fixed = np.zeros(paths, dtype=bool)
    z = sps.norm.ppf(1 - ALPHA / 2)
    for n in range(step, per_arm + 1, step):
        means = [s[:, n - 1] / n for s in sums]
        variances = [
            (q[:, n - 1] - n * m * m) / (n - 1) for q, m in zip(squares, means, strict=True)
        ]
        var_delta = (variances[0] + variances[1]) / n
        delta = means[1] - means[0]
        # The half-width is sqrt(variance) times a factor of N alone: one call per look.
        widths = np.sqrt(var_delta) * sequential.half_width(1.0, 2 * n, ALPHA, tuning_n=4000)
        ever_seq |= np.abs(delta) > widths
        ever_fixed |= np.abs(delta) > z * np.sqrt(var_delta)
    return float(ever_seq.mean()), float(ever_fixed.mean())


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, size: rng.normal(0.0, 1.0, size),
        lambda rng, size: (rng.random(size) < 0.2).astype(float),
    ],
    ids=["normal", "conversion_20pct"],
)
def test_sequence_holds_under_twenty_peeks(draw: Draw) -> None:
    """Over 1000 seeded A/A paths peeked 20 times, the sequence errs ≤ 5%; naive CIs do not."""
    sequence_rate, fixed_rate = _peeking_error_rates(draw, seed=2024)
    assert sequence_rate <= ALPHA
    assert fixed_rate > 2 * ALPHA


def test_half_width_is_the_normal_mixture_closed_form() -> None:
    """Half-width = s·sqrt(2(Nρ²+1)/(N²ρ²)·log(sqrt(Nρ²+1)/α)), ρ² from the tuning size."""
    variance, n, tuning = 0.002, 5000, 5000
    rho_sq = (-2 * math.log(ALPHA) + math.log(1 - 2 * math.log(ALPHA))) / tuning
    s = math.sqrt(variance * n)
    expected = s * math.sqrt(
        2 * (n * rho_sq + 1) / (n * n * rho_sq) * math.log(math.sqrt(n * rho_sq + 1) / ALPHA)
    )
    assert sequential.half_width(variance, n, ALPHA, tuning) == pytest.approx(expected, rel=1e-12)
    # Always wider than the fixed-horizon interval it replaces.
    assert expected > 1.959963984540054 * math.sqrt(variance)


@pytest.mark.parametrize("estimate", [0.05, 0.1, 0.1327, 0.2])
def test_always_valid_p_value_agrees_with_the_sequence(estimate: float) -> None:
    """p <= α exactly when the (1 - α) sequence excludes 0."""
    variance, n, tuning = 0.0016, 8000, 5000
    p = sequential.p_value(estimate, variance, n, ALPHA, tuning)
    interval = sequential.interval(estimate, variance, n, ALPHA, tuning)
    assert p is not None
    assert (p <= ALPHA) == (interval.lower > 0)
