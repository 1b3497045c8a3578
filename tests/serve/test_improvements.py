"""The improvement loop over real Serve HTTP: AUTO_IMPROVE triggers, start, follow, cancel, KPIs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.serve, pytest.mark.ray]

TOKEN = "loop-token-51c2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def client(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A Serve app with AUTO_IMPROVE on and FAILURE_THRESHOLD 30%."""
    from ray import serve

    from serve_apps.app import APP_NAME, build_app

    port = _free_port()
    settings = {
        "data_dir": str(tmp_path_factory.mktemp("loop-data")),
        "api_token": TOKEN,
        "auto_improve": True,
        "failure_threshold": 0.3,
    }
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app({"settings": settings}), name=APP_NAME, route_prefix="/")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
        yield http
    serve.shutdown()


def analyse(client: httpx.Client, experiment: str, loser_accuracy: float) -> dict[str, Any]:
    body = {
        "experimentId": experiment,
        "testResult": {
            "winner": "model-v2",
            "loser": "model-v3",
            "metrics": {"accuracy": {"winner": 0.9, "loser": loser_accuracy}},
        },
    }
    response = client.post("/analyze-failure", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def significant(experiment: str) -> dict[str, Any]:
    """A significant 50% conversion loss with a latency chain: the strategy plans for it."""
    return {"testResult": {
        "experimentId": experiment,
        "variants": [{"name": "A", "control": True}, {"name": "B"}],
        "metrics": {
            "conversion": {"variants": {"A": {"n": 5_000, "successes": 1_000},
                                        "B": {"n": 5_000, "successes": 500}}},
            "latency_ms": {"variants": {"A": {"n": 5_000, "mean": 100.0, "std": 30.0},
                                        "B": {"n": 5_000, "mean": 131.0, "std": 35.0}}},
        },
    }}  # fmt: skip


def test_a_loss_below_the_threshold_starts_nothing_and_says_why(client: httpx.Client) -> None:
    """A 10% loss against a 30% threshold: no improvement, the reason in the response."""
    analysis = analyse(client, "exp-small", 0.81)
    assert analysis["decision"]["loser"] == "model-v3"  # the analysis itself is unchanged
    trigger = analysis["improvement"]
    assert trigger["started"] is False
    assert trigger["reason"] == "loss 10.0% does not exceed FAILURE_THRESHOLD 30.0%"
    assert client.get("/improvements/imp-exp-small").status_code == 404


def test_a_large_loss_starts_one_improvement_that_stalls_on_the_missing_piece(
    client: httpx.Client,
) -> None:
    """A significant 50% loss: analysed and planned inline; the job takes it from there."""
    body = significant("exp-big")
    first = client.post("/analyze-failure", json=body).json()["improvement"]
    assert (first["started"], first["created"], first["improvement_id"]) == (
        True, True, "imp-exp-big"
    )  # fmt: skip
    again = client.post("/analyze-failure", json=body).json()["improvement"]
    assert (again["started"], again["created"]) == (True, False)
    improvement = client.get("/improvements/imp-exp-big").json()
    assert (improvement["stage"], improvement["status"]) == ("planned", "waiting"), improvement
    assert "candidates runs in the improvement job" in improvement["reason"]
    assert [r["stage"] for r in improvement["records"]] == ["analyzed", "planned"]
    assert client.get("/analyses/exp-big").json()["experiment_id"] == "exp-big"


def test_start_by_hand_then_cancel(client: httpx.Client) -> None:
    """POST /improvements: 201 with Location (the existing one); cancel → cancelled, stays so."""
    trigger = client.post("/analyze-failure", json=significant("exp-hand")).json()["improvement"]
    response = client.post("/improvements", json={"experimentId": "exp-hand", "seed": 5})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/improvements/imp-exp-hand"
    started = response.json()  # the one the analysis started: one improvement per experiment
    assert (started["id"], started["spec"]["trigger"]) == (
        trigger["improvement_id"],
        "analyze_failure",
    )
    assert (started["stage"], started["status"]) == ("planned", "waiting")
    cancelled = client.post("/improvements/imp-exp-hand/cancel").json()
    assert (cancelled["stage"], cancelled["status"]) == ("cancelled", "cancelled")
    assert client.get("/improvements/imp-exp-hand").json()["status"] == "cancelled"


def test_bad_specs_name_the_field_and_store_nothing(client: httpx.Client) -> None:
    """A negative seed, an experiment never analysed, no token: 422/422/401, nothing stored."""
    bad_seed = client.post("/improvements", json={"experimentId": "exp-x", "seed": -1})
    assert bad_seed.status_code == 422 and bad_seed.json()["field"] == "seed", bad_seed.text
    unknown = client.post("/improvements", json={"experimentId": "never-analysed"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "experimentId"
    assert client.get("/improvements/imp-never-analysed").status_code == 404
    anonymous = httpx.post(f"{client.base_url}/improvements", json={"experimentId": "exp-big"})
    assert anonymous.status_code == 401


def test_a_preflight_is_kept_and_scored_by_the_real_result(client: httpx.Client) -> None:
    """POST /preflight predicts the challenger in the twin; its A/B analysis scores it."""
    body = {
        "experimentId": "exp-pre",
        "kpi": "revenue",
        "unitsPerArm": 2000,
        "headToHead": {
            "baseline": {"name": "champ", "accuracy": 0.8},
            "challenger": {"name": "chal", "accuracy": 0.86},
            "customers": 300, "days": 10, "replicates": 6, "seed": 3,
        },
    }  # fmt: skip
    response = client.post("/preflight", json=body)
    assert response.status_code == 200, response.text
    prediction = response.json()
    assert prediction["predicted_effect"] > 0 and 0 <= prediction["power"] <= 1
    bad = client.post("/preflight", json={**body, "unitsPerArm": 1})
    assert bad.status_code == 422 and bad.json()["field"] == "unitsPerArm", bad.text
    real = {"experimentId": "exp-pre", "testResult": {
        "winner": "chal", "loser": "champ", "metrics": {"revenue": {"winner": 105, "loser": 100}},
    }}  # fmt: skip
    assert client.post("/analyze-failure", json=real).status_code == 200
    scores = client.get("/kpis").json()["preflight"]
    assert (scores["predictions"], scores["scored"]) == (1, 1)
    assert scores["brier"] == pytest.approx(prediction["p_lose"] ** 2)


def test_kpis_come_from_the_store(client: httpx.Client) -> None:
    """GET /kpis counts the improvements and analyses; nothing decided yet, so no rate."""
    kpis = client.get("/kpis").json()
    assert kpis["improvements"] >= 1 and kpis["analyses"] >= 1
    assert kpis["decided"] == 0 and kpis["improvement_rate"] is None
    assert 0.0 <= kpis["pattern_detection_rate"] <= 1.0
