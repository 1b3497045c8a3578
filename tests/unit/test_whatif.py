"""Analytic what-if: causal (not correlational) answers, priors, projections, and refusals."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import statsmodels.api as sm

from cluster.commands import whatif as cli
from twinloop.errors import InvalidInput
from twinloop.replication.history import history_from_arrays
from twinloop.replication.whatif.analytic import WhatIfSettings, parse_change, what_if
from twinloop.replication.whatif.graph import CausalGraph, default_graph, topological

# Linear-Gaussian SCM with a confounder: traffic raises latency and (separately) revenue.
A_TL, B_LR, C_TR = 0.8, -3.0, 6.0
LINEAR = WhatIfSettings(transform="linear", seed=1)


def confounded(n: int = 20_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    traffic = rng.normal(100.0, 10.0, n)
    latency = 50.0 + A_TL * traffic + rng.normal(0.0, 5.0, n)
    revenue = 1000.0 + B_LR * latency + C_TR * traffic + rng.normal(0.0, 20.0, n)
    history = history_from_arrays(
        np.arange(n), {"traffic": traffic, "latency": latency, "revenue": revenue}
    )
    # Population means: E[T] = 100, E[L] = 50 + 0.8·100, E[R] = 1000 − 3·E[L] + 6·100.
    base = {"traffic": 100.0, "latency": 130.0, "revenue": 1000.0 - 3.0 * 130.0 + 600.0}
    return history, base


def prediction(result, metric):
    return next(m for m in result.metrics if m.metric == metric)


def test_confounded_scm_matches_the_interventional_answer_and_naive_does_not() -> None:
    """do(latency −20 %) moves revenue by b·ΔL; regressing revenue on latency alone is wrong."""
    history, base = confounded()
    exact = B_LR * (-0.2 * base["latency"]) / base["revenue"]  # +6.45 %
    graph = CausalGraph(edges=["traffic -> latency", "traffic -> revenue", "latency -> revenue"])
    ours = prediction(
        what_if(base, {"latency": -0.2}, graph=graph, history=history, settings=LINEAR), "revenue"
    )
    assert ours.relative_change == pytest.approx(exact, abs=0.002)
    assert ours.change_low <= exact <= ours.change_high
    naive_graph = CausalGraph(edges=["latency -> revenue"])
    naive = prediction(
        what_if(
            {"latency": base["latency"], "revenue": base["revenue"]},
            {"latency": -0.2},
            graph=naive_graph,
            history=history,
            settings=LINEAR,
        ),
        "revenue",
    )
    # Naive slope = b + c·Cov(T, L)/Var(L) = −3 + 6·80/89 ≈ +2.39: the wrong sign.
    assert naive.relative_change < 0 < exact
    assert abs(naive.relative_change - exact) > 0.1


def test_fitted_strengths_equal_statsmodels_ols() -> None:
    """Each node's regression on its parents reproduces statsmodels' params and standard errors."""
    history, base = confounded(2_000, seed=3)
    graph = CausalGraph(edges=["traffic -> latency", "traffic -> revenue", "latency -> revenue"])
    result = what_if(base, {"traffic": 0.1}, graph=graph, history=history, settings=LINEAR)
    exog = sm.add_constant(np.column_stack([history.values("traffic"), history.values("latency")]))
    ols = sm.OLS(history.values("revenue"), exog).fit()
    edges = {(e.parent, e.child): e for e in result.edges}
    assert edges["traffic", "revenue"].strength == pytest.approx(ols.params[1], rel=1e-9)
    assert edges["latency", "revenue"].stderr == pytest.approx(ols.bse[2], rel=1e-9)
    assert edges["latency", "revenue"].source == "history"
    assert edges["latency", "revenue"].rows == 2_000


def test_log_log_scm_recovers_elasticities_through_a_chain() -> None:
    """Multiplicative SCM: accuracy +10 % moves satisfaction by 1.1^0.6 and revenue by its ^1.5."""
    rng = np.random.default_rng(4)
    n = 5_000
    accuracy = np.exp(rng.normal(np.log(0.8), 0.05, n))
    latency = np.exp(rng.normal(np.log(200.0), 0.2, n))
    satisfaction = np.exp(0.6 * np.log(accuracy) - 0.2 * np.log(latency) + rng.normal(0, 0.02, n))
    revenue = np.exp(7.0 + 1.5 * np.log(satisfaction) + rng.normal(0, 0.05, n))
    history = history_from_arrays(
        np.arange(n),
        {
            "accuracy": accuracy,
            "latency": latency,
            "satisfaction": satisfaction,
            "revenue": revenue,
        },
    )
    graph = CausalGraph(
        edges=["accuracy -> satisfaction", "latency -> satisfaction", "satisfaction -> revenue"]
    )
    base = {"accuracy": 0.8, "latency": 200.0, "satisfaction": 0.5, "revenue": 1000.0}
    result = what_if(base, {"accuracy": "+10%"}, graph=graph, history=history)
    assert prediction(result, "satisfaction").relative_change == pytest.approx(
        1.1**0.6 - 1, abs=0.003
    )
    assert prediction(result, "revenue").relative_change == pytest.approx(
        1.1 ** (0.6 * 1.5) - 1, abs=0.005
    )
    assert prediction(result, "latency").role == "unaffected"
    assert {e.scale for e in result.edges} == {"elasticity"}


def test_default_graph_propagates_prior_elasticities() -> None:
    """No history: accuracy +10 % → satisfaction ×1.1^0.5 → conversion (^0.8) → revenue (^1)."""
    base = {
        "accuracy": 0.8,
        "latency": 200.0,
        "satisfaction": 0.7,
        "conversion": 0.05,
        "revenue": 10_000.0,
        "calls": 5_000.0,
        "cost": 300.0,
    }
    result = what_if(base, {"accuracy": 0.1})
    sat = 1.1**0.5
    assert prediction(result, "satisfaction").relative_change == pytest.approx(sat - 1)
    assert prediction(result, "revenue").relative_change == pytest.approx(sat**0.8 - 1)
    assert prediction(result, "cost").role == "unaffected"
    revenue = prediction(result, "revenue")
    assert revenue.change_low < revenue.relative_change < revenue.change_high
    assert result.graph_source == "default"
    codes = {f.code for f in result.findings}
    assert {"prior_strength", "node_not_observed"} <= codes
    assert "unobserved_confounder" not in codes  # irrelevant without a history fit


def test_simulator_kpi_names_are_recognised() -> None:
    """model_accuracy / conversion_rate / model_calls map onto the default graph's nodes."""
    base = {
        "model_accuracy": 0.8,
        "latency_p95_ms": 300.0,
        "satisfaction": 0.7,
        "conversion_rate": 0.05,
        "revenue": 10_000.0,
        "model_calls": 5_000.0,
        "cost": 300.0,
    }
    result = what_if(base, {"latency_p95_ms": -0.2, "model_calls": 0.5})
    assert prediction(result, "revenue").relative_change > 0
    assert prediction(result, "cost").relative_change == pytest.approx(0.5)


