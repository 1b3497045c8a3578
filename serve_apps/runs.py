"""Background runs: long requests kept in the Store as run records, so they outlive a replica.

A POST asked to run in the background (``Prefer: respond-async``, or work too big to answer
inline) creates a :class:`RunRecord` in state ``queued`` and returns 202 with its id; the record
stays ``queued`` until the run queue (``serve_apps.run_queue``) has room for it. The capability
code running it *claims* the record (compare-and-set, so two executions never run it twice),
renews a lease while it works, and writes the result or the error into the same record.
``GET /runs/{id}`` reads it from any replica.

Restart safety: a replica that dies stops renewing its lease. Whoever reads the record next sees
the lease expired and dispatches it again; the next claim re-runs the request from the stored
body. Requests carry their seeds, so the re-run computes the same result. After
``MAX_ATTEMPTS`` claims the run is marked failed instead of retried forever.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from serve_apps.errors import http_error
from twinloop.contract import SECONDS_PER_WEEK, FrozenModel
from twinloop.errors import NotFound, TwinloopError, VersionConflict
from twinloop.store import Store

log = logging.getLogger("twinloop.serve")

RUN_KIND = "run"
LEASE_S = 30.0  # a running record whose lease is older than this is presumed orphaned
MAX_ATTEMPTS = 3
RESULT_TTL_S = SECONDS_PER_WEEK  # finished runs are kept a week
RunStatus = Literal["queued", "running", "succeeded", "failed"]
ACTIVE: tuple[RunStatus, ...] = ("queued", "running")


@dataclass(frozen=True)
class Deferred:
    """A capability's answer to an inline call: too big for a request, run it in the background."""

    reason: str


class RunError(FrozenModel):
    """Why a run failed: the same fields as an HTTP error body."""

    code: str
    field: str | None = None
    message: str


class RunRecord(FrozenModel):
    """One background run: what was asked, where it is, and what came out."""

    id: str
    operation: str = Field(description="Capability operation, e.g. 'what_if', 'calibrate'.")
    status: RunStatus
    progress: float = Field(ge=0.0, le=1.0, description="Fraction done, 0..1.")
    message: str = ""
    request: dict[str, Any] = Field(description="The validated request body (snake_case).")
    result: dict[str, Any] | None = None
    error: RunError | None = None
    attempts: int = 0
    owner: str | None = Field(default=None, description="Replica running it now.")
    lease_until: float | None = None
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None

    def orphaned(self, now: float) -> bool:
        """Active but nobody is (visibly) working on it: a dispatch was lost or a replica died."""
        if self.status == "queued":
            return now - self.updated_at > LEASE_S
        return self.status == "running" and (self.lease_until or 0.0) < now


