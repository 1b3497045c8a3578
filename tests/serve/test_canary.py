"""Canary deployment through a real Serve over real HTTP: assignment, rollback under load,
outcomes that survive a killed replica, the monitor's automatic rollback, bad input.

One Serve instance for the module: the ingress with only the canary capability (the other
capabilities are not needed here) and the family's own application, which the first
``PUT /models/lead/canary`` deploys.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from shared_serve import deployed
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from twinloop.canary.assignment import CanaryConfig
from twinloop.canary.decision import DecisionSettings, decide
from twinloop.canary.outcomes import CanaryStats, OutcomeEvent, merge_batch
from twinloop.canary.traffic import traffic_batches
from twinloop.config import load_settings
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import sample_customers
from twinloop.sim.models import OnnxModel
from twinloop.sim.onnxmodel import OnnxPredictor, sha256_hex
from twinloop.store import SqliteStore

pytestmark = [pytest.mark.serve, pytest.mark.ray]

FAMILY = "lead"
CONCURRENCY = 16


@dataclass
class Canary:
    client: httpx.Client
    registry: Registry
    models: dict[str, bytes]  # version → ONNX bytes
    width: int


def _onnx_models() -> tuple[bytes, bytes]:
    """A fitted logistic model and the same model inverted (truly worse), as ONNX."""
    env = environment("sales")
    x, y, _ = sample_customers(env, 4_000, np.random.default_rng(1))
    good = LogisticRegression(max_iter=500).fit(x, y)
    bad = LogisticRegression(max_iter=500).fit(x, y)
    bad.coef_, bad.intercept_ = -good.coef_, -good.intercept_
    options = {"zipmap": False}

    def export(model: LogisticRegression) -> bytes:
        onnx = to_onnx(model, x[:1].astype(np.float32), options={id(model): options})
        return onnx.SerializeToString()  # type: ignore[no-any-return]

    return export(good), export(bad)


@pytest.fixture(scope="module")
def canary(serve_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Canary]:
    from serve_apps.app import Canary as CanaryDeployment
    from serve_apps.app import Ingress
    from serve_apps.config import app_config

    data_dir = tmp_path_factory.mktemp("canary-data")
    settings = load_settings(data_dir=data_dir)
    registry = Registry(SqliteStore(data_dir / "twinloop.sqlite3"), settings=settings)
    registry.create_family(
        ModelFamily(name=FAMILY, environment="sales", primary_kpi="conversions", guardrails={})
    )
    good, bad = _onnx_models()
    for content in (good, bad):
        registry.register(FAMILY, OnnxModel(sha256=sha256_hex(content), content=content))
    registry.move_alias(FAMILY, "champion", "v1")
    config = app_config({"settings": {"data_dir": str(data_dir)}})
    ingress: Any = Ingress
    app = ingress.bind(config, canary=CanaryDeployment.bind(config))  # type: ignore[attr-defined]
    env = environment("sales")
    with (
        deployed(app, "twinloop"),
        httpx.Client(base_url=f"http://127.0.0.1:{serve_port}", timeout=60) as client,
    ):
        yield Canary(client, registry, {"v1": good, "v2": bad}, env.n_features + len(env.segments))


def _rows(width: int, n: int = 2, seed: int = 0) -> list[list[float]]:
    return np.random.default_rng(seed).normal(0, 1, (n, width)).round(4).tolist()


def _put(api: Canary, version: str, weight: float, **extra: Any) -> dict[str, Any]:
    response = api.client.put(
        f"/models/{FAMILY}/canary", json={"version": version, "weight": weight, **extra}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_bad_input_is_named(canary: Canary) -> None:
    """Unknown family 404; a weight outside [0, 1] 422 naming it; an unknown version 404."""
    api = canary
    unknown = api.client.post(
        "/models/nosuch/predict", json={"unitId": "u1", "rows": _rows(api.width)}
    )
    assert unknown.status_code == 404, unknown.text
    for weight in (-0.1, 1.5):
        bad = api.client.put(f"/models/{FAMILY}/canary", json={"version": "v2", "weight": weight})
        assert bad.status_code == 422 and bad.json()["field"] == "weight", bad.text
    missing = api.client.put(f"/models/{FAMILY}/canary", json={"version": "v9", "weight": 0.1})
    assert missing.status_code == 404, missing.text


def test_sticky_assignment_over_http(canary: Canary) -> None:
    """Each unit gets one version for a fixed weight, the one the pure core assigns; the share
    on the canary is within binomial noise; wrong row width is 422 naming the row."""
    api = canary
    state = _put(api, "v2", 0.3)
    config = CanaryConfig.model_validate(state["config"])
    units = [f"sticky-{i}" for i in range(300)]

    def version(unit: str) -> str:
        answer = api.client.post(
            f"/models/{FAMILY}/predict", json={"unitId": unit, "rows": _rows(api.width)}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["scores"]) == 2
        return str(body["version"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        first = list(pool.map(version, units))
        again = list(pool.map(version, units[:100]))
    assert again == first[:100]
    assert first == config.versions(units)
    share = first.count("v2") / len(units)
    assert abs(share - 0.3) < 4 * (0.3 * 0.7 / len(units)) ** 0.5
    wide = api.client.post(
        f"/models/{FAMILY}/predict", json={"unitId": "u1", "rows": _rows(api.width + 1)}
    )
    assert wide.status_code == 422 and wide.json()["field"] == "rows[0]", wide.text
    scores = api.client.post(
        f"/models/{FAMILY}/predict", json={"unitId": units[0], "rows": _rows(api.width, 3)}
    ).json()
    served = OnnxPredictor(api.models[scores["version"]]).predict(np.array(_rows(api.width, 3)))
    np.testing.assert_allclose(scores["scores"], served, atol=1e-6)


def test_rollback_under_load_fails_no_request(canary: Canary) -> None:
    """16 clients predicting while the canary is rolled back: no request fails, and every
    prediction sent after the rollback's answer comes from the champion."""
    api = canary
    _put(api, "v2", 0.5)
    stop = threading.Event()
    acked = threading.Event()
    failures: list[str] = []
    after_ack: list[str] = []

    def client(worker: int) -> int:
        sent = 0
        with httpx.Client(base_url=str(api.client.base_url), timeout=30) as http:
            while not stop.is_set():
                was_acked = acked.is_set()
                body = {"unitId": f"load-{worker}-{sent}", "rows": _rows(api.width)}
                response = http.post(f"/models/{FAMILY}/predict", json=body)
                sent += 1
                if response.status_code != 200:
                    failures.append(response.text)
                elif was_acked:
                    after_ack.append(response.json()["version"])
        return sent

    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        futures = [pool.submit(client, w) for w in range(CONCURRENCY)]
        time.sleep(1.5)
        started = time.perf_counter()
        rollback = api.client.post(f"/models/{FAMILY}/rollback")
        took = time.perf_counter() - started
        acked.set()
        time.sleep(1.5)
        stop.set()
        sent = sum(f.result() for f in futures)
    assert rollback.status_code == 200, rollback.text
    print(f"rollback acknowledged in {took:.3f} s; {sent} predictions, {len(after_ack)} after")
    assert failures == []
    assert after_ack and set(after_ack) == {"v1"}
    state = api.client.get(f"/models/{FAMILY}/canary").json()
    assert state["status"] == "rolled_back" and state["decision"]["by"] == "user"
    assert api.registry.alias(FAMILY, "canary").version is None


