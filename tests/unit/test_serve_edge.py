"""The HTTP edge without Ray: run records, deadlines, the error mapping, auth and body limits.

The routes are built by ``create_api`` around fake capabilities called in-process, so the rules
that do not depend on Serve are checked in milliseconds; tests/serve/ runs the real thing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from serve_apps.clients import InReplicaClient, LocalClient
from serve_apps.config import app_config
from serve_apps.errors import DeadlineExceeded, Unauthorized, http_error
from serve_apps.ingress import Edge, create_api
from serve_apps.limits import Limits, request_deadline
from serve_apps.runs import LEASE_S, MAX_ATTEMPTS, RunBook, RunError, execute
from twinloop.errors import (
    ConfigError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StoreUnavailable,
    VersionConflict,
)
from twinloop.store import SqliteStore


class Clock:
    """A settable clock for lease arithmetic."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "twinloop.sqlite3")


class Echo(BaseModel):
    value: float


def test_claim_is_exclusive_and_a_finished_run_keeps_its_result(store: SqliteStore) -> None:
    """Only one replica claims a queued run; finishing stores the result for any reader."""
    book = RunBook(store)
    record = book.create("echo", {"value": 2.0})
    assert book.claim(record.id, "replica-a") is not None
    assert book.claim(record.id, "replica-b") is None
    assert book.finish(record.id, "replica-a", {"value": 4.0})
    done = book.get(record.id)
    assert (done.status, done.progress, done.result) == ("succeeded", 1.0, {"value": 4.0})


def test_an_expired_lease_lets_another_replica_rerun_the_run(store: SqliteStore) -> None:
    """A dead owner stops renewing; after LEASE_S the run is orphaned and claimable again."""
    clock = Clock()
    book = RunBook(store, clock)
    record = book.create("echo", {"value": 1.0})
    book.claim(record.id, "dead-replica")
    clock.now += LEASE_S / 2
    assert book.claim(record.id, "replica-b") is None
    clock.now += LEASE_S
    assert book.get(record.id).orphaned(clock.now)
    again = book.claim(record.id, "replica-b")
    assert again is not None and again.attempts == 2
    assert not book.finish(record.id, "dead-replica", {"value": 0.0})  # no longer its run


def test_a_run_that_keeps_dying_is_failed_after_max_attempts(store: SqliteStore) -> None:
    """MAX_ATTEMPTS claims without a finish: the next claim marks it failed instead."""
    clock = Clock()
    book = RunBook(store, clock)
    record = book.create("echo", {})
    for attempt in range(MAX_ATTEMPTS):
        assert book.claim(record.id, f"replica-{attempt}") is not None
        clock.now += 2 * LEASE_S
    assert book.claim(record.id, "replica-last") is None
    failed = book.get(record.id)
    assert (
        failed.status == "failed"
        and "abandoned" in (failed.error or RunError(code="", message="")).message
    )


def test_execute_records_the_error_of_bad_input_with_its_field(store: SqliteStore) -> None:
    """An operation raising InvalidInput ends failed with the code and field of the HTTP error."""
    book = RunBook(store)
    record = book.create("bad", {})

    def bad(body: dict[str, Any], progress: Any) -> BaseModel:
        raise InvalidInput("changes.accuracy", "-300% is below -100%")

    assert execute(book, record.id, "replica", {"bad": bad}) == "failed"
    error = book.get(record.id).error
    assert error is not None and (error.code, error.field) == ("invalid_input", "changes.accuracy")


def test_deadline_header_is_capped_and_never_disables_the_timeout() -> None:
    """x-request-timeout-seconds shortens the deadline; huge → cap; 0, junk, nan → default."""
    limits = Limits(default_timeout_s=60, max_timeout_s=300)
    header = "x-request-timeout-seconds"
    assert request_deadline({header: "5"}, limits) == 5
    assert request_deadline({header: "1e9"}, limits) == 300
    assert [request_deadline({header: v}, limits) for v in ("0", "-1", "soon", "nan", "inf")] == [
        60,
        60,
        60,
        60,
        60,
    ]
    assert request_deadline({}, limits) == 60