def test_intervention_cuts_incoming_edges() -> None:
    """do(satisfaction) holds it at its set value whatever accuracy does."""
    base = {"accuracy": 0.8, "satisfaction": 0.7, "conversion": 0.05}
    both = what_if(base, {"accuracy": 0.5, "satisfaction": -0.1})
    assert prediction(both, "satisfaction").predicted == pytest.approx(0.63)
    assert prediction(both, "conversion").relative_change == pytest.approx(0.9**0.8 - 1)


def test_declared_strengths_and_projection_of_a_missing_mediator() -> None:
    """Declared elasticities multiply along a path whose middle metric was not supplied."""
    graph = CausalGraph(
        edges=[
            {"parent": "a", "child": "m", "strength": 0.5, "stderr": 0.1},
            {"parent": "m", "child": "y", "strength": 2.0},
        ]
    )
    result = what_if({"a": 1.0, "y": 10.0}, {"a": 0.2}, graph=graph)
    assert prediction(result, "y").relative_change == pytest.approx(1.2 ** (0.5 * 2.0) - 1)
    assert result.edges[0].stderr == pytest.approx(0.2)
    assert result.edges[0].source == "declared"
    assert any(f.code == "node_not_observed" for f in result.findings)


def test_same_seed_same_result_other_seed_other_interval() -> None:
    """Monte Carlo intervals are reproducible from the seed."""
    base = {"accuracy": 0.8, "satisfaction": 0.7, "conversion": 0.05}
    one = what_if(base, {"accuracy": 0.1}, settings=WhatIfSettings(seed=5))
    again = what_if(base, {"accuracy": 0.1}, settings=WhatIfSettings(seed=5))
    other = what_if(base, {"accuracy": 0.1}, settings=WhatIfSettings(seed=6))
    assert one.model_dump_json() == again.model_dump_json()
    assert prediction(one, "conversion").change_high != prediction(other, "conversion").change_high
    assert one.seed == 5 and one.settings.seed == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accuracy=0.1", ("accuracy", 0.1)),
        ("latency=-20%", ("latency", -0.2)),
        ("conversion +20%", ("conversion", 0.2)),
        ("revenue: 1e-1", ("revenue", 0.1)),
    ],
)
def test_change_syntax(text: str, expected: tuple[str, float]) -> None:
    """The seed's fraction form and the "conversion +20%" form both parse."""
    name, value = parse_change(text)
    assert name == expected[0] and math.isclose(value, expected[1])


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"speed": 0.1}, r"changes\.speed: unknown metric 'speed'"),
        ({"accuracy": -1.0}, r"changes\.accuracy: -100% would take accuracy to zero"),
        ({"accuracy": "-150%"}, r"changes\.accuracy: -150%"),
        ({"accuracy": 50.0}, r"changes\.accuracy: \+5000% is beyond the sane range"),
        ({"accuracy": "lots"}, r"changes\.accuracy: 'lots' is not a relative change"),
        ({}, r"changes: no changes given"),
    ],
)
def test_bad_changes_are_refused_naming_the_field(changes: dict, match: str) -> None:
    """Unknown metrics and changes outside (−100 %, +1000 %] are InvalidInput."""
    with pytest.raises(InvalidInput, match=match):
        what_if({"accuracy": 0.8, "satisfaction": 0.7}, changes)