def _kill_canary_replica() -> None:
    import ray

    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "#Canary#" in a["name"]
    ]
    assert names, "no Canary replica found"
    ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)


def _post_until_accepted(api: Canary, body: dict[str, Any]) -> dict[str, Any]:
    """Retry a batch while the replica is being replaced (its batch id merges it once)."""
    for _ in range(120):
        try:
            response = api.client.post(f"/models/{FAMILY}/outcomes", json=body)
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        if response.status_code == 200:
            return dict(response.json())
        assert response.status_code >= 500, response.text
        time.sleep(0.5)
    raise AssertionError("outcomes never accepted")


def _snake(event: dict[str, Any]) -> dict[str, Any]:
    return {("unit_id" if k == "unitId" else k): v for k, v in event.items()}


def test_worse_canary_rolled_back_automatically_and_no_outcome_lost(canary: Canary) -> None:
    """Twin traffic on a truly worse canary: outcomes posted in batches (a replica killed in
    the middle) are all counted, and the monitor rolls the canary back at the same batch and on
    the same numbers as the pure core does with nothing killed."""
    api = canary
    state = _put(api, "v2", 0.5, minUnits=200)
    config = CanaryConfig.model_validate(state["config"])
    predictors = {v: OnnxPredictor(content) for v, content in api.models.items()}
    stream = traffic_batches(environment("sales"), config, predictors, batch_size=4_000, seed=7)
    settings = DecisionSettings.model_validate(state["record"]["settings"])
    local = CanaryStats(family=FAMILY, generation=config.generation)
    local_action = "continue"
    posted, decision = 0, None
    stray = {"unitId": "u7-0", "metrics": {"conversions": 1.0}, "timestamp": 1.0}
    stray["version"] = "v1" if config.version("u7-0") == "v2" else "v2"
    for step in range(12):
        units, outcomes = next(stream)
        versions = config.versions(units)
        index = {v: 0 for v in outcomes}
        events = []
        for unit, version in zip(units, versions, strict=True):
            value = outcomes[version]["conversions"][index[version]]
            index[version] += 1
            events.append({"unitId": unit, "metrics": {"conversions": value}, "timestamp": 1.0})
        if step == 0:
            events.append(stray)
        body = {"batchId": f"b{step}", "events": events}
        core = [OutcomeEvent.model_validate(_snake(e)) for e in events]
        local = merge_batch(local, config, core, f"b{step}")
        local_action = decide(local, "v1", "v2", settings, elapsed_s=0).action
        if step == 1:
            _kill_canary_replica()
        answer = _post_until_accepted(api, body)
        if step == 0:
            assert answer["unassigned"] == 1
        posted += len(events)
        if answer["decision"] is not None:
            decision = answer["decision"]
            break
        assert local_action == "continue"
    assert decision is not None and decision["action"] == "rollback" == local_action
    expected = decide(local, "v1", "v2", settings, elapsed_s=0).metrics[0]
    assert decision["verdict"]["metrics"][0]["estimate"] == expected.estimate
    assert decision["by"] == "monitor"
    state = api.client.get(f"/models/{FAMILY}/canary").json()
    assert state["events"] == posted  # no outcome lost, none counted twice
    assert state["unassigned"] == 1
    assert state["status"] == "rolled_back" and state["config"]["canary"] is None
    assert state["decision"]["verdict"]["metrics"][0]["upper"] < 0
    served = api.client.post(
        f"/models/{FAMILY}/predict", json={"unitId": "u7-1", "rows": _rows(api.width)}
    )
    assert served.json()["version"] == "v1"


