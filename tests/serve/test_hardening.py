"""The API under stress, through a real Ray Serve over a Redis of its own: a flood of background
runs, and a store that hangs.

One Serve application for the module, on a free loopback port, backed by a ``redis-server`` this
module starts on a free port (so the store-hang test can freeze it with SIGSTOP without touching
anyone else's Redis).
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from shared_serve import deployed

pytestmark = [pytest.mark.serve, pytest.mark.ray]

STORE_TIMEOUT_S = 1.0  # the app's Redis socket timeout (Settings.store_timeout_s)
FLOOD = 50
FUZZ_EXAMPLES = 12  # per operation: ~20 operations, a few hundred requests, about a minute
TINY = {"customers": 200, "days": 5, "replicates": 2}


@dataclass
class Stack:
    base: str
    client: httpx.Client
    redis: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    import redis

    server = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=1.0)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            return server
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(serve_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private redis-server and one Serve app on it; both stopped at the end."""
    from serve_apps.app import APP_NAME, build_app

    redis_port, port = _free_port(), serve_port
    server = _start_redis(redis_port)
    try:
        args = {
            "settings": {
                "data_dir": str(tmp_path_factory.mktemp("hardening")),
                "redis_url": f"redis://127.0.0.1:{redis_port}/0",
                "store_timeout_s": STORE_TIMEOUT_S,
            },
            # Small simulations only: a fuzzed sandbox body cannot start a long run.
            "limits": {
                "default_timeout_s": 20.0,
                "max_timeout_s": 30.0,
                "max_customer_days": 2e5,
                "inline_customer_days": 2e5,
            },
            "sandbox": {"concurrent_runs": 2, "idle_s": 5.0, "startup_timeout_s": 60.0},
        }
        with (
            deployed(build_app(args), APP_NAME),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
        ):
            yield Stack(f"http://127.0.0.1:{port}", client, server)
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGCONT)
            server.kill()
        server.wait(timeout=10)


