"""What-if defaults against structural causal models whose interventional answer is exact.

Each SCM here is written down, sampled, and its exact answer derived by hand: the functional
form chosen per equation (linear or log-log), observed common causes with no graph declared,
cross-sectional histories, and counterfactuals with abduction.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pyarrow as pa
import pytest

from cluster.commands import whatif as cli
from twinloop.errors import InvalidInput
from twinloop.replication.history import history_from_arrays, history_from_table
from twinloop.replication.whatif.analytic import WhatIfSettings, what_if
from twinloop.replication.whatif.counterfactual import counterfactual
from twinloop.replication.whatif.graph import CausalGraph
from twinloop.replication.whatif.strengths import VUONG_Z

N = 20_000
BASE = {"latency": 150.0, "satisfaction": 0.65, "conversion": 0.0425, "revenue": 12_950.0}
PLUS_50_MS = {"latency": 50.0 / 150.0}


def linear_scm(n: int = N, seed: int = 0):
    """latency -> satisfaction -> conversion -> revenue, every equation linear in levels."""
    rng = np.random.default_rng(seed)
    latency = rng.normal(150.0, 20.0, n)
    satisfaction = 0.95 - 0.002 * latency + rng.normal(0.0, 0.01, n)
    conversion = 0.01 + 0.05 * satisfaction + rng.normal(0.0, 0.0005, n)
    revenue = 200.0 + 300_000.0 * conversion + rng.normal(0.0, 200.0, n)
    metrics = {
        "latency": latency,
        "satisfaction": satisfaction,
        "conversion": conversion,
        "revenue": revenue,
    }
    return history_from_arrays(np.arange(n), metrics)


def multiplicative_scm(n: int = N, seed: int = 0):
    """The same chain with constant elasticities (-0.3, 1.2, 1) and log-normal noise."""
    rng = np.random.default_rng(seed)
    latency = np.exp(rng.normal(np.log(150.0), 0.15, n))
    satisfaction = 0.65 * (latency / 150.0) ** -0.3 * np.exp(rng.normal(0.0, 0.02, n))
    conversion = 0.0425 * (satisfaction / 0.65) ** 1.2 * np.exp(rng.normal(0.0, 0.02, n))
    revenue = 300_000.0 * conversion * np.exp(rng.normal(0.0, 0.02, n))
    metrics = {
        "latency": latency,
        "satisfaction": satisfaction,
        "conversion": conversion,
        "revenue": revenue,
    }
    return history_from_arrays(np.arange(n), metrics)


def revenue_change(result) -> float:
    return next(m for m in result.metrics if m.metric == "revenue").relative_change


@pytest.mark.parametrize(
    ("scm", "exact", "form"),
    [
        # E[R | do(L = 200)] = 200 + 3e5 (0.01 + 0.05 (0.95 - 0.4)) = 11,450 against 12,950.
        (linear_scm, -1_500.0 / 12_950.0, "slope"),
        # Constant elasticities multiply: E[R | do(L)] ∝ L^(-0.3 · 1.2 · 1).
        (multiplicative_scm, (200.0 / 150.0) ** -0.36 - 1.0, "elasticity"),
    ],
)
def test_default_form_is_within_one_percent_on_linear_and_multiplicative_truths(
    scm, exact: float, form: str
) -> None:
    """+50 ms of latency: the default picks each equation's form and lands within 1 %."""
    history = scm()
    default = what_if(BASE, PLUS_50_MS, history=history)
    assert abs(revenue_change(default) - exact) <= 0.01 * abs(exact)
    assert {e.scale for e in default.edges} == {form}
    assert {e.chosen_by for e in default.edges} == {"likelihood"}
    wrong = "log" if form == "slope" else "linear"
    forced = what_if(BASE, PLUS_50_MS, history=history, settings=WhatIfSettings(transform=wrong))
    assert abs(revenue_change(forced) - exact) > 0.1 * abs(exact)  # the test can tell them apart