def _scrape(ray: Any) -> str:
    texts = []
    for node in ray.nodes():
        if node.get("Alive"):
            url = f"http://127.0.0.1:{node['MetricsExportPort']}/metrics"
            try:
                texts.append(httpx.get(url, timeout=5).text)
            except httpx.HTTPError:
                continue
    return "\n".join(texts)


def _total(text: str, name: str, **labels: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items())
    )


def test_predictions_weight_and_decisions_reach_the_metrics_export(
    canary: Canary, ray_session: Any
) -> None:
    """The Router counts predictions per version, the weight is a gauge, decisions a counter
    (by the monitor and by the user, from the tests above)."""
    predictions = "ray_twinloop_canary_predictions_total"
    decisions = "ray_twinloop_canary_decisions_total"
    text = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = _scrape(ray_session)
        if (
            _total(text, predictions, family=FAMILY, version="v2", role="canary") > 0
            and _total(text, decisions, family=FAMILY, action="rollback", by="monitor") >= 1
        ):
            break
        time.sleep(2)
    assert _total(text, predictions, family=FAMILY, version="v1", role="champion") > 0
    assert _total(text, predictions, family=FAMILY, version="v2", role="canary") > 0
    assert _total(text, decisions, family=FAMILY, action="rollback", by="monitor") >= 1
    assert _total(text, decisions, family=FAMILY, action="rollback", by="user") >= 1
    assert "ray_twinloop_canary_weight{" in text