def _timed_get(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def test_a_flood_of_background_runs_queues_and_leaves_the_api_answering(stack: Stack) -> None:
    """50 async sandbox runs: they wait ``queued`` (at most 2 run at once over one shared pool),
    all succeed, and a synchronous GET answers during the flood about as fast as before it."""
    path = "/environments/sales"
    before = statistics.median(_timed_get(stack.client, path) for _ in range(5))

    def post(seed: int) -> str:
        body = {**TINY, "seed": seed, "model": {"accuracy": 0.8}}
        response = stack.client.post(
            "/sandbox/test", json=body, headers={"Prefer": "respond-async"}
        )
        assert response.status_code == 202, response.text
        return str(response.headers["location"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        locations = list(pool.map(post, range(FLOOD)))
    first = [stack.client.get(loc).json()["status"] for loc in locations]
    during = [_timed_get(stack.client, path) for _ in range(5)]
    seen: dict[str, set[str]] = {
        loc: {status} for loc, status in zip(locations, first, strict=True)
    }
    unfinished = set(locations)
    deadline = time.monotonic() + 600
    while unfinished and time.monotonic() < deadline:
        for loc in sorted(unfinished):
            status = stack.client.get(loc).json()["status"]
            seen[loc].add(status)
            if status in ("succeeded", "failed"):
                unfinished.discard(loc)
        time.sleep(0.5)
    print(f"GET {path}: {before * 1e3:.1f} ms before, {max(during) * 1e3:.1f} ms during the flood")
    assert not unfinished, f"{len(unfinished)} runs still unfinished after 600 s"
    finals = [stack.client.get(loc).json() for loc in locations]
    failed = [r for r in finals if r["status"] != "succeeded"]
    assert not failed, failed[:2]
    assert sum("queued" in s for s in seen.values()) >= FLOOD // 2, first
    assert max(during) < max(20 * before, 2.0), (before, during)


def test_a_run_that_cannot_get_workers_fails_saying_so(ray_session: Any) -> None:
    """A pool whose workers cannot be placed fails with ``unavailable`` naming the CPUs, instead
    of an anonymous RuntimeError after the start-up timeout."""
    from actors.sandbox_pool import RayExecutor, WorkerPool
    from twinloop.errors import ResourcesUnavailable

    pool = WorkerPool(1, num_cpus=64, startup_timeout=2.0)
    with RayExecutor(pool=pool) as executor, pytest.raises(ResourcesUnavailable) as raised:
        list(executor.map(abs, [1, 2]))
    assert raised.value.status == 503 and "lacks free CPUs" in str(raised.value)


WHAT_IF = {
    "baseMetrics": {"accuracy": 0.78, "latency": 250.0, "conversion": 0.05, "revenue": 1e4},
    "changes": {"accuracy": 0.1},
}
ANALYZE = {  # the seed's /analyze-failure body: stored, so it needs the store
    "experimentId": "exp-hang",
    "testResult": {
        "winner": "model-v2",
        "loser": "model-v3",
        "metrics": {
            "accuracy": {"winner": 0.92, "loser": 0.78, "percentChange": -15.2},
            "latency": {"winner": 100, "loser": 250, "percentChange": 150},
        },
    },
}


def _timed(call: Any) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = call()
    return time.perf_counter() - started, response


def test_a_hung_store_fails_fast_and_stalls_no_other_route(stack: Stack) -> None:
    """Redis frozen (SIGSTOP): routes without the store answer in their normal time while
    store-bound requests are in flight; those needing it fail with 503 naming the store within
    the configured store timeout; deep health answers 503 ``degraded``."""
    client = stack.client
    stored = client.post("/environments", json={"id": "env-hang", "preset": "sales"})
    assert stored.status_code in (200, 201), stored.text
    shallow = [_timed(lambda: client.get("/healthz"))[0] for _ in range(5)]
    what_if = [_timed(lambda: client.post("/metrics/what-if", json=WHAT_IF))[0] for _ in range(5)]
    os.kill(stack.redis.pid, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            # Store-bound work in flight while the other routes are measured.
            stalled = [pool.submit(client.post, "/analyze-failure", json=ANALYZE) for _ in range(4)]
            frozen_shallow = [_timed(lambda: client.get("/healthz")) for _ in range(3)]
            frozen_what_if = [
                _timed(lambda: client.post("/metrics/what-if", json=WHAT_IF)) for _ in range(3)
            ]
            needs_store = [
                _timed(lambda: client.get("/environments/env-hang")),
                _timed(lambda: client.get("/runs/run-0123456789abcdef")),
            ]
            deep = _timed(lambda: client.get("/healthz", params={"deep": "true"}))
            analyses = [f.result() for f in stalled]
    finally:
        os.kill(stack.redis.pid, signal.SIGCONT)
    normal = max(statistics.median(shallow), statistics.median(what_if))
    print(
        f"normal {normal * 1e3:.1f} ms; frozen: healthz {[round(t, 3) for t, _ in frozen_shallow]}"
        f" what-if {[round(t, 3) for t, _ in frozen_what_if]}"
        f" store-bound {[round(t, 3) for t, _ in needs_store]} deep {deep[0]:.3f} s"
    )
    for elapsed, response in frozen_shallow + frozen_what_if:
        assert response.status_code == 200, response.text
        assert elapsed < max(20 * normal, 0.5), (elapsed, normal)
    for elapsed, response in needs_store:
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "unavailable"
        assert "store" in response.json()["message"], response.json()
        assert elapsed < 3 * STORE_TIMEOUT_S + 2.0, elapsed
    assert all(a.status_code == 503 and "store" in a.json()["message"] for a in analyses)
    assert deep[1].status_code == 503 and deep[1].json()["status"] == "degraded", deep[1].text
    # Back to normal once the store answers again.
    assert client.get("/environments/env-hang").status_code == 200
    assert client.get("/healthz", params={"deep": "true"}).status_code == 200


def test_schemathesis_finds_every_answer_documented(stack: Stack) -> None:
    """Bodies and parameters drawn from /openapi.json by schemathesis (seeded, FUZZ_EXAMPLES per
    operation): no 5xx, every status and content type declared, every body matching its schema."""
    from hypothesis import given

    schema = schemathesis.openapi.from_url(f"{stack.base}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18, [op.label for op in operations]
    sent: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=FUZZ_EXAMPLES,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: Any) -> None:
            sent.append(case.call_and_validate(checks=checks).status_code)

        fuzz()
    print(f"schemathesis: {len(sent)} requests over {len(operations)} operations")
    assert len(sent) >= 5 * len(operations)
