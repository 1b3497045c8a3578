"""The improvement loop over real Serve HTTP: AUTO_IMPROVE triggers, start, follow, cancel, KPIs.

A trigger drives the quick stages inline and hands the rest to a background run on the run
queue: the tests poll ``GET /improvements/{id}`` as a user does, to a decision (a planted family
retrained, championed and canaried to ``promoted``), a stall, or a cancel mid-stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from shared_serve import deployed

pytestmark = [pytest.mark.serve, pytest.mark.ray]

TOKEN = "loop-token-51c2"
WAIT_S = 600.0  # a generous bound for a loaded 2-core machine; never a timing assert


def poll(
    client: httpx.Client, path: str, done: Callable[[dict[str, Any]], bool], every: float = 0.2
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """GET ``path`` until ``done``; the last answer and every answer seen."""
    seen: list[dict[str, Any]] = []
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        body = dict(client.get(path).json())
        seen.append(body)
        if done(body):
            return body, seen
        time.sleep(every)
    raise AssertionError(f"{path} never got there: {seen[-1] if seen else None}")


def settled(improvement: dict[str, Any]) -> bool:
    """No driver is working on it: decided, cancelled or stalled."""
    return improvement["status"] in ("done", "cancelled", "stalled")


def ended(run: dict[str, Any]) -> bool:
    return run["status"] in ("succeeded", "failed")


def registry_of(data_dir: Path) -> tuple[Any, Any]:
    """The app's own Store (the embedded one in its data dir) and a registry on it."""
    from twinloop.config import load_settings
    from twinloop.registry.registry import Registry
    from twinloop.store import SqliteStore

    store = SqliteStore(data_dir / "twinloop.sqlite3")
    return store, Registry(store, settings=load_settings(data_dir=data_dir))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loop-data")


@pytest.fixture(scope="module")
def client(serve_port: int, data_dir: Path) -> Iterator[httpx.Client]:
    """A Serve app with AUTO_IMPROVE on and FAILURE_THRESHOLD 30%."""
    from serve_apps.app import APP_NAME, build_app

    settings = {
        "data_dir": str(data_dir),
        "api_token": TOKEN,
        "auto_improve": True,
        "failure_threshold": 0.3,
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        deployed(build_app({"settings": settings}), APP_NAME),
        httpx.Client(
            base_url=f"http://127.0.0.1:{serve_port}", headers=headers, timeout=60
        ) as http,
    ):
        yield http


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


def test_a_large_loss_starts_one_improvement_that_runs_on_until_the_missing_piece(
    client: httpx.Client,
) -> None:
    """A significant 50% loss: analysed and planned inline, then driven in the background
    until it stalls where the plan's action has no piece (no family, no agent wired)."""
    body = significant("exp-big")
    first = client.post("/analyze-failure", json=body).json()["improvement"]
    assert (first["started"], first["created"], first["improvement_id"]) == (
        True, True, "imp-exp-big"
    )  # fmt: skip
    again = client.post("/analyze-failure", json=body).json()["improvement"]
    assert (again["started"], again["created"]) == (True, False)
    improvement, _ = poll(client, "/improvements/imp-exp-big", settled)
    assert (improvement["stage"], improvement["status"]) == ("planned", "stalled"), improvement
    records = {r["stage"]: r for r in improvement["records"]}
    assert records["candidates"]["status"] == "unavailable", records
    assert records["candidates"]["attempts"] == 1  # one driver, though triggered twice
    run, _ = poll(client, "/runs/drive-imp-exp-big", ended)
    assert (run["operation"], run["status"], run["attempts"]) == (
        "drive_improvement", "succeeded", 1
    )  # fmt: skip
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
    assert started["stage"] == "planned" and started["status"] != "done", started
    cancelled = client.post("/improvements/imp-exp-hand/cancel").json()
    assert (cancelled["stage"], cancelled["status"]) == ("cancelled", "cancelled")
    assert client.get("/improvements/imp-exp-hand").json()["status"] == "cancelled"


