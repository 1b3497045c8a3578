"""What every capability deployment shares: its store, its run executor, its telemetry.

A capability is a plain class; ``serve_apps.app`` wraps it with ``serve.deployment`` (Ray's
"type hints" pattern), so it can also be built and called in a unit test without Ray. Public
methods are the operations the ingress calls through a ``DeploymentHandle``; each returns its
result or a :class:`~serve_apps.errors.Failure` (never raises for bad input).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping

from cluster.store_factory import open_store
from serve_apps.config import AppConfig
from serve_apps.errors import returns_failures
from serve_apps.runs import Operation, RunBook, RunStatus, execute
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

    def operations(self) -> Mapping[str, Operation]:
        """Background-runnable operations: name → fn(request dict, progress) -> result model."""
        return {}

    def ping(self) -> str:
        """Readiness: the replica is up and its store answers."""
        self.store.ping()
        return "ok"

    @returns_failures
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
