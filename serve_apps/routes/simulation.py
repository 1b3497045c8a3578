"""Route of the simulation what-if: the twin re-run with changed parameters.

It sits under ``/metrics`` beside the analytic what-if, but the Twin deployment answers it (its
replicas own the environments), so it is the twin's router, mounted after the metrics routes.
"""

from serve_apps.operations import Operation
from serve_apps.routes.base import OperationRouter
from serve_apps.schemas.sandbox import SimWhatIfRequest
from twinloop.replication.whatif.simulated import SimWhatIfResult

router = OperationRouter("twin")

WHAT_IF_SIM = router.declare(
    Operation(
        name="what_if_sim",
        capability="twin",
        method="POST",
        path="/metrics/what-if/simulate",
        request=SimWhatIfRequest,
        response=SimWhatIfResult,
        background="on_request",
        summary="What-if by re-running the twin with changed parameters",
        tag="metrics",
    )
)