def test_error_mapping_table() -> None:
    """Each error class gets its status, and the field travels in the body."""
    assert http_error(LimitExceeded("rows", 10, 5))[0] == 413
    status, body = http_error(InvalidInput("history.revenue", "'n/a' is not a number"))
    assert (status, body.field) == (422, "history.revenue")
    assert http_error(NotFound("run", "x"))[0] == 404
    assert http_error(VersionConflict("environments 'a': expected version 0"))[0] == 409
    status, body = http_error(ConfigError("TWINLOOP_REDIS_URL is invalid"), "req-1")
    assert status == 500 and body.request_id == "req-1" and "REDIS" not in body.message


def test_errors_survive_pickling_as_themselves_and_keep_their_status() -> None:
    """Ray ships exceptions by pickle: each comes back as its class, attributes and status."""
    import pickle

    errors = [
        InvalidInput("changes.accuracy", "-300% is below -100%"),
        LimitExceeded("replicates", 20_000, 10_000),
        NotFound("environment", "env-1"),
        VersionConflict("environments 'a': expected version 0"),
        StoreUnavailable("redis at 127.0.0.1:6379 refused the connection"),
        ConfigError("TWINLOOP_REDIS_URL is invalid"),
        Unauthorized("authorization: the bearer token is not valid"),
        DeadlineExceeded(5.0),
    ]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert vars(back) == vars(error) and http_error(back) == http_error(error)
    back = pickle.loads(pickle.dumps(errors[1]))
    assert (back.field, back.value, back.limit, back.status, back.code) == (
        "replicates",
        20_000,
        10_000,
        413,
        "limit_exceeded",
    )
    with pytest.raises(LimitExceeded, match="replicates: 20000 exceeds the limit of 10000"):
        raise back


class FakeMetrics:
    """Stands in for the Metrics deployment: sums what-if baselines, inline or as a run."""

    def __init__(self, book: RunBook) -> None:
        self.book = book

    def what_if(self, request: Any) -> Echo:
        return Echo(value=sum(request.base_metrics.values()))

    def execute_run(self, run_id: str) -> Any:
        def what_if(body: dict[str, Any], progress: Any) -> BaseModel:
            return Echo(value=sum(body["base_metrics"].values()))

        return execute(self.book, run_id, "fake-replica", {"what_if": what_if})

    def ping(self) -> str:
        return "ok"


def _client(tmp_path: Path, token: str | None) -> TestClient:
    config = app_config(
        {
            "settings": {"data_dir": str(tmp_path), "api_token": token},
            "limits": {"max_body_bytes": 2048},
        }
    )
    book = RunBook(SqliteStore(tmp_path / "runs.sqlite3"))
    edge = Edge(config=config, runs=book, capabilities={"metrics": LocalClient(FakeMetrics(book))})
    return TestClient(create_api(edge))


def test_routes_need_the_token_and_accept_camel_case(tmp_path: Path) -> None:
    """401 without the bearer token, 200 with it; baseMetrics reaches the capability."""
    client = _client(tmp_path, "s3cret")
    body = {"baseMetrics": {"a": 1.0, "b": 2.5}, "changes": {"a": 0.1}}
    refused = client.post("/metrics/what-if", json=body)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    accepted = client.post(
        "/metrics/what-if", json=body, headers={"Authorization": "Bearer s3cret"}
    )
    assert accepted.status_code == 200 and accepted.json() == {"value": 3.5}
    assert client.get("/healthz").status_code == 200


