"""Lagged correlation detection: planted relations found, spurious trends not, stats match scipy."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pyarrow.csv as pacsv
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from cluster.commands import correlations as cli
from twinloop.errors import InvalidInput
from twinloop.replication.correlation import (
    CorrelationSettings,
    _bartlett_inflation,
    correlate,
    correlate_matrix,
    lagged_correlation,
)
from twinloop.replication.history import history_from_arrays


def planted_history(n: int = 730, seed: int = 7):
    """Daily KPIs: traffic leads orders by 3 days; cost and tickets only share a trend."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    traffic = 1000 + np.cumsum(rng.normal(0, 20, n))
    orders = np.empty(n)
    orders[:3] = 50
    orders[3:] = 0.05 * traffic[:-3] + rng.normal(0, 1.0, n - 3)
    cost = 200 + 0.8 * t + rng.normal(0, 5, n)
    tickets = 40 + 0.3 * t + rng.normal(0, 3, n)
    days = np.datetime64("2023-01-01") + np.arange(n)
    return history_from_arrays(
        days, {"traffic": traffic, "orders": orders, "cost": cost, "tickets": tickets}
    )


def test_planted_lag_is_found_and_shared_trend_is_not() -> None:
    """traffic → orders at lag 3 is reported with traffic leading; cost ~ tickets is not."""
    history = planted_history()
    result = correlate(history, CorrelationSettings(max_lag=7))
    found = {(p.leader, p.follower, p.lag) for p in result.pairs}
    assert ("traffic", "orders", 3) in found
    assert not any({p.metric_a, p.metric_b} == {"cost", "tickets"} for p in result.pairs)
    assert result.tests == 6 * 15
    raw = correlate(
        history, CorrelationSettings(max_lag=7, detrend="none", adjust_autocorrelation=False)
    )
    assert any({p.metric_a, p.metric_b} == {"cost", "tickets"} for p in raw.pairs), (
        "without de-trending the shared trend looks significant"
    )