def test_reported_likelihood_ratio_says_which_form_won() -> None:
    """Each fitted edge carries log L(log) - log L(linear) and Vuong's z: negative on a linear
    truth, positive on a multiplicative one; indistinguishable forms keep the log."""
    linear = what_if(BASE, PLUS_50_MS, history=linear_scm())
    assert all(e.log_likelihood_ratio is not None for e in linear.edges)
    assert all(e.form_z < -VUONG_Z for e in linear.edges)  # type: ignore[operator]
    logs = what_if(BASE, PLUS_50_MS, history=multiplicative_scm())
    assert all(e.form_z > VUONG_Z for e in logs.edges)  # type: ignore[operator]
    # Over 1 % of its range y = 2 + x is a power law too: no evidence either way.
    rng = np.random.default_rng(5)
    x = rng.uniform(100.0, 101.0, 200)
    history = history_from_arrays(np.arange(200), {"x": x, "y": 2.0 + x + rng.normal(0, 0.05, 200)})
    flat = what_if(
        {"x": 100.0, "y": 102.0}, {"x": 0.01}, history=history, graph=CausalGraph(edges=["x -> y"])
    )
    assert abs(flat.edges[0].form_z) < VUONG_Z  # type: ignore[arg-type]
    assert flat.edges[0].scale == "elasticity"


def confounded_scm(name: str = "traffic", n: int = N, seed: int = 0):
    """traffic raises latency and, directly, conversion; latency lowers conversion."""
    rng = np.random.default_rng(seed)
    traffic = rng.normal(1_000.0, 150.0, n)
    latency = 100.0 + 0.05 * traffic + rng.normal(0.0, 10.0, n)
    conversion = 0.06 - 0.0001 * latency + 0.00001 * traffic + rng.normal(0.0, 0.001, n)
    metrics = {name: traffic, "latency": latency, "conversion": conversion}
    return history_from_arrays(np.arange(n), metrics)


# E[C | do(L = 200)] - E[C | do(L = 150)] = -0.0001 · 50 against E[C] = 0.055.
CONFOUNDED_EXACT = -0.005 / 0.055


@pytest.mark.parametrize("with_traffic_value", [True, False])
def test_observed_common_cause_is_adjusted_for_without_a_graph(with_traffic_value: bool) -> None:
    """No graph: traffic (a root of the default graph) is found and adjusted for."""
    base = {"latency": 150.0, "conversion": 0.055}
    if with_traffic_value:
        base = {"traffic": 1_000.0, **base}
    result = what_if(base, PLUS_50_MS, history=confounded_scm())
    change = next(m for m in result.metrics if m.metric == "conversion")
    assert change.relative_change == pytest.approx(CONFOUNDED_EXACT, rel=0.02)
    assert change.change_low <= CONFOUNDED_EXACT <= change.change_high
    found = [f for f in result.findings if f.code == "confounder_adjusted"]
    assert [f.field for f in found] == ["history.traffic"]
    assert "latency -> conversion" in found[0].message
    assert not any(f.code == "unobserved_confounder" for f in result.findings)


def test_unknown_common_cause_is_named_with_the_edge_at_risk() -> None:
    """A confounder outside the default graph cannot be told from a mediator: it is reported."""
    result = what_if(
        {"latency": 150.0, "conversion": 0.055}, PLUS_50_MS, history=confounded_scm("weather")
    )
    found = [f for f in result.findings if f.code == "possible_confounder"]
    assert [f.field for f in found] == ["history.weather"]
    assert "latency -> conversion may be confounded" in found[0].message
    declared = what_if(
        {"weather": 1_000.0, "latency": 150.0, "conversion": 0.055},
        PLUS_50_MS,
        history=confounded_scm("weather"),
        graph=CausalGraph(
            edges=["weather -> latency", "weather -> conversion", "latency -> conversion"]
        ),
    )
    change = next(m for m in declared.metrics if m.metric == "conversion").relative_change
    assert change == pytest.approx(CONFOUNDED_EXACT, rel=0.02)