def test_cycles_self_loops_and_bad_base_are_refused() -> None:
    """A cycle names the edge that closes it; a NaN baseline names the metric."""
    cyclic = CausalGraph(edges=["a -> b", "b -> c", "c -> a"])
    with pytest.raises(
        InvalidInput,
        match=r"graph\.edges\[2\]: edge 'c' -> 'a' closes the "
        r"cycle c -> a -> b -> c",
    ):
        what_if({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 0.1}, graph=cyclic)
    with pytest.raises(InvalidInput, match=r"graph\.edges\[0\]: .* self-loop"):
        topological(CausalGraph(edges=["a -> a"]))
    with pytest.raises(InvalidInput, match=r"base_metrics\.accuracy: nan is not finite"):
        what_if({"accuracy": float("nan")}, {"accuracy": 0.1})
    with pytest.raises(InvalidInput, match=r"history: edge a -> b has no strength"):
        what_if({"a": 1.0, "b": 2.0}, {"a": 0.1}, graph=CausalGraph(edges=["a -> b"]))


def test_history_problems_are_named() -> None:
    """A graph edge without a history column, and a segmented history, are refused."""
    history = history_from_arrays(np.arange(10), {"a": np.arange(1.0, 11.0)})
    with pytest.raises(InvalidInput, match=r"history\.b: no such column"):
        what_if(
            {"a": 1.0, "b": 2.0}, {"a": 0.1}, graph=CausalGraph(edges=["a -> b"]), history=history
        )
    segmented = history_from_arrays(
        np.arange(2), {"a": [1.0, 2.0]}, segments={"region": ["eu", "us"]}
    )
    with pytest.raises(InvalidInput, match=r"history\.segments"):
        what_if({"a": 1.0}, {"a": 0.1}, history=segmented)


