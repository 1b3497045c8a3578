"""The HTTP API through a real Ray Serve instance: every route, its errors, auth, runs, load.

One Serve application for the whole module (starting it costs ~20 s here), on a free loopback
port, with a bearer token and small limits so the limit paths are cheap to reach.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_strategies import body_strategy, near
from shared_serve import deployed

from serve_apps.runs import LEASE_S, RUN_KIND, RunBook, RunRecord
from serve_apps.telemetry import exported_name
from twinloop.store import SqliteStore

pytestmark = [pytest.mark.serve, pytest.mark.ray]

TOKEN = "test-token-7f3a"
MAX_ROWS = 2_000
MAX_BODY = 256 * 1024
EXAMPLES_PER_ROUTE = 8  # × 13 POST routes ≈ 100 fuzzed requests
SEED_WHAT_IF = {  # the seed's what-if body, with its "..." filled in
    "baseMetrics": {
        "accuracy": 0.78,
        "latency": 250.0,
        "satisfaction": 0.72,
        "conversion": 0.05,
        "revenue": 10_000.0,
    },
    "changes": {"accuracy": 0.1, "latency": -0.2},
}


@dataclass
class Api:
    base: str
    client: httpx.Client  # carries the bearer token
    anonymous: httpx.Client
    data_dir: Path


@pytest.fixture(scope="module")
def api(serve_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One Serve app for the module on the session's Serve; deleted at the end."""
    from serve_apps.app import APP_NAME, build_app

    port = serve_port
    data_dir = tmp_path_factory.mktemp("serve-data")
    args = {
        "settings": {"data_dir": str(data_dir), "api_token": TOKEN},
        # Small limits: the limit paths are cheap to reach, and no fuzzed sandbox body can start
        # a long simulation (anything above the inline budget is refused with 413).
        "limits": {
            "max_rows": MAX_ROWS,
            "max_body_bytes": MAX_BODY,
            "max_timeout_s": 30.0,
            "default_timeout_s": 20.0,
            "max_customers": 100_000,
            "max_customer_days": 3e6,
            "inline_customer_days": 3e6,
        },
    }
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        deployed(build_app(args), APP_NAME),
        httpx.Client(base_url=base, headers=auth, timeout=60) as client,
        httpx.Client(base_url=base, timeout=60) as anonymous,
    ):
        yield Api(base, client, anonymous, data_dir)


def _history(rows: int = 240, lag: int = 2, seed: int = 3) -> list[dict[str, Any]]:
    """Daily KPIs where ``revenue`` follows ``traffic`` ``lag`` days later (planted relation)."""
    rng = np.random.default_rng(seed)
    traffic = rng.normal(0, 1, rows).cumsum() + 100
    shocks = np.diff(traffic, prepend=traffic[0])
    revenue = (
        50 + np.concatenate([np.zeros(lag), shocks[:-lag]]).cumsum() * 3 + rng.normal(0, 0.3, rows)
    )
    start = dt.date(2024, 1, 1)
    return [
        {
            "timestamp": (start + dt.timedelta(days=i)).isoformat(),
            "traffic": float(traffic[i]),
            "revenue": float(revenue[i]),
        }
        for i in range(rows)
    ]


