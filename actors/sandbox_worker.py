"""`SandboxWorkerHost`: one worker of the sandbox's actor pool, running one universe at a time.

Like ``EnvironmentHost`` it is a plain class (testable without Ray) wrapped by ``ray.remote``.
It holds no state a replicate depends on: each task carries its spec and seed, so a worker that
dies costs only the replicates it had in flight, and any other worker re-runs them identically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray


class SandboxWorkerHost:
    """Runs ``fn(item)`` for the coordinator and says on which node it ran."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.done = 0

    def call(self, fn: Callable[[Any], Any], item: Any) -> tuple[Any, str | None]:
        result = fn(item)
        self.done += 1
        return result, self.node_id()

    def node_id(self) -> str | None:
        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None

    def ping(self) -> int:
        """Replicates this worker finished (a liveness probe that also reports progress)."""
        return self.done


SandboxWorker = ray.remote(SandboxWorkerHost)