def test_post_improvements_runs_the_whole_loop_to_a_decision(
    client: httpx.Client, data_dir: Path
) -> None:
    """Four concurrent POST /improvements for a planted family: one improvement, one driver;
    GET shows the stages advancing in the background to ``promoted``, the alias moved once."""
    from tests.loop_family import plant

    store, registry = registry_of(data_dir)
    plant(store, registry, "scoring-http", "lost-http")
    body = {"experimentId": "lost-http", "family": "scoring-http", "seed": 2}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.post("/improvements", json=body), range(4)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert {a.json()["id"] for a in answers} == {"imp-lost-http"}
    final, seen = poll(client, "/improvements/imp-lost-http", settled)
    assert (final["stage"], final["status"]) == ("promoted", "done"), final["reason"]
    stages_seen = [b["stage"] for b in seen]
    assert stages_seen.index("planned") < stages_seen.index("promoted")
    assert {r["stage"]: (r["status"], r["attempts"]) for r in final["records"]} == {
        stage: ("done", 1)
        for stage in ("analyzed", "planned", "candidates", "championship", "canary")
    }
    run, _ = poll(client, "/runs/drive-imp-lost-http", ended)
    assert (run["status"], run["attempts"], run["result"]["stage"]) == ("succeeded", 1, "promoted")
    assert [s.version for s in registry.alias_history("scoring-http", "champion")] == ["v1", "v2"]
    kpis = client.get("/kpis").json()
    assert kpis["decided"] >= 1 and kpis["promoted"] >= 1


def test_cancel_mid_stage_stops_the_background_driver(client: httpx.Client, data_dir: Path) -> None:
    """Cancelled while the candidates stage retrains: cancelled, the driver ends without a
    candidates output, no alias moved."""
    from tests.loop_family import plant

    store, registry = registry_of(data_dir)
    plant(store, registry, "scoring-cancel", "lost-cancel")
    body = {"experimentId": "lost-cancel", "family": "scoring-cancel", "seed": 2}
    assert client.post("/improvements", json=body).status_code == 201

    def retraining(improvement: dict[str, Any]) -> bool:
        running = [r["stage"] for r in improvement["records"] if r["status"] == "running"]
        return running == ["candidates"] or settled(improvement)

    during, _ = poll(client, "/improvements/imp-lost-cancel", retraining, every=0.05)
    assert during["status"] == "running", during
    cancelled = client.post("/improvements/imp-lost-cancel/cancel").json()
    assert (cancelled["stage"], cancelled["status"]) == ("cancelled", "cancelled")
    run, _ = poll(client, "/runs/drive-imp-lost-cancel", ended)
    assert run["status"] == "succeeded", run
    assert run["result"]["status"] == "cancelled"
    final = client.get("/improvements/imp-lost-cancel").json()
    assert (final["stage"], final["status"]) == ("cancelled", "cancelled")
    assert store.find("improvement_stages", "imp-lost-cancel.candidates") is None
    assert [s.version for s in registry.alias_history("scoring-cancel", "champion")] == ["v1"]
    assert registry.alias("scoring-cancel", "challenger").version is None


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
    """GET /kpis counts the improvements and analyses; the rate is promoted / decided (the
    cancelled improvements are not decisions)."""
    kpis = client.get("/kpis").json()
    assert kpis["improvements"] >= 1 and kpis["analyses"] >= 1
    assert kpis["by_stage"].get("cancelled", 0) >= 1
    assert kpis["decided"] == kpis["by_stage"].get("promoted", 0) + kpis["by_stage"].get(
        "rolled_back", 0
    ) + kpis["by_stage"].get("abandoned", 0)
    assert kpis["improvement_rate"] == pytest.approx(kpis["promoted"] / kpis["decided"])
    assert 0.0 <= kpis["pattern_detection_rate"] <= 1.0
