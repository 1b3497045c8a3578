"""The HTTP routes, one router per capability, each built from its operations' declarations.

``ROUTERS`` is the mounting order (it is the order of the OpenAPI document's paths);
``create_api`` mounts a router when its capability deployment exists. ``OPERATIONS`` is every
declared operation by name — what a capability replica validates a background run's body with.
To add a capability's routes, see docs/api.md, "Adding a route".
"""

from serve_apps.operations import Operation
from serve_apps.routes import (
    analyzer,
    canary,
    environments,
    health,
    improvements,
    metrics,
    models,
    registry,
    runs,
    sandbox,
    simulation,
)
from serve_apps.routes.base import OperationRouter

ROUTERS: tuple[OperationRouter, ...] = (
    health.router,
    runs.router,
    environments.router,
    sandbox.router,
    analyzer.router,
    improvements.router,
    metrics.router,
    simulation.router,
    models.router,
    registry.router,
    canary.router,
)
OPERATIONS: dict[str, Operation] = {op.name: op for r in ROUTERS for op in r.operations}
if len(OPERATIONS) != sum(len(r.operations) for r in ROUTERS):  # pragma: no cover
    raise ImportError("two operations share a name; each name is a capability method and a run")
