"""The run queue: one bounded executor, over one shared worker pool, for every background run.

A background run used to execute inside a capability request slot and build its own actor pool
there: a flood of runs held every slot of the deployment while each waited for CPUs the
deployment's own replicas had taken, and the synchronous routes answered 504. Now the ingress
hands a run's id to :class:`RunQueue`, one named actor (``num_cpus=0``: it coordinates, the pool
computes) that executes at most ``sandbox.concurrent_runs`` runs at once on its own threads; the
others stay ``queued`` in their record (``GET /runs/{id}``) until a thread frees. Every sandbox,
simulation what-if and calibration run borrows the queue's one
:class:`~actors.sandbox_pool.WorkerPool` (at most ``sandbox.max_workers`` actors, sized to the
CPUs free when it starts, stopped after ``sandbox.idle_s`` without runs); a pool that cannot
start within ``sandbox.startup_timeout_s`` fails the run with ``unavailable`` and a message that
says so.

The actor is owned by the ingress replica that created it: it stops with the application. A run
lost with it is re-dispatched by the next poll once its lease ran out (``serve_apps.runs``).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors.sandbox_pool import WorkerPool
from serve_apps.capabilities.analyzer import AnalyzerService
from serve_apps.capabilities.base import CapabilityService
from serve_apps.capabilities.metrics import MetricsService
from serve_apps.capabilities.registry import RegistryService
from serve_apps.capabilities.twin import TwinService
from serve_apps.config import AppConfig, run_queue_name
from serve_apps.routes import OPERATIONS
from serve_apps.runs import RunBook

log = logging.getLogger("twinloop.serve")

SERVICES: dict[str, type[CapabilityService]] = {
    "twin": TwinService,
    "metrics": MetricsService,
    "analyzer": AnalyzerService,
    "registry": RegistryService,
}


@ray.remote(num_cpus=0)
class RunQueue:
    """Executes background runs, ``concurrent_runs`` at a time, over one shared worker pool."""

    def __init__(self, config: AppConfig) -> None:
        pool = config.sandbox
        self.config = config
        self.pool = WorkerPool(
            num_workers=1, num_cpus=pool.cpus_per_worker, startup_timeout=pool.startup_timeout_s
        )
        self.threads = ThreadPoolExecutor(pool.concurrent_runs, thread_name_prefix="run")
        self.waiting: set[str] = set()  # submitted and not finished: duplicates are dropped
        self.services: dict[str, CapabilityService] = {}
        self.book: RunBook | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, run_id: str) -> bool:
        """Queue a run; False when it is queued already (a re-dispatch of a waiting run)."""
        if run_id in self.waiting:
            return False
        self.waiting.add(run_id)
        task = asyncio.get_running_loop().create_task(self._run(run_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def depth(self) -> int:
        """Runs submitted and not finished (executing or waiting)."""
        return len(self.waiting)

    async def _run(self, run_id: str) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self.threads, self._execute, run_id)
        except Exception:
            log.exception("background run %s could not be executed", run_id)
        finally:
            self.waiting.discard(run_id)
        if not self.waiting:
            await asyncio.sleep(self.config.sandbox.idle_s)
            if not self.waiting:  # nothing came in meanwhile: give the CPUs back
                await asyncio.to_thread(self.pool.shutdown)

    def _execute(self, run_id: str) -> None:
        """Run one record with the capability that owns its operation (on a queue thread)."""
        if self.book is None:
            self.book = RunBook(self._service("twin").store)
        operation = OPERATIONS.get(self.book.get(run_id).operation)
        capability = operation.capability if operation is not None else None
        if capability not in SERVICES:
            raise ValueError(f"run {run_id}: no capability runs its operation")
        if not self.pool.workers:
            self.pool.num_workers = self._pool_size()
        self._service(capability).execute_run(run_id)

    def _service(self, name: str) -> CapabilityService:
        if name not in self.services:
            store = next(iter(self.services.values())).store if self.services else None
            service = SERVICES[name](self.config, store)
            service.worker_pool = self.pool
            self.services[name] = service
        return self.services[name]

    def _pool_size(self) -> int:
        """Workers that fit in the CPUs free now, at most ``max_workers``, at least one."""
        free = float(ray.available_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
        pool = self.config.sandbox
        return max(1, min(pool.max_workers, int(free // pool.cpus_per_worker)))


class RunQueueClient:
    """The ingress's side of the queue: finds (or starts) the named actor and submits to it."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.name = run_queue_name(config)
        self._actor: Any = None
        self._pending: set[asyncio.Task[None]] = set()

    def actor(self) -> Any:
        if self._actor is None:
            self._actor = RunQueue.options(  # type: ignore[attr-defined]
                name=self.name, get_if_exists=True
            ).remote(self.config)
        return self._actor

    def submit(self, run_id: str) -> None:
        """Hand a run to the queue without waiting (its record carries the outcome)."""
        task = asyncio.ensure_future(self._submit(run_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _submit(self, run_id: str) -> None:
        for _ in range(2):  # the queue died with the replica that owned it: start another
            try:
                await self.actor().submit.remote(run_id)
                return
            except RayActorError:
                self._actor = None
        log.error("run %s: the run queue is unreachable; a poll will re-dispatch it", run_id)
