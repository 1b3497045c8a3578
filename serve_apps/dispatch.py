"""Who answers an operation: this ingress replica, the capability deployment, or a background run.

An :class:`Edge` is everything the routes of one ingress replica use — its config, its run book,
one :class:`~serve_apps.clients.CapabilityClient` per capability deployment, and the operations
it serves (``op.capability`` names the deployment that answers each one). The same routes run
under Serve (clients wrap ``DeploymentHandle``s) and in a unit test (clients wrap plain objects).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from serve_apps.clients import CapabilityClient
from serve_apps.config import AppConfig
from serve_apps.operations import Operation
from serve_apps.runs import RunBook, RunRecord
from serve_apps.schemas.base import EdgeModel
from serve_apps.telemetry import Telemetry

log = logging.getLogger("twinloop.serve")


@dataclass
class Edge:
    """Everything the routes of one ingress replica use.

    ``operations`` are those of the mounted routers (``create_api`` fills it in): a background
    run names its operation, and any replica re-dispatches it to that operation's capability.
    """

    config: AppConfig
    runs: RunBook
    capabilities: Mapping[str, CapabilityClient]
    telemetry: Telemetry = field(default_factory=Telemetry)
    # The same capability classes inside this replica, for bounded requests (see ``client_for``).
    in_replica: Mapping[str, CapabilityClient] = field(default_factory=dict)
    operations: Mapping[str, Operation] = field(default_factory=dict)

    def client(self, op: Operation) -> CapabilityClient:
        """The capability deployment that answers ``op``."""
        if op.capability is None:
            raise ValueError(f"operation {op.name!r} is the edge's own")  # a declaration bug
        return self.capabilities[op.capability]

    def client_for(self, op: Operation, body: EdgeModel, body_bytes: int) -> CapabilityClient:
        """Who answers an inline request: this replica for small bounded work, else the
        capability deployment.

        A summary-form analysis or an analytic what-if takes 1-2 ms; one DeploymentHandle round
        trip costs more than that, so routing them over a handle would make the hop the work.
        Anything that reads or fits a table (rows, a history) goes to the deployment, which
        scales on its own.
        """
        local = self.in_replica.get(op.capability or "")
        if (
            local is not None
            and body.bounded()
            and body_bytes <= self.config.limits.ingress_answer_bytes
        ):
            return local
        return self.client(op)

    def runnable(self, record: RunRecord) -> bool:
        """True when a mounted capability runs this record's operation."""
        return record.operation in self.operations

    def dispatch(self, record: RunRecord) -> None:
        """Hand a run to the capability that owns its operation."""
        self.client(self.operations[record.operation]).fire("execute_run", record.id)


async def recover_runs(edge: Edge) -> int:
    """Re-dispatch runs left orphaned by a restart (their lease ran out); returns how many."""
    now = edge.runs.clock()
    found = 0
    for status in ("queued", "running"):
        for record in await run_in_threadpool(edge.runs.recent, status, 500):
            if record.orphaned(now) and edge.runnable(record):
                edge.dispatch(record)
                found += 1
    if found:
        log.warning("re-dispatched %d orphaned background runs", found)
    return found
