"""The error contract at the HTTP edge, without Ray: unreadable bodies, media types, NaN, the
statuses the OpenAPI document declares, and validation before a 202.

The capabilities run in-process behind ``LocalClient`` (as in test_serve_edge.py) on a SQLite
store in a temporary folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serve_apps.capabilities.analyzer import AnalyzerService
from serve_apps.capabilities.metrics import MetricsService
from serve_apps.capabilities.twin import TwinService
from serve_apps.clients import LocalClient
from serve_apps.config import app_config
from serve_apps.ingress import Edge, create_api
from serve_apps.runs import RunBook
from twinloop.store import SqliteStore

WHAT_IF = b'{"baseMetrics": {"accuracy": 0.8, "revenue": 100.0}, "changes": {"accuracy": 0.1}}'
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    folder = tmp_path_factory.mktemp("contract")
    config = app_config({"settings": {"data_dir": str(folder)}})
    store = SqliteStore(folder / "twinloop.sqlite3")
    services = {"twin": TwinService, "metrics": MetricsService, "analyzer": AnalyzerService}
    edge = Edge(
        config=config,
        runs=RunBook(store),
        capabilities={name: LocalClient(cls(config, store)) for name, cls in services.items()},
    )
    return TestClient(create_api(edge))


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) <= {"code", "field", "message", "limit", "value", "request_id", "errors"}
    return body


def test_a_body_that_is_not_utf8_is_a_400_without_field(client: TestClient) -> None:
    body = _error(client.post("/metrics/what-if", content=b'{"a": "\xff\xfe"}', headers=JSON), 400)
    assert body["code"] == "malformed_body" and "field" not in body
    assert "not UTF-8" in body["message"]


def test_a_body_nested_10000_levels_is_a_400_without_field(client: TestClient) -> None:
    for deep in (b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        body = _error(client.post("/metrics/what-if", content=deep, headers=JSON), 400)
        assert body["code"] == "malformed_body" and "field" not in body
        assert "nests too deeply" in body["message"]


@pytest.mark.parametrize(
    ("headers", "named"),
    [({}, "no Content-Type"), ({"content-type": "text/plain"}, "'text/plain'")],
)
def test_a_body_not_sent_as_json_is_a_415_that_says_so(
    client: TestClient, headers: dict[str, str], named: str
) -> None:
    body = _error(client.post("/metrics/what-if", content=WHAT_IF, headers=headers), 415)
    assert body["code"] == "unsupported_media_type" and named in body["message"]
    assert "application/json" in body["message"]
    assert client.post("/metrics/what-if", content=WHAT_IF, headers=JSON).status_code == 200


def test_nan_is_reported_as_not_finite_at_its_request_path(client: TestClient) -> None:
    sandbox = b'{"customers": 200, "days": NaN}'
    body = _error(client.post("/sandbox/test", content=sandbox, headers=JSON), 422)
    assert body["field"] == "days" and "NaN is not a finite number" in body["message"]
    nested = WHAT_IF.replace(b"0.8", b"Infinity")
    body = _error(client.post("/metrics/what-if", content=nested, headers=JSON), 422)
    assert body["field"] == "baseMetrics.accuracy" and "not a finite number" in body["message"]
    overflow = b'{"customers": 200, "days": 1e999}'
    body = _error(client.post("/sandbox/test", content=overflow, headers=JSON), 422)
    assert body["field"] == "days" and "inf is not a finite number" in body["message"]


def test_every_status_a_route_answers_is_declared(client: TestClient) -> None:
    """Every route declares what every route can answer; bodies add 400/415, writes 401, and
    POST /environments its 409; deep health's 503 carries the health body."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, methods in paths.items():
        for method, spec in methods.items():
            declared = {int(s) for s in spec["responses"]}
            assert {404, 413, 422, 500, 503, 504} <= declared, (method, path)
            if "requestBody" in spec:
                assert {400, 401, 415} <= declared, (method, path)
    assert "409" in paths["/environments"]["post"]["responses"]
    degraded = paths["/healthz"]["get"]["responses"]["503"]["content"]["application/json"]
    assert degraded["schema"]["$ref"].endswith("/Health")


def test_a_compare_overriding_an_unknown_segment_is_refused_before_the_202(
    client: TestClient,
) -> None:
    body = {
        "customers": 200,
        "days": 5,
        "replicates": 2,
        "baseline": {"name": "a", "accuracy": 0.7},
        "challenger": {"name": "b", "segment_overrides": {"vip": {"accuracy": 0.9}}},
    }
    for headers in ({"Prefer": "respond-async"}, {}):
        error = _error(client.post("/sandbox/compare", json=body, headers=headers), 422)
        assert error["field"] == "challenger.segment_overrides.vip", error
        assert "unknown segment 'vip'" in error["message"] and "enterprise" in error["message"]


def test_a_calibration_without_history_is_refused_before_the_202(client: TestClient) -> None:
    error = _error(client.post("/metrics/calibrate", json={"history": []}), 422)
    assert error["field"].startswith("history"), error
    assert client.get("/runs").json() == []  # no run was created


@pytest.mark.parametrize(
    ("metric", "side", "value"),
    [("accuracy", "winner", 7.5), ("satisfaction", "loser", -0.1), ("conversion", "winner", 1e308)],
)
def test_the_analyzer_refuses_rates_outside_0_1_naming_the_request_path(
    client: TestClient, metric: str, side: str, value: float
) -> None:
    other = "loser" if side == "winner" else "winner"
    result = {
        "winner": "model-v2",
        "loser": "model-v3",
        "metrics": {metric: {side: value, other: 0.5}},
    }
    body = {"experimentId": "exp-rates", "testResult": result, "store": False}
    error = _error(client.post("/analyze-failure", json=body), 422)
    assert error["field"] == f"testResult.metrics.{metric}.{side}", error
    assert "between 0 and 1" in error["message"]


def test_deep_health_reports_a_store_that_lost_its_marker(tmp_path: Path) -> None:
    """The marker written at start-up is read back; a store that came back empty is 'empty'."""
    from serve_apps import store_health

    store = SqliteStore(tmp_path / "marker.sqlite3")
    assert store_health.check(store) == store_health.EMPTY
    store_health.mark(store)
    store_health.mark(store)  # a second replica finds it there
    assert store_health.check(store) == "ok"
    store.delete(store_health.MARKER_KIND, store_health.MARKER_ID)
    assert store_health.check(store).startswith("empty: the marker written at start-up is gone")


def test_a_bad_path_or_query_parameter_is_named_as_itself(client: TestClient) -> None:
    assert _error(client.get("/environments/-bad"), 422)["field"] == "environment_id"
    assert _error(client.get("/runs", params={"limit": 0}), 422)["field"] == "limit"