def _error(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    if field is not None:
        assert body["field"] == field, body
        assert field.lower() in body["message"].lower() or status in (404, 409, 413), body
    return body


# --- health, docs, routing ---------------------------------------------------------------------


def test_healthz_reports_mounted_capabilities_and_deep_pings_them(api: Api) -> None:
    """Shallow health lists the deployments; deep health gets 'ok' from each of them."""
    shallow = api.anonymous.get("/healthz").json()
    assert shallow["status"] == "ok"
    assert set(shallow["capabilities"]) == {"twin", "metrics", "analyzer", "registry", "canary"}
    deep = api.anonymous.get("/healthz", params={"deep": "true"}).json()
    assert set(deep["capabilities"].values()) == {"ok"}


def test_openapi_docs_are_served(api: Api) -> None:
    """/docs is the Swagger page (assets served locally) and /openapi.json lists the routes."""
    page = api.anonymous.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in page and "cdn." not in page
    assert api.anonymous.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    spec = api.anonymous.get("/openapi.json").json()
    assert "/metrics/what-if" in spec["paths"]
    assert "baseMetrics" in spec["components"]["schemas"]["WhatIfRequest"]["properties"]


def test_unknown_route_and_wrong_method_are_json_errors(api: Api) -> None:
    """404 and 405 keep the JSON error shape."""
    assert _error(api.client.get("/nope"), 404)["code"] == "not_found"
    assert _error(api.client.get("/metrics/what-if"), 405)["code"] == "method_not_allowed"


# --- what-if -----------------------------------------------------------------------------------


def test_seed_what_if_body_predicts_downstream_metrics(api: Api) -> None:
    """The seed's curl body works: accuracy +10 % and latency −20 % raise satisfaction."""
    result = api.client.post("/metrics/what-if", json=SEED_WHAT_IF).json()
    by_metric = {m["metric"]: m for m in result["metrics"]}
    assert by_metric["accuracy"]["relative_change"] == pytest.approx(0.1)
    assert by_metric["satisfaction"]["role"] == "downstream"
    assert by_metric["satisfaction"]["relative_change"] > 0


def test_what_if_accepts_snake_case_too(api: Api) -> None:
    """base_metrics and baseMetrics are the same field."""
    snake = {"base_metrics": SEED_WHAT_IF["baseMetrics"], "changes": SEED_WHAT_IF["changes"]}
    assert (
        api.client.post("/metrics/what-if", json=snake).json()
        == api.client.post("/metrics/what-if", json=SEED_WHAT_IF).json()
    )


def test_what_if_unknown_metric_is_422_naming_it(api: Api) -> None:
    """A change to a metric that has no baseline names changes.<metric>."""
    body = {"baseMetrics": {"accuracy": 0.8}, "changes": {"acuracy": 0.1}}
    _error(api.client.post("/metrics/what-if", json=body), 422, "changes.acuracy")


def test_what_if_wrong_type_is_422_naming_the_camel_case_field(api: Api) -> None:
    """pydantic's errors are mapped to the field as the client spelled it."""
    body = {"baseMetrics": {"accuracy": "high"}, "changes": {"accuracy": 0.1}}
    _error(api.client.post("/metrics/what-if", json=body), 422, "baseMetrics.accuracy")


def _units(rows: int = 1_500, seed: int = 4) -> dict[str, list[float]]:
    """Cross-sectional rows (no timestamp) of T ~ N(100, 10²), L = 50 + 0.8 T + e_L,
    R = 1000 - 3 L + 6 T + e_R, as columns."""
    rng = np.random.default_rng(seed)
    traffic = rng.normal(100.0, 10.0, rows)
    latency = 50.0 + 0.8 * traffic + rng.normal(0.0, 5.0, rows)
    revenue = 1_000.0 - 3.0 * latency + 6.0 * traffic + rng.normal(0.0, 20.0, rows)
    return {"traffic": list(traffic), "latency": list(latency), "revenue": list(revenue)}


COUNTERFACTUAL = {  # a busy, slow day: what would revenue have been at 200 ms?
    "observed": {"traffic": 120.0, "latency": 170.0, "revenue": 1_200.0},
    "setValues": {"latency": 200.0},
    "graph": {"edges": ["traffic -> latency", "traffic -> revenue", "latency -> revenue"]},
    "history": _units(),
}


def test_counterfactual_over_http_matches_the_exact_scm_answer(api: Api) -> None:
    """Abduction keeps the day's noise: R' = 1200 - 3 · (200 - 170) = 1110, interval covering it;
    the history has no timestamp column (cross-sectional rows)."""
    response = api.client.post("/metrics/what-if/counterfactual", json=COUNTERFACTUAL)
    assert response.status_code == 200, response.text
    result = response.json()
    revenue = next(m for m in result["metrics"] if m["metric"] == "revenue")
    assert revenue["counterfactual"] == pytest.approx(1_110.0, abs=0.02 * 90)
    assert revenue["counterfactual_low"] <= 1_110.0 <= revenue["counterfactual_high"]
    # e_R = 1200 - (1000 - 510 + 720) = -10; the day is far out (e_L = +24 ms, 4.8 sd), so the
    # fitted plane's error there is ~3 with 1,500 rows.
    assert revenue["noise"] == pytest.approx(-10.0, abs=6.0)
    assert "no_timestamp" in {f["code"] for f in result["findings"]}
    background = api.client.post(
        "/metrics/what-if/counterfactual",
        json=COUNTERFACTUAL,
        headers={"Prefer": "respond-async"},
    )
    assert background.status_code == 202
    run = _poll(api, background.json()["location"])
    assert run["result"] == result


def test_counterfactual_refusals_name_the_field(api: Api) -> None:
    """An unknown metric to set, and a missing history, are 422s naming the field."""
    body = {**COUNTERFACTUAL, "setValues": {"latncy": 200.0}}
    path = "/metrics/what-if/counterfactual"
    _error(api.client.post(path, json=body), 422, "set_values.latncy")
    missing = {k: v for k, v in COUNTERFACTUAL.items() if k != "history"}
    _error(api.client.post(path, json=missing), 422, "history")


def test_malformed_json_is_422_on_body(api: Api) -> None:
    """A body that is not JSON names the body, not a 500."""
    response = api.client.post(
        "/metrics/what-if", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert "JSON" in _error(response, 422, "body")["message"]


# --- correlations and synthetic ----------------------------------------------------------------


def test_correlations_find_the_planted_lag(api: Api) -> None:
    """traffic leads revenue by 2 days in the history; the route reports exactly that."""
    body = {"history": _history(), "settings": {"max_lag": 5}}
    result = api.client.post("/metrics/correlations", json=body).json()
    top = result["pairs"][0]
    assert (top["leader"], top["follower"], top["lag"]) == ("traffic", "revenue", 2)


def test_correlations_refuse_a_word_in_a_metric_column(api: Api) -> None:
    """A non-numeric value is 422 naming history.<column>."""
    rows = _history(40)
    rows[7]["revenue"] = "lots"
    body = {"history": rows}
    _error(api.client.post("/metrics/correlations", json=body), 422, "history.revenue")


def test_correlations_over_the_row_limit_is_413_naming_it(api: Api) -> None:
    """More rows than max_rows: 413 with the limit and the value."""
    columns = {"timestamp": list(range(MAX_ROWS + 1)), "x": [1.0] * (MAX_ROWS + 1)}
    body = _error(
        api.client.post("/metrics/correlations", json={"history": columns}), 413, "history.rows"
    )
    assert body["limit"] == MAX_ROWS and body["value"] == MAX_ROWS + 1


def test_synthetic_rows_keep_columns_and_report_edge_cases(api: Api) -> None:
    """Generated rows come back as columns with the requested surge measured."""
    rng = np.random.default_rng(1)
    source = {
        "segment": [["a", "b"][i % 2] for i in range(300)],
        "traffic": rng.poisson(100, 300).tolist(),
        "revenue": rng.gamma(2.0, 10.0, 300).round(2).tolist(),
    }
    body = {"source": source, "rows": 400, "seed": 5, "edgeCases": ["surge:3:traffic"]}
    result = api.client.post("/synthetic", json=body).json()
    assert len(result["columns"]["traffic"]) == 400
    (report,) = result["result"]["edge_cases"]
    assert report["kind"] == "traffic_surge" and report["measured"] == pytest.approx(3, rel=0.3)


def test_synthetic_rows_over_the_limit_is_413(api: Api) -> None:
    """rows above max_rows is refused before any work."""
    body = {"source": {"x": [1.0, 2.0]}, "rows": MAX_ROWS + 1}
    _error(api.client.post("/synthetic", json=body), 413, "rows")


def test_synthetic_bad_edge_case_text_names_its_index(api: Api) -> None:
    """An edge case that does not parse names edge_cases.<i>."""
    body = {"source": {"x": [1.0, 2.0, 3.0]}, "rows": 10, "edgeCases": ["tornado:3"]}
    _error(api.client.post("/synthetic", json=body), 422, "edge_cases.0")


def _series(points: int = 600, shift_at: int = 400) -> list[dict[str, Any]]:
    """Hourly orders with a level shift of +25 at ``shift_at``."""
    rng = np.random.default_rng(0)
    values = rng.normal(100, 2, points)
    values[shift_at:] += 25
    start = dt.datetime(2024, 1, 1)
    return [
        {"timestamp": (start + dt.timedelta(hours=i)).isoformat(), "orders": float(v)}
        for i, v in enumerate(values)
    ]


def test_anomalies_find_and_label_a_level_shift(api: Api) -> None:
    """The planted shift is found at its row and labelled level_shift; a pattern is learned."""
    body = {"series": _series(), "learn": "orders-step-up"}
    result = api.client.post("/metrics/anomalies", json=body).json()
    shift = [a for a in result["anomalies"] if a["index"] == 400]
    assert shift and shift[0]["kind"] == "level_shift"
    assert result["learned"]["name"] == "orders-step-up"
    again = api.client.post("/metrics/anomalies", json={"series": _series()}).json()
    assert "orders-step-up" in again["patterns_used"]


def test_anomalies_bad_series_names_the_field(api: Api) -> None:
    """A gap in the values names series.<column>; two metrics without valueColumn name it."""
    rows = _series(100)
    rows[10]["orders"] = None
    _error(api.client.post("/metrics/anomalies", json={"series": rows}), 422, "series.orders")
    two = [{**r, "visits": 1.0} for r in _series(100)]
    _error(api.client.post("/metrics/anomalies", json={"series": two}), 422, "value_column")


# --- sandbox -----------------------------------------------------------------------------------

SMALL = {"customers": 800, "days": 10, "replicates": 3}


def test_seed_sandbox_body_runs_on_a_stored_environment(api: Api) -> None:
    """The seed's {model, environmentId, duration} works against a stored environment."""
    env = {
        "id": "env-seed",
        "preset": "sales",
        "changes": {"initial_customers": 1500},
        "replace": True,
    }
    assert api.client.post("/environments", json=env).status_code == 201
    body = {
        "model": {"accuracy": 0.7, "latency_p50_ms": 150, "latency_p95_ms": 400},
        "environmentId": "env-seed",
        "duration": 30,
    }
    result = api.client.post("/sandbox/test", json=body).json()
    assert result["kind"] == "test" and result["replicates"] == 10  # MONTE_CARLO_RUNS
    spec = result["spec"]
    assert spec["days"] == 30 and spec["environment"]["initial_customers"] == 1500
    assert {k["kpi"] for k in result["kpis"]} >= {"revenue", "conversion_rate"}
    accepted = api.client.post("/sandbox/test", json=body, headers={"Prefer": "respond-async"})
    record = _poll(api, accepted.headers["location"], timeout_s=120)
    assert record["status"] == "succeeded", record["error"]
    assert record["result"]["kpis"] == result["kpis"]  # same seeds, same numbers, on the pool


def test_sandbox_compare_grid_and_ab_test_answer_inline(api: Api) -> None:
    """Head-to-head, grid and A/B test each return their result model for a small spec."""
    a, b = {"name": "a", "accuracy": 0.75}, {"name": "b", "accuracy": 0.9}
    compare = api.client.post(
        "/sandbox/compare", json={**SMALL, "baseline": a, "challenger": b}
    ).json()
    assert compare["kind"] == "compare" and compare["common_random_numbers"] is True
    grid = api.client.post(
        "/sandbox/grid",
        json={
            **SMALL,
            "models": [a, b],
            "scenarios": [
                {"name": "base"},
                {
                    "name": "surge",
                    "shocks": [{"kind": "surge", "start_day": 2, "end_day": 5, "magnitude": 2.0}],
                },
            ],
        },
    ).json()
    assert grid["kind"] == "grid" and len(grid["cells"]) == 4
    ab = api.client.post("/sandbox/ab-test", json={**SMALL, "variants": [a, b]}).json()
    assert ab["kind"] == "ab_test"


def test_sandbox_bad_input_names_the_field(api: Api) -> None:
    """Unknown stored id → 404; both environment forms, an accuracy above 1, too many
    replicates and weights that do not sum to 1 → 4xx naming the field."""
    missing = api.client.post("/sandbox/test", json={"environmentId": "env-none"})
    assert _error(missing, 404)["field"] == "environment"
    both = {"environment": "sales", "environmentId": "env-seed"}
    _error(api.client.post("/sandbox/test", json=both), 422, "environment_id")
    accuracy = {"model": {"accuracy": 1.5}}
    assert "accuracy" in _error(api.client.post("/sandbox/test", json=accuracy), 422)["field"]
    _error(api.client.post("/sandbox/test", json={"replicates": 10**6}), 413, "replicates")
    weights = {**SMALL, "variants": [{"name": "a"}, {"name": "b"}], "allocation": [0.5, 0.6]}
    _error(api.client.post("/sandbox/ab-test", json=weights), 422, "allocation")


def test_sandbox_background_run_uses_the_actor_pool(api: Api) -> None:
    """A compare run in the background runs on RayExecutor and equals the inline result."""
    body = {
        **SMALL,
        "baseline": {"name": "a", "accuracy": 0.7},
        "challenger": {"name": "b", "accuracy": 0.85},
    }
    accepted = api.client.post("/sandbox/compare", json=body, headers={"Prefer": "respond-async"})
    assert accepted.status_code == 202
    record = _poll(api, accepted.headers["location"], timeout_s=120)
    assert record["status"] == "succeeded", record
    assert record["result"]["execution"]["executor"] == "ray"
    inline = api.client.post("/sandbox/compare", json=body).json()
    assert record["result"]["differences"] == inline["differences"]


def test_http_refuses_predictors_outside_the_allowed_modules(api: Api) -> None:
    """A predictor is imported and called with the request's params: os:system would be remote
    code execution, so only allowed modules pass (the field is named)."""
    body = {
        **SMALL,
        "model": {
            "type": "predictor",
            "import_path": "os:system",
            "params": {"command": "touch /tmp/pwned"},
        },
    }
    error = _error(api.client.post("/sandbox/test", json=body), 422, "model.import_path")
    assert "not allowed over HTTP" in error["message"]
    assert not Path("/tmp/pwned").exists()


# --- simulation what-if --------------------------------------------------------------------------

SIM_WHAT_IF = {  # a few hundred customers over a few days: ~0.1 s of simulation
    "environment": "sales",
    "customers": 300,
    "changes": {"accuracy": "+10%"},
    "settings": {"days": 6, "replicates": 4, "seed": 3},
}


def test_simulated_what_if_answers_inline_with_paired_intervals(api: Api) -> None:
    """Accuracy +10 % in the twin: the model's accuracy moves 10 %, conversion does not fall."""
    response = api.client.post("/metrics/what-if/simulate", json=SIM_WHAT_IF)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["seed"] == 3 and result["settings"]["replicates"] == 4
    assert result["applied"][0]["parameter"] == "model.accuracy"
    kpis = {k["kpi"]: k for k in result["kpis"]}
    assert kpis["model_accuracy"]["relative_change"] == pytest.approx(0.1, abs=0.01)
    conversion = kpis["conversion_rate"]
    assert conversion["difference_low"] <= conversion["difference"] <= conversion["difference_high"]
    assert conversion["difference_high"] > 0, conversion


def test_simulated_what_if_refusals_name_the_field_or_the_limit(api: Api) -> None:
    """Unknown change → 422 on changes.<name>; too many customers or replicates → 413 naming
    the limit; no token → 401."""
    path = "/metrics/what-if/simulate"
    unknown = {**SIM_WHAT_IF, "changes": {"acuracy": 0.1}}
    error = _error(api.client.post(path, json=unknown), 422, "changes.acuracy")
    assert "unknown change 'acuracy'" in error["message"]
    _error(api.client.post(path, json={**SIM_WHAT_IF, "customers": 200_000}), 413, "customers")
    many = {**SIM_WHAT_IF, "settings": {"days": 6, "replicates": 10_000}}
    _error(api.client.post(path, json=many), 413, "customer_days")
    _error(api.anonymous.post(path, json=SIM_WHAT_IF), 401, "authorization")


def test_simulated_what_if_in_the_background_equals_the_inline_result(api: Api) -> None:
    """Prefer: respond-async → 202; the run (on the actor pool) ends with the inline numbers."""
    accepted = api.client.post(
        "/metrics/what-if/simulate", json=SIM_WHAT_IF, headers={"Prefer": "respond-async"}
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["operation"] == "what_if_sim"
    record = _poll(api, accepted.headers["location"], timeout_s=120)
    assert record["status"] == "succeeded", record["error"]
    inline = api.client.post("/metrics/what-if/simulate", json=SIM_WHAT_IF).json()
    assert record["result"] == inline


# --- failure analyzer ----------------------------------------------------------------------------

SEED_ANALYZE = {  # the seed's /analyze-failure body, with its testResult filled in
    "experimentId": "exp-123",
    "testResult": {
        "winner": "model-v2",
        "loser": "model-v3",
        "metrics": {
            "accuracy": {"winner": 0.92, "loser": 0.78, "percentChange": -15.2},
            "latency": {"winner": 100, "loser": 250, "percentChange": 150},
            "satisfaction": {"winner": 0.85, "loser": 0.72, "percentChange": -15.3},
        },
    },
}
SUMMARY_RESULT = {
    "experimentId": "exp-200",
    "variants": [
        {"name": "model-v2", "control": True, "plannedAllocation": 0.5},
        {"name": "model-v3", "plannedAllocation": 0.5},
    ],
    "businessParameters": {"trafficPerDay": 50000, "valuePerConversion": 40},
    "metrics": {
        "conversion": {
            "kind": "conversion",
            "role": "primary",
            "variants": {
                "model-v2": {"n": 10000, "successes": 1200},
                "model-v3": {"n": 10050, "successes": 1100},
            },
        },
        "latency_ms": {
            "variants": {
                "model-v2": {"n": 10000, "mean": 100.0, "std": 30.0},
                "model-v3": {"n": 10050, "mean": 131.0, "std": 35.0},
            }
        },
    },
}


def test_seed_analyze_failure_body_is_analysed_and_stored(api: Api) -> None:
    """The seed's {experimentId, testResult}: failure types found, the analysis kept.

    The POST is answered by the ingress replica (a bounded request), the GET by the Analyzer
    deployment: both see the same store."""
    analysis = api.client.post("/analyze-failure", json=SEED_ANALYZE).json()
    assert analysis["experiment_id"] == "exp-123" and analysis["input_form"] == "point"
    assert {f["type"] for f in analysis["failure_types"]} >= {"accuracy", "latency"}
    trigger = analysis.pop("improvement")  # AUTO_IMPROVE is off by default: none started
    assert trigger == {
        "started": False, "improvement_id": None, "created": False, "reason": "AUTO_IMPROVE is off"
    }  # fmt: skip
    stored = api.client.get("/analyses/exp-123").json()
    assert stored == analysis


def test_summary_form_decides_with_statistics_and_patterns_accumulate(api: Api) -> None:
    """Sufficient statistics give a significant decision; /patterns lists what was seen."""
    analysis = api.client.post("/analyze-failure", json={"testResult": SUMMARY_RESULT}).json()
    assert analysis["decision"]["status"] == "significant"
    assert analysis["decision"]["winner"] == "model-v2"
    patterns = api.client.get("/patterns").json()
    assert patterns["analyses"] >= 1 and patterns["patterns"]


def test_analyze_failure_bad_input_names_the_field(api: Api) -> None:
    """successes > n, a server file path and a missing id: each a 422 naming the field."""
    bad = json.loads(json.dumps(SUMMARY_RESULT))
    bad["metrics"]["conversion"]["variants"]["model-v3"]["successes"] = 20_000
    _error(
        api.client.post("/analyze-failure", json={"testResult": bad}),
        422,
        "testResult.metrics.conversion.variants.model-v3.successes",
    )
    path = {"testResult": {"experimentId": "e-1", "raw": {"path": "/etc/passwd"}}}
    _error(api.client.post("/analyze-failure", json=path), 422, "testResult.raw.path")
    _error(
        api.client.post("/analyze-failure", json={"testResult": {"winner": "a"}}),
        422,
        "experimentId",
    )
    assert _error(api.client.get("/analyses/exp-none"), 404)["field"] == "analysis"


ASYNC = {"Prefer": "respond-async"}
PLAN_SIZE = {"top": 1, "customers": 500, "days": 7, "replicates": 2}


def test_improvement_plan_ranks_the_stored_analysis_fixes(api: Api) -> None:
    """POST /improvements/plan on a significant stored loss: ranked actions, sandbox-measured."""
    api.client.post("/analyze-failure", json={"testResult": SUMMARY_RESULT}).raise_for_status()
    response = api.client.post("/improvements/plan", json={"analysisId": "exp-200", **PLAN_SIZE})
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["analysis_id"] == "exp-200" and plan["reason"] is None
    assert [a["rank"] for a in plan["actions"]] == list(range(1, len(plan["actions"]) + 1))
    assert plan["actions"][0]["uplift"]["source"] == "sandbox"
    body = {"analysisId": "exp-200", **PLAN_SIZE}
    accepted = api.client.post("/improvements/plan", json=body, headers=ASYNC)
    assert accepted.status_code == 202, accepted.text
    run = _poll(api, accepted.headers["location"])
    later = run["result"]
    assert [a["id"] for a in later["actions"]] == [a["id"] for a in plan["actions"]]


def test_improvement_plan_refusals_and_the_empty_plan(api: Api) -> None:
    """Unknown analysis → 404; a bad size → 422 naming it; no significant loss → empty plan."""
    missing = api.client.post("/improvements/plan", json={"analysisId": "exp-none"})
    assert _error(missing, 404)["field"] == "analysis"
    bad = api.client.post("/improvements/plan", json={"analysisId": "exp-123", "replicates": 1})
    _error(bad, 422, "replicates")
    api.client.post("/analyze-failure", json=SEED_ANALYZE).raise_for_status()
    empty = api.client.post("/improvements/plan", json={"analysisId": "exp-123"}).json()
    assert empty["actions"] == [] and "not significant" in empty["reason"]


def test_analyze_failure_takes_per_unit_rows(api: Api) -> None:
    """Raw rows with a segment column: a raw-form analysis, segments searched on that column."""
    rng = np.random.default_rng(4)
    n = 1600
    variant = np.where(np.arange(n) % 2 == 0, "A", "B")
    segment = np.where(rng.random(n) < 0.5, "mobile", "desktop")
    p = np.where((variant == "B") & (segment == "mobile"), 0.06, 0.15)
    rows = {
        "variant": variant.tolist(),
        "segment": segment.tolist(),
        "converted": (rng.random(n) < p).astype(int).tolist(),
    }
    body = {
        "experimentId": "exp-raw",
        "testResult": {"variants": [{"name": "A", "control": True}, {"name": "B"}]},
        "rows": rows,
    }
    analysis = api.client.post("/analyze-failure", json=body).json()
    assert analysis["input_form"] == "raw", analysis
    assert [f["type"] for f in analysis["failure_types"]] == ["conversion"]
    assert analysis["segments"][0]["dims"] == ["segment"]


# --- calibration -------------------------------------------------------------------------------


def test_calibrate_runs_in_the_background_and_stores_the_twin(api: Api) -> None:
    """202 at once; the run fits the twin on the pool and stores it as a calibrated environment."""
    from serve_apps.tables import table_to_columns
    from twinloop.replication.replicates import history_table
    from twinloop.sim.domains import environment
    from twinloop.sim.lifecycle import simulate
    from twinloop.sim.spec import SimulationSpec

    run = simulate(
        SimulationSpec(environment=environment("sales", initial_customers=2000), days=56, seed=3)
    )
    history = table_to_columns(history_table(run))
    settings = {
        "holdout_days": 14,
        "min_train_days": 28,
        "sensitivity_grid": [1.0, 3.0, 5.0],
        "fit_replicates": 1,
        "eval_replicates": 3,
        "fit_scale": 1.0,
        "name": "sales-http",
    }
    accepted = api.client.post(
        "/metrics/calibrate", json={"history": history, "settings": settings}
    )
    assert accepted.status_code == 202
    record = _poll(api, accepted.headers["location"], timeout_s=120)
    assert record["status"] == "succeeded", record["error"]["message"]
    assert record["result"]["environment_id"] == "sales-http"
    stored = api.client.get("/environments/sales-http").json()
    assert stored["source"] == "calibrated"


def test_calibrate_refuses_a_short_history_before_the_202(api: Api) -> None:
    """Too few days is refused with the field named before any run is created."""
    rows = _history(20)
    error = _error(api.client.post("/metrics/calibrate", json={"history": rows}), 422, "history")
    assert "at least" in error["message"]


# --- environments ------------------------------------------------------------------------------


def test_environments_list_presets_and_get_one(api: Api) -> None:
    """The catalogue has the four presets; one of them comes back in full."""
    listed = api.client.get("/environments").json()["environments"]
    assert {e["id"] for e in listed if e["source"] == "preset"} == {
        "sales",
        "marketing",
        "customer_success",
        "analytics",
    }
    sales = api.client.get("/environments/sales").json()
    assert sales["environment"]["domain"] == "sales"


def test_environment_post_stores_and_get_returns_it(api: Api) -> None:
    """A preset with changes is stored under its id, then listed and fetched."""
    body = {"id": "env-456", "preset": "sales", "changes": {"initial_customers": 2000}}
    created = api.client.post("/environments", json=body)
    assert created.status_code == 201 and created.headers["location"] == "/environments/env-456"
    fetched = api.client.get("/environments/env-456").json()
    assert fetched["source"] == "stored" and fetched["environment"]["initial_customers"] == 2000
    again = api.client.post("/environments", json=body)
    assert _error(again, 409)["code"] == "conflict"


def test_environment_post_errors_name_the_field(api: Api) -> None:
    """Both sources, a bad change, a reserved id and too many customers: each names its field."""
    both = {"preset": "sales", "environment": {}}
    assert api.client.post("/environments", json=both).status_code == 422
    bad = {"preset": "sales", "changes": {"initial_customers": -5}}
    _error(api.client.post("/environments", json=bad), 422, "changes.initial_customers")
    reserved = {"id": "sales", "preset": "sales"}
    _error(api.client.post("/environments", json=reserved), 422, "id")
    big = {"preset": "sales", "changes": {"initial_customers": 10**9}}
    _error(api.client.post("/environments", json=big), 413, "changes.initial_customers")


def test_unknown_environment_is_404_and_a_bad_id_is_422(api: Api) -> None:
    """404 names the kind; an id with a slash-free but illegal shape is 422 on the path."""
    assert _error(api.client.get("/environments/env-missing"), 404)["field"] == "environment"
    _error(api.client.get("/environments/-bad"), 422, "environment_id")


# --- auth, limits, deadlines -------------------------------------------------------------------


def test_mutating_routes_need_the_token(api: Api) -> None:
    """No token or a wrong one: 401 with WWW-Authenticate; reads stay open."""
    missing = api.anonymous.post("/metrics/what-if", json=SEED_WHAT_IF)
    assert _error(missing, 401, "authorization") and missing.headers["www-authenticate"] == "Bearer"
    wrong = api.anonymous.post(
        "/environments", json={"preset": "sales"}, headers={"Authorization": "Bearer nope"}
    )
    _error(wrong, 401, "authorization")
    assert api.anonymous.get("/environments/sales").status_code == 200


def test_body_over_the_size_limit_is_413(api: Api) -> None:
    """A body above max_body_bytes is refused from its Content-Length."""
    big = b'{"source": {"x": [' + b"1," * MAX_BODY + b'1]}, "rows": 1}'
    response = api.client.post(
        "/synthetic", content=big, headers={"content-type": "application/json"}
    )
    assert _error(response, 413, "body")["limit"] == MAX_BODY


def test_client_timeout_header_is_capped_never_disabled(api: Api) -> None:
    """x-request-timeout-seconds can shorten the deadline, not lengthen or disable it."""

    def deadline(value: str) -> str:
        response = api.client.get("/healthz", headers={"x-request-timeout-seconds": value})
        return response.headers["x-twinloop-deadline-seconds"]

    assert deadline("5") == "5"
    assert deadline("100000") == "30"  # max_timeout_s
    assert deadline("0") == "20"  # default, not "no timeout"
    assert deadline("nan") == "20"


def test_a_request_past_its_deadline_is_cut_off(api: Api) -> None:
    """A client deadline of 0.05 s on a ~1 s simulation ends the request at once: 504
    from the ingress (which cancels the capability call), or 408 if Serve's proxy, which reads
    the same header, got there first."""
    body = {"environment": "sales", "customers": 25_000, "days": 30, "replicates": 3}
    started = time.monotonic()
    response = api.client.post(
        "/sandbox/test", json=body, headers={"x-request-timeout-seconds": "0.05"}
    )
    assert response.status_code in (504, 408), response.text
    if response.status_code == 504:
        assert "respond-async" in _error(response, 504)["message"]
    assert time.monotonic() - started < 20  # the run itself takes seconds; the answer did not


# --- background runs ---------------------------------------------------------------------------


def _poll(api: Api, location: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record: dict[str, Any] = api.client.get(location).json()
        if record["status"] in ("succeeded", "failed"):
            return record
        time.sleep(0.2)
    raise AssertionError(f"{location} did not finish in {timeout_s} s")


def test_background_run_goes_from_202_to_the_inline_result(api: Api) -> None:
    """Prefer: respond-async gives 202 + Location; the stored result equals the inline one
    (the run executes on the Metrics deployment, the inline answer comes from the ingress)."""
    accepted = api.client.post(
        "/metrics/what-if", json=SEED_WHAT_IF, headers={"Prefer": "respond-async"}
    )
    assert accepted.status_code == 202
    assert accepted.headers["location"] == accepted.json()["location"]
    record = _poll(api, accepted.headers["location"])
    assert record["status"] == "succeeded" and record["progress"] == 1.0
    assert record["result"] == api.client.post("/metrics/what-if", json=SEED_WHAT_IF).json()


def test_background_run_failure_keeps_the_field(api: Api) -> None:
    """A run whose input is wrong ends failed with the same code and field as inline."""
    body = {"baseMetrics": {"accuracy": 0.8}, "changes": {"accuracy": -3}}
    accepted = api.client.post("/metrics/what-if", json=body, headers={"Prefer": "respond-async"})
    record = _poll(api, accepted.headers["location"])
    assert record["status"] == "failed"
    assert record["error"]["field"] == "changes.accuracy"


def test_orphaned_run_is_rerun_when_polled(api: Api) -> None:
    """A run whose replica died (stale lease in the Store) is re-dispatched and completes."""
    store = SqliteStore(api.data_dir / "twinloop.sqlite3")
    book = RunBook(store)
    record = book.create(
        "what_if", {"base_metrics": SEED_WHAT_IF["baseMetrics"], "changes": SEED_WHAT_IF["changes"]}
    )
    dead = record.model_copy(
        update={
            "status": "running",
            "owner": "metrics-dead-replica",
            "attempts": 1,
            "lease_until": time.time() - LEASE_S,
        }
    )
    store.put_model(RUN_KIND, record.id, dead)
    done = RunRecord.model_validate(_poll(api, f"/runs/{record.id}"))
    assert done.status == "succeeded" and done.attempts == 2
    assert done.result is not None and done.result["changes"] == {"accuracy": 0.1, "latency": -0.2}
    store.close()


def test_unknown_run_is_404_and_runs_are_listed(api: Api) -> None:
    """GET /runs/{id} of nothing is 404; GET /runs lists finished runs."""
    assert _error(api.client.get("/runs/run-doesnotexist"), 404)["field"] == "run"
    listed = api.client.get("/runs", params={"status": "succeeded"}).json()
    assert listed and all(r["status"] == "succeeded" for r in listed)


# --- load, fuzzing, metrics --------------------------------------------------------------------


def test_200_requests_from_16_concurrent_clients_have_no_errors(api: Api) -> None:
    """Reads, what-ifs and analyses mixed over 16 clients: every answer is 2xx."""

    def one(i: int) -> int:
        if i % 4 == 0:
            return api.client.get("/environments/marketing").status_code
        if i % 4 == 1:
            return api.client.get("/healthz").status_code
        if i % 4 == 2:
            body = {"testResult": {**SUMMARY_RESULT, "experimentId": f"exp-load-{i}"}}
            return api.client.post("/analyze-failure", json=body).status_code
        return api.client.post("/metrics/what-if", json=SEED_WHAT_IF).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one, range(200)))
    assert [s for s in statuses if s >= 300] == []


def _post_routes(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    routes = []
    for path, item in spec["paths"].items():
        post = item.get("post")
        if post and "requestBody" in post:
            schema = post["requestBody"]["content"]["application/json"]["schema"]
            routes.append((path, schema))
    return sorted(routes)


def test_fuzzed_bodies_from_the_openapi_schema_never_get_a_5xx(api: Api) -> None:
    """~100 bodies drawn from /openapi.json, spread over every POST route: no answer is 5xx."""
    spec = api.client.get("/openapi.json").json()
    routes = _post_routes(spec)
    assert len(routes) >= 4
    components = spec["components"]["schemas"]
    a, b = {"name": "a", "accuracy": 0.75}, {"name": "b", "accuracy": 0.9}
    known = {
        "/metrics/what-if": SEED_WHAT_IF,
        "/metrics/what-if/simulate": SIM_WHAT_IF,
        "/metrics/what-if/counterfactual": {**COUNTERFACTUAL, "history": _units(40)},
        "/metrics/anomalies": {"series": _series(80, 60)},
        "/sandbox/test": {**SMALL, "model": a},
        "/sandbox/compare": {**SMALL, "baseline": a, "challenger": b},
        "/sandbox/grid": {**SMALL, "models": [a, b]},
        "/sandbox/ab-test": {**SMALL, "variants": [a, b]},
        "/metrics/correlations": {"history": _history(30), "settings": {"max_lag": 3}},
        "/synthetic": {
            "source": {"x": [1.0, 2.5, 3.0, 4.5], "s": ["a", "b", "a", "b"]},
            "rows": 20,
            "edgeCases": ["missing:0.1"],
        },
        "/environments": {"preset": "analytics", "changes": {"initial_customers": 500}},
        "/analyze-failure": {"testResult": SUMMARY_RESULT},
        "/improvements": {"experimentId": "exp-123"},
        "/preflight": {
            "experimentId": "exp-fuzz",
            "headToHead": {**SMALL, "baseline": a, "challenger": b},
        },
    }
    strategies = {
        path: st.one_of(body_strategy(schema, components), near(known[path]))
        if path in known
        else body_strategy(schema, components)
        for path, schema in routes
    }
    seen: list[tuple[str, int]] = []

    def fuzz(path: str) -> None:
        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategies[path])
        def check(body: Any) -> None:
            response = api.client.post(path, json=body, headers={"x-request-timeout-seconds": "20"})
            seen.append((path, response.status_code))
            assert response.status_code < 500, (path, body, response.text)

        check()

    for path in sorted(strategies):
        fuzz(path)
    assert {p for p, _ in seen} == set(strategies)
    assert any(s < 300 for _, s in seen), "no fuzzed body was valid: the strategy is too wild"


def _scrape(ray_session: Any) -> str:
    texts = []
    for node in ray_session.nodes():
        if not node.get("Alive"):
            continue
        for host in ("127.0.0.1", node["NodeManagerAddress"]):
            try:
                texts.append(
                    httpx.get(f"http://{host}:{node['MetricsExportPort']}/metrics", timeout=5).text
                )
                break
            except httpx.HTTPError:
                continue
    return "\n".join(texts)


def _sample_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_are_exported_to_the_ray_metrics_endpoint(api: Api, ray_session: Any) -> None:
    """Requests by route and status, latency and runs reach the node's Prometheus export."""
    for _ in range(3):
        api.client.post("/metrics/what-if", json=SEED_WHAT_IF)
    api.anonymous.post("/metrics/what-if", json=SEED_WHAT_IF)  # a 401
    requests_name = exported_name("requests")
    latency_name = exported_name("latency") + "_count"
    runs_name = exported_name("runs")
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        text = _scrape(ray_session)
        if (
            _sample_sum(text, requests_name, route="/metrics/what-if", status="200") >= 3
            and _sample_sum(text, requests_name, route="/metrics/what-if", status="401") >= 1
            and _sample_sum(text, runs_name, operation="what_if", status="succeeded") >= 1
        ):
            break
        time.sleep(2)
    assert _sample_sum(text, requests_name, route="/metrics/what-if", status="200") >= 3
    assert _sample_sum(text, requests_name, route="/metrics/what-if", status="401") >= 1
    assert _sample_sum(text, latency_name, route="/metrics/what-if") >= 3
    assert _sample_sum(text, runs_name, operation="what_if", status="succeeded") >= 1
    assert re.search(r"ray_twinloop_runs_in_flight\{", text)
    assert _sample_sum(text, exported_name("analyses")) >= 1
    assert _sample_sum(text, exported_name("replicates"), operation="sandbox_test") >= 10
    assert _sample_sum(text, exported_name("customer_days_per_s"), operation="sandbox_test") > 0
