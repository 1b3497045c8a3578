"""Routes of model retraining: ``POST /models/{family}/retrain`` starts a background run."""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime.
from typing import Annotated

from fastapi import Path
from fastapi.responses import Response

from serve_apps.operations import Operation
from serve_apps.routes.base import EdgeDep, OperationRouter, background
from serve_apps.schemas.retrain import RetrainBody, RetrainModelRequest
from twinloop.improve.pipeline import RetrainRun
from twinloop.registry.models import FAMILY_PATTERN

router = OperationRouter("twin")

RETRAIN_MODEL = Operation(
    name="retrain_model",
    capability="twin",
    method="POST",
    path="/models/{family}/retrain",
    request=RetrainModelRequest,
    response=RetrainRun,
    background="always",
    summary="Retrain a family after a failure; a confirmed candidate becomes a new version",
    tag="models",
)
FamilyPath = Annotated[str, Path(pattern=FAMILY_PATTERN)]


@router.endpoint(RETRAIN_MODEL)
async def retrain_model(family: FamilyPath, body: RetrainBody, edge: EdgeDep) -> Response:
    request = RetrainModelRequest(family=family, **body.model_dump())
    request.check(edge.config.limits)
    return await background(edge, RETRAIN_MODEL, request, "retraining runs in the background")
