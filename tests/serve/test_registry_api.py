"""The model registry over real HTTP: families, versions (JSON and ONNX uploads), aliases, and a
championship as a background run — with the 404 / 409 / 413 / 422 answers the issue lists."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from shared_serve import deployed
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import sample_customers
from twinloop.store import SqliteStore

pytestmark = [pytest.mark.serve, pytest.mark.ray]

TOKEN = "registry-token-1"
MAX_BODY = 64 * 1024


@dataclass
class Api:
    client: httpx.Client
    data_dir: Path


@pytest.fixture(scope="module")
def api(serve_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One Serve app for the module, with a small body limit so 413 is cheap to reach."""
    from serve_apps.app import APP_NAME, build_app

    data_dir = tmp_path_factory.mktemp("registry-data")
    args = {
        "settings": {"data_dir": str(data_dir), "api_token": TOKEN},
        "limits": {"max_body_bytes": MAX_BODY, "max_timeout_s": 60.0, "default_timeout_s": 50.0},
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    base = f"http://127.0.0.1:{serve_port}"
    with (
        deployed(build_app(args), APP_NAME),
        httpx.Client(base_url=base, headers=headers, timeout=90) as client,
    ):
        yield Api(client, data_dir)


def onnx_bytes(columns: int = 7) -> bytes:
    x, y, _ = sample_customers(environment("sales"), 2000, np.random.default_rng(4))
    fitted = LogisticRegression(max_iter=500).fit(x[:, :columns], y)
    options = {id(fitted): {"zipmap": False}}
    return to_onnx(fitted, x[:1, :columns].astype(np.float32), options=options).SerializeToString()


def error(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    if field is not None:
        assert body["field"] == field, body
    return body


def poll(api: Api, location: str, timeout_s: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record: dict[str, Any] = api.client.get(location).json()
        if record["status"] in ("succeeded", "failed"):
            return record
        time.sleep(0.3)
    raise AssertionError(f"{location} did not finish in {timeout_s} s")


def upload(api: Api, family: str, content: bytes, metadata: str = "{}") -> httpx.Response:
    files = {"file": ("model.onnx", content, "application/octet-stream")}
    return api.client.post(f"/models/{family}/versions", files=files, data={"metadata": metadata})


def test_family_versions_aliases_and_a_championship(api: Api) -> None:
    """The whole story over HTTP: create, register (JSON + ONNX), champion, championship → 202,
    the run's decision promotes, `challenger` moved."""
    created = api.client.post(
        "/models/scoring", json={"description": "demo", "primaryKpi": "revenue"}
    )
    assert created.status_code == 201 and created.headers["location"] == "/models/scoring"
    v1 = api.client.post("/models/scoring/versions", json={"model": {"accuracy": 0.45}})
    assert v1.status_code == 201 and v1.json()["id"] == "v1"
    metadata = (
        '{"model": {"latency_p50_ms": 50, "latency_p95_ms": 90}, "lineage": {"parent": "v1"}}'
    )
    v2 = upload(api, "scoring", onnx_bytes(), metadata)
    assert v2.status_code == 201, v2.text
    assert v2.headers["location"] == "/models/scoring/versions/v2"
    assert v2.json()["model"]["type"] == "onnx" and "content" not in v2.json()["model"]
    assert api.client.get("/models/scoring/versions/v2").json()["lineage"]["parent"] == "v1"
    moved = api.client.put(
        "/models/scoring/aliases/champion", json={"version": "v1", "expected": None}
    )
    assert moved.status_code == 200 and moved.json()["revision"] == 1
    accepted = api.client.post(
        "/models/scoring/championship",
        json={"versions": ["v2"], "replicates": 5, "customers": 300, "days": 15, "seed": 2},
    )
    assert accepted.status_code == 202, accepted.text
    record = poll(api, accepted.headers["location"])
    assert record["status"] == "succeeded", record
    decision = record["result"]
    assert decision["result"]["entrants"] == ["v1", "v2"]
    assert decision["verdict"] == "promote" and decision["promotion"]["moved"]
    family = api.client.get("/models/scoring").json()
    assert family["aliases"]["challenger"] == "v2" and family["versions"] == 2
    sha = v2.json()["model"]["sha256"]
    compare = {"customers": 300, "days": 3, "replicates": 2, "baseline": {"name": "a"},
               "challenger": {"type": "onnx", "name": "b", "sha256": sha}}  # fmt: skip
    answer = api.client.post("/sandbox/compare", json=compare)
    assert answer.status_code == 200 and answer.json()["challenger"] == "b", answer.text


def test_alias_conflict_is_409_and_rollback_is_one_call(api: Api) -> None:
    """A stale `expected` is 409 and moves nothing; rollback moves back."""
    api.client.post("/models/aliases", json={})
    for accuracy in (0.6, 0.7):
        api.client.post("/models/aliases/versions", json={"model": {"accuracy": accuracy}})
    api.client.put("/models/aliases/aliases/champion", json={"version": "v1"})
    api.client.put("/models/aliases/aliases/champion", json={"version": "v2", "expected": "v1"})
    stale = api.client.put(
        "/models/aliases/aliases/champion", json={"version": "v1", "expected": "v1"}
    )
    assert "points at v2" in error(stale, 409)["message"]
    back = api.client.put(
        "/models/aliases/aliases/champion", json={"rollback": True, "by": "oncall"}
    )
    assert back.status_code == 200 and back.json()["version"] == "v1"


def test_unknown_family_and_version_are_404(api: Api) -> None:
    """GET or POST under a family that does not exist, or a version that does not: 404."""
    assert error(api.client.get("/models/nope"), 404)["code"] == "not_found"
    assert error(api.client.get("/models/nope/versions"), 404)["code"] == "not_found"
    api.client.post("/models/known", json={})
    assert "v9" in error(api.client.get("/models/known/versions/v9"), 404)["message"]
    body = {"model": {"accuracy": 0.7}}
    assert error(api.client.post("/models/nope/versions", json=body), 404)["code"] == "not_found"
    champ = api.client.post("/models/nope/championship", json={"versions": ["v2"]})
    assert error(champ, 404)["code"] == "not_found"


def test_bad_uploads_are_refused_and_nothing_half_registered_remains(api: Api) -> None:
    """Not ONNX → 422 naming the field; wrong input width → 422; too big → 413; no trace left."""
    api.client.post("/models/uploads", json={})
    error(upload(api, "uploads", b"this is not an onnx file"), 422, "model.content")
    narrow = error(upload(api, "uploads", onnx_bytes(columns=3)), 422, "model")
    assert "takes 3 features" in narrow["message"]
    big = upload(api, "uploads", b"\x08" * (MAX_BODY + 1))
    assert big.status_code == 413, big.text
    bad_meta = upload(api, "uploads", onnx_bytes(), metadata="{not json")
    error(bad_meta, 422, "metadata")
    assert api.client.get("/models/uploads/versions").json()["versions"] == []
    store = SqliteStore(api.data_dir / "twinloop.sqlite3")
    try:
        # only the valid upload of the story test: neither the junk nor the 3-feature graph
        assert all(hit.doc["n_features"] == 7 for hit in store.query("artifact"))
    finally:
        store.close()


def test_json_errors_name_the_field(api: Api) -> None:
    """Unknown model type, predictor outside the allow-list, bad championship input: 422."""
    api.client.post("/models/errors", json={})
    typo = api.client.post("/models/errors/versions", json={"model": {"type": "pickle"}})
    assert error(typo, 422)["field"].startswith("model")
    unsafe = {"model": {"type": "predictor", "import_path": "os:system"}}
    error(api.client.post("/models/errors/versions", json=unsafe), 422, "model.import_path")
    api.client.post("/models/errors/versions", json={"model": {"accuracy": 0.7}})
    no_champion = api.client.post("/models/errors/championship", json={"versions": ["v1"]})
    assert "has no champion" in error(no_champion, 422, "family")["message"]
    too_many = {"versions": ["v1"], "replicates": 20_000}
    error(api.client.post("/models/errors/championship", json=too_many), 422, "replicates")
    error(api.client.post("/models/errors", json={"primaryKpi": "happiness"}), 422, "primary_kpi")
    assert error(api.client.post("/models/errors", json={}), 409)["code"] == "conflict"
