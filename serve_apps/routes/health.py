"""Routes of the edge itself: health, with every mounted route and (deep) each capability's."""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime.
import asyncio
from typing import Literal

from fastapi import Query, Request
from fastapi.responses import Response

import twinloop
from serve_apps.clients import CapabilityClient
from serve_apps.errors import http_error
from serve_apps.operations import Operation
from serve_apps.routes.base import EdgeDep, OperationRouter, json_response
from serve_apps.schemas.base import Health

router = OperationRouter(None)

HEALTHZ = Operation(
    name="healthz",
    capability=None,
    method="GET",
    path="/healthz",
    response=Health,
    errors=False,
    tag="health",
)


@router.endpoint(HEALTHZ)
async def healthz(
    request: Request,
    edge: EdgeDep,
    deep: bool = Query(False, description="Also ping every capability deployment."),
) -> Response:
    async def ping(client: CapabilityClient) -> str:
        try:
            return str(await client.call("ping", timeout=5.0))
        except Exception as exc:
            return f"error: {http_error(exc)[1].message}"

    names = list(edge.capabilities)
    if deep:
        answers = await asyncio.gather(*(ping(edge.capabilities[n]) for n in names))
    else:
        answers = ["mounted"] * len(names)
    status = dict(zip(names, answers, strict=True))
    overall: Literal["ok", "degraded"] = (
        "ok" if all(s in ("ok", "mounted") for s in status.values()) else "degraded"
    )
    return json_response(
        Health(
            status=overall,
            version=twinloop.__version__,
            capabilities=status,
            routes=request.app.state.paths,
        )
    )