def test_a_mediator_in_the_history_is_not_adjusted_for() -> None:
    """satisfaction is downstream of latency in the default graph: never a covariate."""
    history = linear_scm()
    result = what_if(
        {"latency": 150.0, "conversion": 0.0425, "revenue": 12_950.0}, PLUS_50_MS, history=history
    )
    codes = {f.code for f in result.findings}
    assert not codes & {"confounder_adjusted", "possible_confounder"}
    assert revenue_change(result) == pytest.approx(-1_500.0 / 12_950.0, rel=0.01)


def test_cross_sectional_rows_fit_a_graph_and_refuse_lags() -> None:
    """A table without a time column is accepted with a note; a lagged edge needs time."""
    rng = np.random.default_rng(3)
    x = rng.normal(10.0, 1.0, 500)
    table = pa.table({"x": x, "y": 2.0 * x + rng.normal(0.0, 0.1, 500)})
    with pytest.raises(InvalidInput, match=r"history\.timestamp: no timestamp column"):
        history_from_table(table)
    history = history_from_table(table, cross_sectional=True)
    result = what_if(
        {"x": 10.0, "y": 20.0}, {"x": 0.1}, history=history, graph=CausalGraph(edges=["x -> y"])
    )
    assert next(m for m in result.metrics if m.metric == "y").predicted == pytest.approx(
        22.0, rel=0.002
    )
    assert "no_timestamp" in {f.code for f in result.findings}
    with pytest.raises(InvalidInput, match=r"x -> y @ 1 needs a timestamp column"):
        what_if(
            {"x": 10.0, "y": 20.0},
            {"x": 0.1},
            history=history,
            graph=CausalGraph(edges=["x -> y @ 1"]),
        )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers())
    return p


def test_cli_accepts_a_history_without_time_and_a_timestamp_flag(tmp_path, capsys) -> None:
    """``what-if --history rows.csv`` (no time column) works; ``--timestamp`` picks a column."""
    rng = np.random.default_rng(4)
    x = rng.normal(10.0, 1.0, 300)
    rows = tmp_path / "rows.csv"
    lines = ["when,x,y", *(f"{i},{a:.4f},{2 * a:.4f}" for i, a in enumerate(x))]
    rows.write_text("\n".join(lines) + "\n")
    untimed = tmp_path / "untimed.csv"
    untimed.write_text("\n".join(line.partition(",")[2] for line in lines) + "\n")
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"x": 10.0, "y": 20.0}))
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps({"edges": ["x -> y"]}))
    common = ["what-if", "--base", str(base), "--change", "x=10%", "--graph", str(graph)]
    args = parser().parse_args([*common, "--history", str(untimed)])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "note [no_timestamp]" in out and "(Vuong z" in out
    args = parser().parse_args([*common, "--history", str(rows), "--timestamp", "when"])
    assert args.handler(args) == 0
    assert "no_timestamp" not in capsys.readouterr().out
    args = parser().parse_args([*common, "--history", str(rows), "--timestamp", "nope"])
    with pytest.raises(InvalidInput, match=r"history\.timestamp: column 'nope' not found"):
        args.handler(args)


def traffic_scm(n: int = N, seed: int = 0):
    """T ~ N(100, 10²), L = 50 + 0.8 T + e_L, R = 1000 - 3 L + 6 T + e_R."""
    rng = np.random.default_rng(seed)
    traffic = rng.normal(100.0, 10.0, n)
    latency = 50.0 + 0.8 * traffic + rng.normal(0.0, 5.0, n)
    revenue = 1_000.0 - 3.0 * latency + 6.0 * traffic + rng.normal(0.0, 20.0, n)
    metrics = {"traffic": traffic, "latency": latency, "revenue": revenue}
    return history_from_arrays(np.arange(n), metrics)


TRAFFIC_GRAPH = CausalGraph(
    edges=["traffic -> latency", "traffic -> revenue", "latency -> revenue"]
)