class RunBook:
    """Run records in a Store; every transition is a compare-and-set on the record's version."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def create(self, operation: str, request: Mapping[str, Any]) -> RunRecord:
        now = self.clock()
        record = RunRecord(
            id=f"run-{uuid.uuid4().hex[:16]}",
            operation=operation,
            status="queued",
            progress=0.0,
            request=dict(request),
            created_at=now,
            updated_at=now,
        )
        self.store.put_model(RUN_KIND, record.id, record, expected_version=0)
        return record

    def create_once(
        self, run_id: str, operation: str, request: Mapping[str, Any]
    ) -> tuple[RunRecord, bool]:
        """The run ``run_id``: created queued, unless one is active (returned with False). A
        finished one is replaced (compare-and-set), so the work can be run again later."""
        now = self.clock()
        record = RunRecord(
            id=run_id, operation=operation, status="queued", progress=0.0,
            request=dict(request), created_at=now, updated_at=now,
        )  # fmt: skip
        found = self.store.find(RUN_KIND, run_id)
        if found is not None and found.to_model(RunRecord).status in ACTIVE:
            return found.to_model(RunRecord), False
        if self._write(record, 0 if found is None else found.version):
            return record, True
        return self.get(run_id), False  # a concurrent caller created it first

    def get(self, run_id: str) -> RunRecord:
        found = self.store.find(RUN_KIND, run_id)
        if found is None:
            raise NotFound("run", run_id)
        return found.to_model(RunRecord)

    def recent(self, status: RunStatus | None = None, limit: int = 50) -> list[RunRecord]:
        """The newest runs, optionally of one status."""
        where = {"status": status} if status else None
        return self.store.query_models(RUN_KIND, RunRecord, where=where, limit=limit)

    def claim(self, run_id: str, owner: str) -> RunRecord | None:
        """Take the run if it is queued or orphaned; None when someone else has it or it ended."""
        found = self.store.find(RUN_KIND, run_id)
        if found is None:
            return None
        record = found.to_model(RunRecord)
        now = self.clock()
        if record.status not in ACTIVE or (record.status == "running" and not record.orphaned(now)):
            return None
        if record.attempts >= MAX_ATTEMPTS:
            failed = record.model_copy(
                update={
                    "status": "failed",
                    "updated_at": now,
                    "finished_at": now,
                    "owner": None,
                    "error": RunError(
                        code="internal_error",
                        message=(
                            f"abandoned after {record.attempts} attempts (replicas died or lost it)"
                        ),
                    ),
                }
            )
            self._write(failed, found.version, ttl=RESULT_TTL_S)
            return None
        claimed = record.model_copy(
            update={
                "status": "running",
                "owner": owner,
                "attempts": record.attempts + 1,
                "lease_until": now + LEASE_S,
                "updated_at": now,
                "started_at": now,
                "message": "running" if record.attempts == 0 else "re-run after an interruption",
            }
        )
        return claimed if self._write(claimed, found.version) else None

    def renew(
        self, run_id: str, owner: str, progress: float | None = None, message: str | None = None
    ) -> bool:
        """Extend the lease (and note progress); False when the run is no longer ours."""

        def step(doc: dict[str, Any] | None) -> dict[str, Any]:
            if doc is None or doc.get("owner") != owner or doc.get("status") != "running":
                raise _NotOurs
            now = self.clock()
            doc = {**doc, "lease_until": now + LEASE_S, "updated_at": now}
            if progress is not None:
                doc["progress"] = min(1.0, max(float(doc["progress"]), float(progress)))
            if message is not None:
                doc["message"] = message
            return doc

        try:
            self.store.update(RUN_KIND, run_id, step)
        except _NotOurs:
            return False
        return True

    def finish(self, run_id: str, owner: str, result: Mapping[str, Any]) -> bool:
        return self._end(
            run_id,
            owner,
            {"status": "succeeded", "progress": 1.0, "message": "done", "result": dict(result)},
        )

    def fail(self, run_id: str, owner: str, error: RunError) -> bool:
        return self._end(
            run_id,
            owner,
            {"status": "failed", "message": error.message, "error": error.model_dump()},
        )

    def _end(self, run_id: str, owner: str, changes: dict[str, Any]) -> bool:
        def step(doc: dict[str, Any] | None) -> dict[str, Any]:
            if doc is None or doc.get("owner") != owner or doc.get("status") != "running":
                raise _NotOurs
            now = self.clock()
            return {
                **doc,
                **changes,
                "owner": None,
                "lease_until": None,
                "updated_at": now,
                "finished_at": now,
            }

        try:
            self.store.update(RUN_KIND, run_id, step, ttl_seconds=RESULT_TTL_S)
        except _NotOurs:
            return False
        return True

    def _write(self, record: RunRecord, version: int, ttl: float | None = None) -> bool:
        try:
            self.store.put_model(
                RUN_KIND, record.id, record, expected_version=version, ttl_seconds=ttl
            )
        except VersionConflict:
            return False
        return True


class _NotOurs(Exception):
    """Raised inside an update step to abandon it: the record changed hands or ended."""


class Heartbeat:
    """Renews a run's lease from a background thread while the work runs in the caller's thread.

    Long steps without progress callbacks would otherwise look orphaned after ``LEASE_S``.
    """

    def __init__(self, book: RunBook, run_id: str, owner: str, every_s: float = LEASE_S / 3):
        self._book, self._run_id, self._owner = book, run_id, owner
        self._every = every_s
        self._stop = threading.Event()
        self._progress: float | None = None
        self._message: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"lease-{run_id}", daemon=True)

    def report(self, progress: float, message: str | None = None) -> None:
        """Record progress; written with the next renewal (throttled, not one write per call)."""
        self._progress, self._message = progress, message

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            if not self._book.renew(self._run_id, self._owner, self._progress, self._message):
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


Progress = Callable[[float, str | None], None]
Operation = Callable[[dict[str, Any], Progress], BaseModel]


def execute(
    book: RunBook, run_id: str, owner: str, operations: Mapping[str, Operation]
) -> RunStatus | None:
    """Claim ``run_id`` and run it to the end; None when it was not ours to run."""
    record = book.claim(run_id, owner)
    if record is None:
        return None
    operation = operations.get(record.operation)
    if operation is None:
        book.fail(
            run_id,
            owner,
            RunError(
                code="internal_error",
                message=(f"operation {record.operation!r} is not served by this deployment"),
            ),
        )
        return "failed"
    with Heartbeat(book, run_id, owner) as beat:
        try:
            result = operation(record.request, beat.report)
        except (TwinloopError, ValidationError) as exc:
            _, body = http_error(exc)
            book.fail(
                run_id, owner, RunError(code=body.code, field=body.field, message=body.message)
            )
            return "failed"
        except Exception as exc:
            log.exception("run %s (%s) crashed", run_id, record.operation)
            book.fail(
                run_id,
                owner,
                RunError(
                    code="internal_error",
                    message=(
                        f"{type(exc).__name__} while running {record.operation}; "
                        "see the replica log"
                    ),
                ),
            )
            return "failed"
    book.finish(run_id, owner, result.model_dump(mode="json"))
    return "succeeded"
