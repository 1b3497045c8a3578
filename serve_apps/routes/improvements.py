"""Routes of the improvement loop: start one, follow it, cancel it; pre-flight; the KPIs."""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime.
from fastapi.responses import Response

from serve_apps.operations import Operation
from serve_apps.routes.base import Call, IdPath, OperationRouter, json_response
from serve_apps.schemas.improvements import ImprovementCreate, ImprovementDrive, PreflightRequest
from twinloop.loop import Improvement
from twinloop.loop.kpis import LoopKpis
from twinloop.loop.preflight import Preflight

router = OperationRouter("analyzer")

START_IMPROVEMENT = router.declare(
    Operation(
        name="start_improvement",
        capability="analyzer",
        method="POST",
        path="/improvements",
        request=ImprovementCreate,
        response=Improvement,
        status=201,
        location="/improvements/{id}",
        tag="improvements",
    )
)
GET_IMPROVEMENT = Operation(
    name="get_improvement",
    capability="analyzer",
    method="GET",
    path="/improvements/{improvement_id}",
    response=Improvement,
    tag="improvements",
)
CANCEL_IMPROVEMENT = Operation(
    name="cancel_improvement",
    capability="analyzer",
    method="POST",
    path="/improvements/{improvement_id}/cancel",
    response=Improvement,
    tag="improvements",
)
RESUME_IMPROVEMENT = Operation(
    name="drive_improvement",  # also the background run that drives an improvement
    capability="analyzer",
    method="POST",
    path="/improvements/{improvement_id}/resume",
    request=ImprovementDrive,  # the run's stored body; the route itself takes none
    response=Improvement,
    status=202,
    tag="improvements",
    summary="Drive the improvement's remaining stages in the background (after a stall)",
)
PREFLIGHT = router.declare(
    Operation(
        name="preflight",
        capability="analyzer",
        method="POST",
        path="/preflight",
        request=PreflightRequest,
        response=Preflight,
        tag="improvements",
    )
)
KPIS = Operation(
    name="kpis",
    capability="analyzer",
    method="GET",
    path="/kpis",
    response=LoopKpis,
    tag="improvements",
)


@router.endpoint(GET_IMPROVEMENT)
async def get_improvement(improvement_id: IdPath, call: Call) -> Response:
    return json_response(await call(GET_IMPROVEMENT, improvement_id))


@router.endpoint(CANCEL_IMPROVEMENT)
async def cancel_improvement(improvement_id: IdPath, call: Call) -> Response:
    return json_response(await call(CANCEL_IMPROVEMENT, improvement_id))


@router.endpoint(RESUME_IMPROVEMENT)
async def resume_improvement(improvement_id: IdPath, call: Call) -> Response:
    improvement = await call(RESUME_IMPROVEMENT, improvement_id)
    return json_response(improvement, 202, {"Location": f"/improvements/{improvement_id}"})


@router.endpoint(KPIS)
async def kpis(call: Call) -> Response:
    return json_response(await call(KPIS))
