"""The sandbox coordinator: an actor pool that runs replicate tasks over every node of a cluster.

``RayExecutor`` implements the core's ``Executor`` protocol. It starts ``num_workers`` worker
actors (``num_cpus`` each, spread over the nodes), keeps each one fed with up to
``max_in_flight`` tasks, and yields results as they finish (``ray.wait``), so the caller's
progress bar and statistics advance while the run goes on. Each completion updates
``ray.util.metrics`` for the Ray dashboard (exported with a ``ray_`` prefix, counters with a
``_total`` suffix: ``ray_twinloop_sandbox_replicates_done_total``,
``ray_twinloop_sandbox_customer_days_per_second`` …).

Fault tolerance: when a worker dies (``ray.kill``, a lost node, an OOM kill) every task it had in
flight fails with ``RayActorError``; those tasks — and only those — go back to the front of the
queue with the same item (so the same seed), and a fresh worker takes the dead one's place.
Since a replicate is a pure function of its task and the reducers sort by replicate, the final
result is identical to a fault-free run.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import ray
from ray.exceptions import RayActorError, RayTaskError
from ray.util.metrics import Counter, Gauge

from actors.sandbox_worker import SandboxWorker
from twinloop.errors import ResourcesUnavailable
from twinloop.sandbox.executor import ExecutorStats

T = TypeVar("T")
R = TypeVar("R")

_METRICS: dict[str, Any] = {}


def _metrics() -> dict[str, Any]:
    """The sandbox's Ray metrics, created once per process (tag: the run's label)."""
    if not _METRICS:
        tags = ("run",)
        _METRICS.update(
            done=Counter("twinloop_sandbox_replicates_done", "Replicates finished.", tag_keys=tags),
            retried=Counter(
                "twinloop_sandbox_replicates_retried",
                "Replicates re-run after their worker was lost.",
                tag_keys=tags,
            ),
            customer_days=Counter(
                "twinloop_sandbox_customer_days", "Customer-days simulated.", tag_keys=tags
            ),
            rate=Gauge(
                "twinloop_sandbox_customer_days_per_second",
                "Aggregate simulation throughput of the current run.",
                tag_keys=tags,
            ),
            in_flight=Gauge(
                "twinloop_sandbox_replicates_in_flight", "Replicates running.", tag_keys=tags
            ),
            workers=Gauge("twinloop_sandbox_workers", "Live pool workers.", tag_keys=tags),
        )
    return _METRICS


class WorkerPool:
    """Sandbox worker actors, started on first use and replaced one by one when they die.

    A :class:`RayExecutor` owns one for a single run, or borrows a shared one: the background
    runs of the Serve app all use one pool (``serve_apps.run_queue``), so a flood of runs never
    asks the cluster for more workers than the pool holds. ``generation[slot]`` counts the
    replacements of a slot, so two runs that both saw its worker die replace it once.
    """

    def __init__(
        self,
        num_workers: int | None = None,
        *,
        num_cpus: float = 1.0,
        scheduling_strategy: str = "SPREAD",
        startup_timeout: float = 300.0,
    ) -> None:
        if num_workers is not None and num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        if num_cpus <= 0:
            raise ValueError(f"num_cpus must be > 0, got {num_cpus}")
        self.num_workers = num_workers
        self.num_cpus = num_cpus
        self.scheduling_strategy = scheduling_strategy
        self.startup_timeout = startup_timeout
        self.workers: list[Any] = []
        self.generation: list[int] = []
        self._lock = threading.Lock()

    def _spawn(self, index: int) -> Any:
        return SandboxWorker.options(
            num_cpus=self.num_cpus,
            scheduling_strategy=self.scheduling_strategy,
            max_restarts=0,
        ).remote(index)

    def ensure(self) -> None:
        """Start the workers unless they run; ResourcesUnavailable when the cluster cannot."""
        with self._lock:
            if self.workers:
                return
            count = self.num_workers
            if count is None:
                cpus = float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]
                count = max(1, int(cpus // self.num_cpus))
            workers = [self._spawn(i) for i in range(count)]
            # An actor that cannot be placed waits forever; fail loudly instead of hanging.
            ready, _ = ray.wait(
                [w.ping.remote() for w in workers], num_returns=count, timeout=self.startup_timeout
            )
            if len(ready) < count:
                for worker in workers:
                    ray.kill(worker)
                raise ResourcesUnavailable(
                    f"only {len(ready)} of {count} sandbox workers started within "
                    f"{self.startup_timeout:g} s: the cluster lacks free CPUs for {count} "
                    f"workers of num_cpus={self.num_cpus:g} (is another pool holding them?)"
                )
            self.workers, self.generation = workers, [0] * count

    def replace(self, slot: int, generation: int) -> None:
        """Kill what is left of a dead worker and start a fresh one, unless already done."""
        with self._lock:
            if not self.workers or self.generation[slot] != generation:
                return
            # It is usually gone already; killing it again makes sure and cannot hurt.
            with contextlib.suppress(Exception):
                ray.kill(self.workers[slot])
            self.workers[slot] = self._spawn(slot)
            self.generation[slot] += 1

    def shutdown(self) -> None:
        """Stop every worker of the pool (the next ``ensure`` starts new ones)."""
        with self._lock:
            for worker in self.workers:
                ray.kill(worker)
            self.workers, self.generation = [], []


class RayExecutor:
    """An actor pool that runs items anywhere on the cluster and yields results as they finish.

    ``pool`` lends a shared :class:`WorkerPool` (not stopped on exit); without it the executor
    starts its own (``num_workers``, ``num_cpus`` …) and stops it on exit.
    ``submit_order_seed`` submits the items in a seeded random order (tests use it to show the
    result does not depend on completion order). ``on_result(position, result)`` is called after
    every completion, before the result is yielded.
    """

    def __init__(
        self,
        num_workers: int | None = None,
        *,
        num_cpus: float = 1.0,
        max_in_flight: int = 2,
        max_attempts: int = 4,
        scheduling_strategy: str = "SPREAD",
        submit_order_seed: int | None = None,
        on_result: Callable[[int, Any], None] | None = None,
        label: str = "sandbox",
        startup_timeout: float = 300.0,
        pool: WorkerPool | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.owns_pool = pool is None
        self.pool = pool or WorkerPool(
            num_workers,
            num_cpus=num_cpus,
            scheduling_strategy=scheduling_strategy,
            startup_timeout=startup_timeout,
        )
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self.submit_order_seed = submit_order_seed
        self.on_result = on_result
        self.tags = {"run": label}
        self._nodes: set[str] = set()
        self._retried = 0

    @property
    def workers(self) -> list[Any]:
        return self.pool.workers

    def shutdown(self) -> None:
        """Stop the pool's workers if the pool is this executor's own."""
        if self.owns_pool:
            self.pool.shutdown()
        _metrics()["workers"].set(0, tags=self.tags)

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ map
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """Run ``fn`` over ``items`` on the pool; yield ``(position, result)`` as each finishes."""
        if not items:
            return
        pool = self.pool
        pool.ensure()
        metrics = _metrics()
        metrics["workers"].set(len(pool.workers), tags=self.tags)
        order = list(range(len(items)))
        if self.submit_order_seed is not None:
            rng = np.random.default_rng(self.submit_order_seed)
            order = [int(i) for i in rng.permutation(order)]
        pending = deque(order)
        attempts = [0] * len(items)
        in_flight: dict[Any, tuple[int, int, int]] = {}  # ref → (position, slot, generation)
        start, customer_days = time.perf_counter(), 0.0
        while pending or in_flight:
            self._feed(fn, items, pending, attempts, in_flight)
            metrics["in_flight"].set(len(in_flight), tags=self.tags)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                position, slot, generation = in_flight.pop(ref)
                try:
                    result, node = ray.get(ref)
                except RayTaskError as exc:
                    # The replicate itself failed (bad input, a predictor's error): no retry.
                    raise exc.as_instanceof_cause() from None  # type: ignore[no-untyped-call]
                except RayActorError:
                    self._requeue(position, attempts, pending, metrics)
                    pool.replace(slot, generation)
                    continue
                if node:
                    self._nodes.add(node)
                customer_days += float(getattr(result, "customer_days", 0.0))
                metrics["done"].inc(1, tags=self.tags)
                metrics["customer_days"].inc(
                    float(getattr(result, "customer_days", 0.0)), tags=self.tags
                )
                elapsed = max(time.perf_counter() - start, 1e-9)
                metrics["rate"].set(customer_days / elapsed, tags=self.tags)
                if self.on_result is not None:
                    self.on_result(position, result)
                yield position, result
        metrics["in_flight"].set(0, tags=self.tags)

    def _feed(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        pending: deque[int],
        attempts: list[int],
        in_flight: dict[Any, tuple[int, int, int]],
    ) -> None:
        """Keep every live worker busy with up to ``max_in_flight`` of this run's tasks.

        The load counts only tasks sent to a slot's current worker: those sent to a worker that
        died (and was replaced, by this run or another) come back as failures and are re-queued.
        """
        pool = self.pool
        pool.ensure()  # a shared pool stopped while idle starts again
        load = [0] * len(pool.workers)
        for _, slot, generation in in_flight.values():
            if generation == pool.generation[slot]:
                load[slot] += 1
        for slot in range(len(pool.workers)):
            while load[slot] < self.max_in_flight and pending:
                position = pending.popleft()
                attempts[position] += 1
                ref = pool.workers[slot].call.remote(fn, items[position])
                in_flight[ref] = (position, slot, pool.generation[slot])
                load[slot] += 1

    def _requeue(
        self, position: int, attempts: list[int], pending: deque[int], metrics: dict[str, Any]
    ) -> None:
        """Put a task lost with its worker back at the front of the queue (same item, same seed)."""
        if attempts[position] >= self.max_attempts:
            raise RuntimeError(
                f"task {position} was lost with its worker {attempts[position]} times; giving up"
            )
        pending.appendleft(position)
        self._retried += 1
        metrics["retried"].inc(1, tags=self.tags)

    def stats(self) -> ExecutorStats:
        return ExecutorStats(
            executor="ray",
            workers=len(self.pool.workers),
            nodes=sorted(self._nodes),
            retried=self._retried,
        )


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the configured cluster, or start a private local Ray, unless already connected.

    Inside ``ray job submit`` the job's ``RAY_ADDRESS`` names the cluster. Without an address
    we ask for ``"local"`` explicitly: a bare ``ray.init()`` would join whatever cluster the
    last ``ray start`` on this machine recorded, which on a shared machine may be someone else's.
    """
    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS") or "local"
    ray.init(
        address=target,
        num_cpus=num_cpus if target == "local" else None,
        log_to_driver=False,
        configure_logging=False,
    )