def test_oversized_and_chunked_bodies_are_413_naming_body(tmp_path: Path) -> None:
    """Both a declared Content-Length and a chunked body above the limit get 413."""
    client = _client(tmp_path, None)
    big = b'{"baseMetrics": {"a": 1}, "changes": {"a": 0.1}, "pad": "' + b"x" * 4096 + b'"}'
    declared = client.post(
        "/metrics/what-if", content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and declared.json()["field"] == "body"

    def chunks() -> Any:
        yield big[:1000]
        yield big[1000:]

    chunked = client.post(
        "/metrics/what-if", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413 and chunked.json()["limit"] == 2048


def test_prefer_respond_async_gives_202_and_a_run_that_ends_with_the_result(
    tmp_path: Path,
) -> None:
    """202 with a Location; polling it ends in 'succeeded' with the capability's result."""
    with _client(tmp_path, None) as client:
        response = client.post(
            "/metrics/what-if",
            json={"baseMetrics": {"a": 1.0, "b": 2.0}, "changes": {"a": 0.1}},
            headers={"Prefer": "respond-async"},
        )
        assert response.status_code == 202
        deadline = time.monotonic() + 10
        run = client.get(response.headers["location"]).json()
        while run["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            run = client.get(response.headers["location"]).json()
    assert (run["status"], run["result"]) == ("succeeded", {"value": 3.0})


class Where:
    """A metrics capability that answers with a number saying where it runs."""

    def __init__(self, value: float) -> None:
        self.value = value

    def what_if(self, request: Any) -> Echo:
        return Echo(value=self.value)


def test_bounded_requests_are_answered_in_the_ingress_and_the_rest_by_the_deployment(
    tmp_path: Path,
) -> None:
    """A small what-if without a history stays in the ingress replica; a history, a body above
    ``ingress_answer_bytes``, or a limit of 0 sends it to the capability deployment."""

    def client(answer_bytes: int) -> TestClient:
        config = app_config(
            {
                "settings": {"data_dir": str(tmp_path)},
                "limits": {"ingress_answer_bytes": answer_bytes},
            }
        )
        edge = Edge(
            config=config,
            runs=RunBook(SqliteStore(tmp_path / "runs.sqlite3")),
            capabilities={"metrics": LocalClient(Where(2.0))},
            in_replica={"metrics": InReplicaClient(Where(1.0))},
        )
        return TestClient(create_api(edge))

    small = {"baseMetrics": {"a": 1.0, "b": 2.0}, "changes": {"a": 0.1}}
    with_history = {**small, "history": [{"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 3.0}]}
    many = {f"metric_with_a_long_name_{i:03d}": 1.0 for i in range(100)}
    padded = {**small, "baseMetrics": {**small["baseMetrics"], **many}}
    default = client(64 * 1024)
    assert default.post("/metrics/what-if", json=small).json() == {"value": 1.0}
    assert default.post("/metrics/what-if", json=with_history).json() == {"value": 2.0}
    tight = client(1024)
    assert tight.post("/metrics/what-if", json=small).json() == {"value": 1.0}
    assert tight.post("/metrics/what-if", json=padded).json() == {"value": 2.0}
    assert client(0).post("/metrics/what-if", json=small).json() == {"value": 2.0}


def test_an_inline_environment_above_max_customers_is_413_naming_it() -> None:
    """Without a ``customers`` override the inline environment's own size is the one checked."""
    from serve_apps.schemas.sandbox import SandboxTestRequest
    from twinloop.sim.domains import environment

    big = environment("sales").model_dump(mode="json") | {"initial_customers": 2_000}
    limits = Limits(max_customers=1_000)
    request = SandboxTestRequest.model_validate({"environment": big, "days": 5, "replicates": 2})
    with pytest.raises(LimitExceeded) as caught:
        request.check(limits)
    assert caught.value.field == "environment.initial_customers"
    overridden = SandboxTestRequest.model_validate(
        {"environment": big, "customers": 500, "days": 5, "replicates": 2}
    )
    overridden.check(limits)  # the override is what runs, and it is within the limit
