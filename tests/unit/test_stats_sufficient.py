"""Sufficient statistics: exact merging in any order, exact round trips, checked inputs."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest

from twinloop.errors import InvalidInput
from twinloop.stats.sufficient import (
    BinomialStats,
    CovariateStats,
    RatioStats,
    SampleStats,
    merge,
)


def _chunks(seed: int, parts: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.lognormal(3.0, 1.2, size=rng.integers(5, 200)) for _ in range(parts)]


def test_merging_in_any_order_gives_bit_identical_moments() -> None:
    """Every permutation and grouping of five chunks gives the same mean and variance bits."""
    stats = [SampleStats.from_array(chunk) for chunk in _chunks(1)]
    results = set()
    for order in itertools.permutations(stats):
        left = merge(order)
        right = order[0] + (order[1] + (order[2] + (order[3] + order[4])))
        results.add((left.mean, left.variance))
        results.add((right.mean, right.variance))
    assert len(results) == 1


def test_ratio_and_covariate_stats_merge_in_any_order() -> None:
    """Bivariate statistics merge exactly too, whatever the order."""
    rng = np.random.default_rng(2)
    pairs = [(rng.normal(5, 2, 50), rng.normal(3, 1, 50)) for _ in range(4)]
    ratios = [RatioStats.from_arrays(a, b) for a, b in pairs]
    covariates = [CovariateStats.from_arrays(a, b) for a, b in pairs]
    assert len({merge(p).moments() for p in itertools.permutations(ratios)}) == 1
    assert len({merge(p).moments() for p in itertools.permutations(covariates)}) == 1


def test_merged_chunks_match_the_whole_array() -> None:
    """Merged chunk statistics agree with the statistics of the concatenated data."""
    chunks = _chunks(3)
    whole = np.concatenate(chunks)
    merged = merge(SampleStats.from_array(chunk) for chunk in chunks)
    assert merged.n == whole.size
    assert merged.mean == pytest.approx(whole.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(whole.var(ddof=1), rel=1e-10)


def test_mean_and_std_round_trip_exactly() -> None:
    """(n, mean, std) in gives exactly that mean and std² back: sums are exact rationals."""
    stats = SampleStats.from_mean_std(1234, 250.123456789, 0.0123456789)
    assert stats.mean == 250.123456789
    assert stats.variance == float(Fraction(0.0123456789) ** 2)


def test_large_mean_small_spread_keeps_its_variance() -> None:
    """A metric around 1e9 with spread 1 keeps its variance (two-pass reduction)."""
    x = 1e9 + np.random.default_rng(4).normal(0.0, 1.0, 10_000)
    stats = SampleStats.from_array(x)
    assert stats.variance == pytest.approx(np.var(x, ddof=1), rel=1e-9)


def test_binomial_stats_merge_and_view_as_sample() -> None:
    """Binomial counts add; as a 0/1 sample they give the rate and p(1-p)·n/(n-1)."""
    stats = BinomialStats.from_counts(60, 12) + BinomialStats.from_counts(40, 8)
    sample = stats.as_sample()
    assert (stats.n, stats.successes) == (100, 20)
    assert sample.mean == pytest.approx(0.2)
    assert sample.variance == pytest.approx(0.2 * 0.8 * 100 / 99, rel=1e-12)


def test_constant_values_have_zero_variance() -> None:
    """A constant column (even 0.1, not exact in binary) counts as zero variance."""
    assert SampleStats.from_array(np.full(1000, 0.1)).is_constant
    assert not SampleStats.from_array([0.1, 0.2]).is_constant


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda f: SampleStats.from_mean_std(-1, 1.0, 1.0, field=f), "x.n"),
        (lambda f: SampleStats.from_mean_std(10, 1.0, -0.5, field=f), "x.std"),
        (lambda f: SampleStats.from_sums(10, 10.0, 5.0, field=f), "x.sum_sq"),
        (lambda f: SampleStats.from_sums(10, float("nan"), 5.0, field=f), "x.sum"),
        (lambda f: BinomialStats.from_counts(10, 11, field=f), "x.successes"),
        (lambda f: BinomialStats.from_counts(-3, 0, field=f), "x.n"),
        (lambda f: BinomialStats.from_counts(10.5, 1, field=f), "x.n"),
        (lambda f: RatioStats.from_sums(2, 2.0, 2.0, 2.0, 4.0, 100.0, field=f), "x.cross_sum"),
        (lambda f: CovariateStats.from_sums(2, 2.0, -1.0, 2.0, 4.0, 1.0, field=f), "x.sum_sq"),
    ],
)
def test_bad_statistics_raise_invalid_input_naming_the_field(
    build: Callable[[str], object], field: str
) -> None:
    """Negative counts, successes above n and negative variances name their field."""
    with pytest.raises(InvalidInput) as info:
        build("x")
    assert info.value.field == field


def test_rounding_noise_in_user_sums_is_forgiven() -> None:
    """Sums of a constant that are off by float rounding give variance 0, not an error."""
    # 3 × 0.1 and 3 × 0.1² in floats imply a variance of about -1e-18.
    stats = SampleStats.from_sums(3, 0.1 * 3, 0.1 * 0.1 * 3)
    assert stats.variance == 0.0
    assert SampleStats.from_sums(3, 0.3, 0.03).is_constant


def test_merging_different_kinds_is_refused() -> None:
    """Adding binomial to continuous statistics is a type error, not a silent mix."""
    with pytest.raises(TypeError):
        _ = SampleStats.from_array([1.0, 2.0]) + BinomialStats.from_counts(2, 1)  # type: ignore[operator]


def test_every_statistics_type_survives_pickling_for_ray() -> None:
    """What workers send through Ray's object store comes back equal, with the same moments."""
    import pickle

    rng = np.random.default_rng(8)
    objects = [
        SampleStats.from_array(rng.normal(size=20)),
        BinomialStats.from_counts(20, 3),
        RatioStats.from_arrays(rng.gamma(2, size=20), rng.gamma(3, size=20)),
        CovariateStats.from_arrays(rng.normal(size=20), rng.normal(size=20)),
    ]
    for stats in objects:
        clone = pickle.loads(pickle.dumps(stats))
        assert clone == stats
        if isinstance(stats, RatioStats | CovariateStats):
            assert clone.moments() == stats.moments()
