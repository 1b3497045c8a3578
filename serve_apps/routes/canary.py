"""Routes of canary deployments: predict through a family's router, canary weight, outcomes,
rollback, live state. The family's Serve application is ``serve_apps.family``."""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime.
from fastapi import Request
from fastapi.responses import Response

from serve_apps.clients import HandleClient
from serve_apps.family import FamilyRouters
from serve_apps.operations import Operation
from serve_apps.routes.base import Call, OperationRouter, json_response
from serve_apps.schemas.canary import (
    CanaryUpdate,
    CanaryView,
    OutcomeBatch,
    PredictRequest,
    PredictResult,
)
from twinloop.canary.manager import Outcome

router = OperationRouter("canary")
routers = FamilyRouters()  # this ingress replica's handles to the families' Routers

PREDICT = Operation(
    name="predict",
    capability="canary",
    method="POST",
    path="/models/{family}/predict",
    request=PredictRequest,
    response=PredictResult,
    summary="Scores from the version the unit is assigned to, and which version answered",
)
SET_CANARY = Operation(
    name="set_canary",
    capability="canary",
    errors=(409,),  # a concurrent change of the family's canary (compare-and-set)
    method="PUT",
    path="/models/{family}/canary",
    request=CanaryUpdate,
    response=CanaryView,
    summary="Send a share of units to a canary version (a reconfigure, not a redeploy)",
)
GET_CANARY = Operation(
    name="get_canary",
    capability="canary",
    method="GET",
    path="/models/{family}/canary",
    response=CanaryView,
)
ROLLBACK = Operation(
    name="rollback_canary",
    capability="canary",
    errors=(409,),  # a concurrent change of the family's canary (compare-and-set)
    method="POST",
    path="/models/{family}/rollback",
    response=CanaryView,
    summary="Every unit back to the champion, at once",
)
OUTCOMES = Operation(
    name="record_outcomes",
    capability="canary",
    errors=(409,),  # a concurrent change of the family's canary (compare-and-set)
    method="POST",
    path="/models/{family}/outcomes",
    request=OutcomeBatch,
    response=Outcome,
    summary="Outcome events, merged into per-version statistics before the answer",
)


@router.endpoint(PREDICT)
async def predict(family: str, body: PredictRequest, request: Request) -> Response:
    handle = await routers.get(family)
    client = HandleClient(handle)
    answer = await client.call("predict", body.unit_id, body.rows, timeout=request.state.deadline_s)
    return json_response(PredictResult.model_validate(answer))


@router.endpoint(SET_CANARY)
async def set_canary(family: str, body: CanaryUpdate, call: Call) -> Response:
    return json_response(await call(SET_CANARY, family, body))


@router.endpoint(GET_CANARY)
async def get_canary(family: str, call: Call) -> Response:
    return json_response(await call(GET_CANARY, family))


@router.endpoint(ROLLBACK)
async def rollback_canary(family: str, call: Call) -> Response:
    return json_response(await call(ROLLBACK, family))


@router.endpoint(OUTCOMES)
async def record_outcomes(
    family: str, body: OutcomeBatch, call: Call, request: Request
) -> Response:
    body.check(call.edge.config.limits)
    return json_response(await call(OUTCOMES, family, body))