def test_every_default_graph_is_acyclic() -> None:
    """Each domain's default graph passes the cycle check."""
    for domain in ("generic", "marketing", "sales", "customer_success", "analytics"):
        assert len(topological(default_graph(domain))) >= 10


def test_cli_what_if_prints_table_and_json(tmp_path, capsys) -> None:
    """``twinloop what-if --base B.json --change accuracy=0.1 --change latency=-0.2``."""
    base = tmp_path / "base.json"
    base.write_text(
        json.dumps(
            {
                "accuracy": 0.8,
                "latency": 200,
                "satisfaction": 0.7,
                "conversion": 0.05,
                "revenue": 10000,
            }
        )
    )
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    argv = ["what-if", "--base", str(base), "--change", "accuracy=0.1", "--change", "latency=-0.2"]
    args = parser.parse_args(argv)
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "revenue" in out and "downstream" in out
    args = parser.parse_args([*argv, "--json"])
    args.handler(args)
    data = json.loads(capsys.readouterr().out)
    assert data["changes"] == {"accuracy": 0.1, "latency": -0.2}
    args = parser.parse_args(["what-if", "--base", str(base), "--change", "speed=0.1"])
    with pytest.raises(InvalidInput, match=r"changes\.speed"):
        args.handler(args)


def test_lagged_edge_is_fitted_against_the_shifted_parent() -> None:
    """spend drives traffic two days later: "spend -> traffic @ 2" recovers it, lag 0 does not."""
    rng = np.random.default_rng(8)
    n = 2_000
    spend = np.exp(rng.normal(6.0, 0.3, n))
    traffic = np.exp(5.0 + 0.4 * np.log(np.r_[spend[:2], spend[:-2]]) + rng.normal(0, 0.05, n))
    history = history_from_arrays(np.arange(n), {"spend": spend, "traffic": traffic})
    base = {"spend": 400.0, "traffic": 1_500.0}
    lagged = what_if(
        base, {"spend": 0.5}, history=history, graph=CausalGraph(edges=["spend -> traffic @ 2"])
    )
    assert lagged.edges[0].lag == 2
    assert lagged.edges[0].elasticity == pytest.approx(0.4, abs=0.01)
    assert prediction(lagged, "traffic").relative_change == pytest.approx(1.5**0.4 - 1, abs=0.01)
    same_day = what_if(
        base, {"spend": 0.5}, history=history, graph=CausalGraph(edges=["spend -> traffic"])
    )
    assert abs(same_day.edges[0].elasticity) < 0.05


def test_elasticities_need_positive_baselines_but_fits_do_not() -> None:
    """A prior elasticity around a negative level is refused; a fitted slope around 0 is fine."""
    with pytest.raises(
        InvalidInput,
        match=r"base_metrics\.satisfaction: is -0.2; the "
        r"elasticity of accuracy -> satisfaction",
    ):
        what_if({"accuracy": 0.8, "satisfaction": -0.2}, {"accuracy": 0.1})
    rng = np.random.default_rng(9)
    x = rng.normal(0.0, 1.0, 500)
    y = 2.0 * x + rng.normal(0.0, 0.1, 500)
    history = history_from_arrays(np.arange(500), {"x": x, "y": y})
    result = what_if(
        {"x": -1.0, "y": 0.0}, {"x": 0.5}, history=history, graph=CausalGraph(edges=["x -> y"])
    )
    assert prediction(result, "y").predicted == pytest.approx(-1.0, abs=0.02)
    assert result.edges[0].scale == "slope" and result.edges[0].elasticity is None
