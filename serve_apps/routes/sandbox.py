"""Routes of the model performance sandbox: one model, head-to-head, grid, A/B test in the twin."""

from serve_apps.operations import Operation
from serve_apps.routes.base import OperationRouter
from serve_apps.schemas.sandbox import (
    AbTestRequest,
    GridRequest,
    HeadToHeadRequest,
    SandboxTestRequest,
)
from twinloop.sandbox.results import AbTestResult, GridResult, HeadToHeadResult, SandboxTestResult

router = OperationRouter("twin")

SANDBOX_TEST = router.declare(
    Operation(
        name="sandbox_test",
        capability="twin",
        method="POST",
        path="/sandbox/test",
        request=SandboxTestRequest,
        response=SandboxTestResult,
        background="on_request",
        summary="Test one model over Monte Carlo replicates",
        tag="sandbox",
    )
)
SANDBOX_COMPARE = router.declare(
    Operation(
        name="sandbox_compare",
        capability="twin",
        method="POST",
        path="/sandbox/compare",
        request=HeadToHeadRequest,
        response=HeadToHeadResult,
        background="on_request",
        summary="Head-to-head: baseline vs challenger on common random numbers",
        tag="sandbox",
    )
)
SANDBOX_GRID = router.declare(
    Operation(
        name="sandbox_grid",
        capability="twin",
        method="POST",
        path="/sandbox/grid",
        request=GridRequest,
        response=GridResult,
        background="on_request",
        summary="Parallel universes: scenarios × models",
        tag="sandbox",
    )
)
SANDBOX_AB_TEST = router.declare(
    Operation(
        name="sandbox_ab_test",
        capability="twin",
        method="POST",
        path="/sandbox/ab-test",
        request=AbTestRequest,
        response=AbTestResult,
        background="on_request",
        summary="An A/B test with traffic allocation inside the twin",
        tag="sandbox",
    )
)