def test_residual_detrend_with_season_removes_a_shared_weekly_cycle() -> None:
    """Two metrics sharing a weekly cycle and a trend are unrelated after residual de-trending."""
    rng = np.random.default_rng(3)
    n = 364
    t = np.arange(n)
    week = np.tile([1.2, 1.1, 1.0, 1.0, 0.9, 0.4, 0.4], n // 7)
    a = 100 * week + 0.2 * t + rng.normal(0, 3, n)
    b = 50 * week + 0.1 * t + rng.normal(0, 2, n)
    lead = rng.normal(0, 1, n)
    follow = np.r_[0.0, 0.0, 0.7 * lead[:-2]] + rng.normal(0, 0.5, n)
    data = np.column_stack([a, b, lead, follow])
    names = ["a", "b", "lead", "follow"]
    result = correlate_matrix(
        data, names, CorrelationSettings(detrend="residual", period=7, max_lag=5)
    )
    pairs = {(p.leader, p.follower, p.lag) for p in result.pairs}
    assert pairs == {("lead", "follow", 2)}
    naive = correlate_matrix(
        data, names, CorrelationSettings(detrend="none", max_lag=5, adjust_autocorrelation=False)
    )
    assert any({p.metric_a, p.metric_b} == {"a", "b"} for p in naive.pairs)


def test_lag_zero_coefficients_and_p_values_match_scipy() -> None:
    """Without the autocorrelation adjustment, lag 0 equals scipy's pearsonr and spearmanr."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    y = 0.3 * x + rng.normal(size=200)
    data = np.column_stack([x, y])
    for method in ("pearson", "spearman"):
        cfg = CorrelationSettings(
            max_lag=0, detrend="none", method=method, adjust_autocorrelation=False
        )
        pair = correlate_matrix(data, ["x", "y"], cfg).pairs[0]
        ref = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
        assert pair.r == pytest.approx(ref.statistic, abs=1e-12)
        assert pair.p_value == pytest.approx(ref.pvalue, rel=1e-6)


def test_lagged_correlation_is_exact_on_each_window() -> None:
    """r[k, i, j] equals numpy's corrcoef of x_i[:n-k] and x_j[k:]."""
    rng = np.random.default_rng(2)
    data = rng.normal(size=(300, 4)).cumsum(axis=0)
    r, counts = lagged_correlation(data, 5)
    for k in (0, 1, 5):
        for i, j in ((0, 1), (2, 3), (3, 0)):
            ref = np.corrcoef(data[: 300 - k, i], data[k:, j])[0, 1]
            assert r[k, i, j] == pytest.approx(ref, abs=1e-10)
    assert counts.tolist() == [300, 299, 298, 297, 296, 295]


def test_q_values_are_benjamini_hochberg_over_pairs_and_lags() -> None:
    """Every reported q-value equals statsmodels' fdr_bh over all pairs × lags."""
    rng = np.random.default_rng(5)
    n, lags = 400, 3
    x = rng.normal(size=n)
    data = np.column_stack([x, np.r_[0.0, 0.5 * x[:-1]] + rng.normal(size=n), rng.normal(size=n)])
    cfg = CorrelationSettings(max_lag=lags, detrend="none", adjust_autocorrelation=False)
    result = correlate_matrix(data, ["x", "y", "z"], cfg)
    p_all = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        cells = (
            [(0, i, j)]
            + [(k, i, j) for k in range(1, lags + 1)]
            + [(k, j, i) for k in range(1, lags + 1)]
        )
        for k, a, b in cells:
            p_all.append(stats.pearsonr(data[: n - k, a], data[k:, b]).pvalue)
    q_ref = multipletests(p_all, method="fdr_bh")[1]
    top = result.pairs[0]
    assert (top.leader, top.follower, top.lag) == ("x", "y", 1)
    assert top.q_value == pytest.approx(q_ref[1], rel=1e-6)
    assert result.tests == len(p_all)


def test_bartlett_inflation_matches_two_ar1_series() -> None:
    """For two AR(1) with φ = 0.8 the variance inflation is (1 + φ²) / (1 − φ²) ≈ 4.56."""
    rng = np.random.default_rng(11)
    n, phi = 20_000, 0.8
    series = np.zeros((n, 2))
    shocks = rng.normal(size=(n, 2))
    for t in range(1, n):
        series[t] = phi * series[t - 1] + shocks[t]
    inflation = _bartlett_inflation(series, CorrelationSettings(max_lag=0))
    assert inflation[0, 1] == pytest.approx((1 + phi**2) / (1 - phi**2), rel=0.15)


def test_gaps_are_interpolated_and_constant_metrics_excluded() -> None:
    """Missing days are filled (and reported); a constant metric is left out, not an error."""
    history = planted_history(200)
    days = np.delete(np.datetime64("2023-01-01") + np.arange(200), [50, 51])
    values = {k: np.delete(history.values(k), [50, 51]) for k in history.metric_names}
    values["flat"] = np.ones(198)
    values["cost"][10] = np.nan
    result = correlate(history_from_arrays(days, values), CorrelationSettings(max_lag=4))
    codes = {(f.code, f.field): f.count for f in result.findings}
    assert codes["values_interpolated", "history.timestamp"] == 2
    assert codes["values_interpolated", "history.cost"] == 1
    assert ("metric_excluded", "history.flat") in codes
    assert "flat" not in result.metrics


def test_bad_settings_and_inputs_name_the_field() -> None:
    """Too large a lag, a single metric, segments: each is InvalidInput with its field."""
    history = planted_history(60)
    with pytest.raises(InvalidInput, match=r"settings\.max_lag: max_lag 55"):
        correlate(history, CorrelationSettings(max_lag=55))
    with pytest.raises(InvalidInput, match=r"history\.metrics: need at least two"):
        correlate(history, metrics=["traffic"])
    with pytest.raises(InvalidInput, match=r"history\.metrics: unknown metric 'nope'"):
        correlate(history, metrics=["traffic", "nope"])
    segmented = history_from_arrays(
        np.arange(4), {"x": [1.0, 2, 3, 4]}, segments={"region": ["eu", "us", "eu", "us"]}
    )
    with pytest.raises(InvalidInput, match=r"history\.segments"):
        correlate(segmented)


def test_cli_prints_the_planted_pair_and_json(tmp_path, capsys) -> None:
    """``twinloop correlations H.csv --max-lag 7`` lists traffic → orders at lag 3."""
    path = tmp_path / "h.csv"
    pacsv.write_csv(planted_history().to_table(), path)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["correlations", str(path), "--max-lag", "7"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:3] == ["traffic", "orders", "3"] for line in out.splitlines())
    args = parser.parse_args(["correlations", str(path), "--max-lag", "7", "--json"])
    args.handler(args)
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["max_lag"] == 7 and data["pairs"][0]["leader"] == "traffic"