def test_counterfactual_matches_the_scm_and_differs_from_the_interventional_mean() -> None:
    """A busy, slow day (T=120, L=170, R=1200) had latency been 200: R' = 1200 - 3·30 = 1110."""
    day = {"traffic": 120.0, "latency": 170.0, "revenue": 1_200.0}
    result = counterfactual(day, {"latency": 200.0}, history=traffic_scm(), graph=TRAFFIC_GRAPH)
    revenue = next(m for m in result.metrics if m.metric == "revenue")
    exact = 1_200.0 - 3.0 * (200.0 - 170.0)
    assert abs(revenue.difference - (exact - 1_200.0)) <= 0.01 * 90.0
    assert revenue.counterfactual_low <= exact <= revenue.counterfactual_high
    # The day's own noise: e_R = 1200 - (1000 - 3·170 + 6·120) = -10.
    assert revenue.noise == pytest.approx(-10.0, abs=1.0)
    # The interventional mean of do(L = 200) is 1000 - 600 + 600 = 1000, not this day's 1110.
    mean = what_if(
        {"traffic": 100.0, "latency": 130.0, "revenue": 1_210.0},
        {"latency": 200.0 / 130.0 - 1.0},
        history=traffic_scm(),
        graph=TRAFFIC_GRAPH,
    )
    predicted = next(m for m in mean.metrics if m.metric == "revenue").predicted
    assert predicted == pytest.approx(1_000.0, rel=0.005)


def test_counterfactual_on_a_multiplicative_chain() -> None:
    """Constant elasticities: R' = R · (L'/L)^(-0.36) for the observed unit, whatever its noise."""
    unit = {"latency": 180.0, "satisfaction": 0.6, "conversion": 0.04, "revenue": 12_500.0}
    result = counterfactual(unit, {"latency": 120.0}, history=multiplicative_scm())
    revenue = next(m for m in result.metrics if m.metric == "revenue")
    exact = 12_500.0 * (120.0 / 180.0) ** -0.36
    assert abs(revenue.counterfactual - exact) <= 0.01 * abs(exact - 12_500.0)


def test_counterfactual_bad_input_names_the_field(tmp_path) -> None:
    """Unknown metrics and non-positive values on a log scale are refused by name."""
    history = multiplicative_scm(2_000)
    unit = {"latency": 180.0, "satisfaction": 0.6, "conversion": 0.04, "revenue": 12_500.0}
    with pytest.raises(InvalidInput, match=r"set_values\.speed: unknown metric"):
        counterfactual(unit, {"speed": 1.0}, history=history)
    with pytest.raises(InvalidInput, match=r"set_values\.latency: is -5"):
        counterfactual(unit, {"latency": -5.0}, history=history)
    args = parser().parse_args(["what-if", "--observed", str(tmp_path / "x.json"), "--set", "a"])
    with pytest.raises(InvalidInput, match=r"set: 'a' is not METRIC=VALUE"):
        args.handler(args)


def test_cli_counterfactual(tmp_path, capsys) -> None:
    """``what-if --observed day.json --set latency=200 --history h.csv --graph g.json``."""
    history = traffic_scm(3_000)
    rows = tmp_path / "h.csv"
    lines = ["traffic,latency,revenue"]
    lines += [
        f"{t:.4f},{lat:.4f},{r:.4f}"
        for t, lat, r in zip(
            *(history.metrics[k] for k in ("traffic", "latency", "revenue")), strict=True
        )
    ]
    rows.write_text("\n".join(lines) + "\n")
    (tmp_path / "day.json").write_text(
        json.dumps({"traffic": 120, "latency": 170, "revenue": 1200})
    )
    (tmp_path / "g.json").write_text(
        json.dumps({"edges": [e.parent + " -> " + e.child for e in TRAFFIC_GRAPH.edges]})
    )
    argv = ["what-if", "--observed", str(tmp_path / "day.json"), "--set", "latency=200",
            "--history", str(rows), "--graph", str(tmp_path / "g.json"), "--json"]  # fmt: skip
    args = parser().parse_args(argv)
    assert args.handler(args) == 0
    data = json.loads(capsys.readouterr().out)
    revenue = next(m for m in data["metrics"] if m["metric"] == "revenue")
    assert revenue["counterfactual"] == pytest.approx(1_110.0, abs=5.0)
    assert data["set_values"] == {"latency": 200.0}
