"""Routes of the twin's environment catalogue: list, fetch and store environments."""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime.
from fastapi.responses import Response

from serve_apps.operations import Operation
from serve_apps.routes.base import Call, IdPath, OperationRouter, json_response
from serve_apps.schemas.environments import EnvironmentCreate, EnvironmentDetail, EnvironmentList

router = OperationRouter("twin")

LIST_ENVIRONMENTS = Operation(
    name="list_environments",
    capability="twin",
    method="GET",
    path="/environments",
    response=EnvironmentList,
    errors=False,
    tag="environments",
)
GET_ENVIRONMENT = Operation(
    name="get_environment",
    capability="twin",
    method="GET",
    path="/environments/{environment_id}",
    response=EnvironmentDetail,
    tag="environments",
)
CREATE_ENVIRONMENT = Operation(
    name="create_environment",
    capability="twin",
    method="POST",
    path="/environments",
    request=EnvironmentCreate,
    response=EnvironmentDetail,
    status=201,
    location="/environments/{id}",
    tag="environments",
)


@router.endpoint(LIST_ENVIRONMENTS)
async def list_environments(call: Call) -> Response:
    return json_response(await call(LIST_ENVIRONMENTS))


@router.endpoint(GET_ENVIRONMENT)
async def get_environment(environment_id: IdPath, call: Call) -> Response:
    return json_response(await call(GET_ENVIRONMENT, environment_id))


router.declare(CREATE_ENVIRONMENT)
