"""What every capability deployment shares: its store, its run executor, its telemetry.

A capability is a plain class; ``serve_apps.app`` wraps it with ``serve.deployment`` (Ray's
"type hints" pattern), so it can also be built and called in a unit test without Ray. Public
methods are the operations the ingress calls through a ``DeploymentHandle``, named as the
operation (``serve_apps.routes``); bad input raises the core's own exception, which crosses the
handle as itself.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from cluster.store_factory import open_store
from serve_apps.config import AppConfig, run_queue_name
from serve_apps.routes import OPERATIONS
from serve_apps.runs import Operation, Progress, RunBook, RunStatus, execute
from serve_apps.telemetry import Telemetry
from twinloop.store import Store

if TYPE_CHECKING:
    from actors.sandbox_pool import RayExecutor, WorkerPool


class CapabilityService:
    """Base of the capability deployments; subclasses list their ``operations``."""

    name = "capability"
    # The run queue's shared worker pool (serve_apps.run_queue), set on the services it runs;
    # None: a background run that needs workers starts its own pool.
    worker_pool: WorkerPool | None = None

    def __init__(self, config: AppConfig, store: Store | None = None) -> None:
        self.config = config
        self.limits = config.limits
        self.store = store or open_store(
            config.settings.redis_url,
            config.settings.data_dir,
            timeout_s=config.settings.store_timeout_s,
        )
        self.runs = RunBook(self.store)
        self.telemetry = Telemetry()
        self.owner = f"{self.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def executor(
        self, label: str, on_result: Callable[[int, Any], None] | None = None
    ) -> RayExecutor:
        """The run queue's shared pool, else one sized to the cluster's free CPUs, at most
        ``sandbox.max_workers`` (a background run never starts a second pool beside the queue's:
        on a small node the two would wait for each other's CPUs)."""
        import ray

        from actors.sandbox_pool import RayExecutor

        if self.worker_pool is not None:
            return RayExecutor(pool=self.worker_pool, label=label, on_result=on_result)
        free = float(ray.available_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
        pool = self.config.sandbox
        workers = max(1, min(pool.max_workers, int(free // pool.cpus_per_worker)))
        return RayExecutor(workers, num_cpus=pool.cpus_per_worker, label=label, on_result=on_result)

    def submit_run(self, run_id: str) -> bool:
        """Hand a run this replica created to the application's run queue (the named actor the
        ingress starts). False without Ray or without the queue: the record then waits
        ``queued`` until a poll of ``GET /runs/{id}`` or an ingress start re-dispatches it."""
        import ray

        if not ray.is_initialized():
            return False
        try:
            queue = ray.get_actor(run_queue_name(self.config))
        except ValueError:
            return False
        queue.submit.remote(run_id)  # fire and forget: the record carries the outcome
        return True

    def background(self) -> Mapping[str, Callable[[Any, Progress], BaseModel]]:
        """Background-runnable operations: name → fn(request model, progress) -> result model."""
        return {}

    def operations(self) -> Mapping[str, Operation]:
        """The background operations on a stored body, validated by the operation's model."""

        def run(name: str, fn: Callable[[Any, Progress], BaseModel]) -> Operation:
            return lambda body, progress: fn(OPERATIONS[name].validate(body), progress)

        return {name: run(name, fn) for name, fn in self.background().items()}

    def validate_request(self, operation: str, request: Any) -> None:
        """Refuse (InvalidInput naming the field) what a background run of ``operation`` would
        refuse, before the edge answers 202; what pydantic checks needs nothing more here."""

    def ping(self) -> str:
        """Readiness: the replica is up and its store answers."""
        self.store.ping()
        return "ok"

    def execute_run(self, run_id: str) -> RunStatus | None:
        """Claim and run a background run; the outcome is written into its record."""
        operation = self.runs.get(run_id).operation
        self.telemetry.run_started(operation)
        status: RunStatus | None = None
        try:
            status = execute(self.runs, run_id, self.owner, self.operations())
        finally:
            self.telemetry.run_ended(operation, status or "not_claimed")
        return status
