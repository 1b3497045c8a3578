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
from typing import Any

from pydantic import BaseModel

from cluster.store_factory import open_store
from serve_apps.config import AppConfig
from serve_apps.routes import OPERATIONS
from serve_apps.runs import Operation, Progress, RunBook, RunStatus, execute
from serve_apps.telemetry import Telemetry
from twinloop.store import Store


class CapabilityService:
    """Base of the capability deployments; subclasses list their ``operations``."""

    name = "capability"

    def __init__(self, config: AppConfig, store: Store | None = None) -> None:
        self.config = config
        self.limits = config.limits
        self.store = store or open_store(config.settings.redis_url, config.settings.data_dir)
        self.runs = RunBook(self.store)
        self.telemetry = Telemetry()
        self.owner = f"{self.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def background(self) -> Mapping[str, Callable[[Any, Progress], BaseModel]]:
        """Background-runnable operations: name → fn(request model, progress) -> result model."""
        return {}

    def operations(self) -> Mapping[str, Operation]:
        """The background operations on a stored body, validated by the operation's model."""

        def run(name: str, fn: Callable[[Any, Progress], BaseModel]) -> Operation:
            return lambda body, progress: fn(OPERATIONS[name].validate(body), progress)

        return {name: run(name, fn) for name, fn in self.background().items()}

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
