"""Routes of the edge itself: health, with every mounted route and (deep) each capability's
and the store's (503 when degraded, so a probe reads the status code)."""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime.
import asyncio
from typing import Literal

from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

import twinloop
from serve_apps import store_health
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
    tag="health",
    answers=((503, Health, "degraded: a deployment or the store does not answer, or is empty"),),
    summary="Health; deep=true also pings every deployment and checks the store (503 degraded)",
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
    store = None
    if deep:  # all at once: a hung store costs one store timeout, not two
        *answers, store = await asyncio.gather(
            *(ping(edge.capabilities[n]) for n in names),
            run_in_threadpool(store_health.check, edge.runs.store),
        )
    else:
        answers = ["mounted"] * len(names)
    status = dict(zip(names, answers, strict=True))
    healthy = all(s in ("ok", "mounted") for s in status.values()) and store in (None, "ok")
    overall: Literal["ok", "degraded"] = "ok" if healthy else "degraded"
    health = Health(
        status=overall,
        version=twinloop.__version__,
        capabilities=status,
        store=store,
        routes=request.app.state.paths,
    )
    return json_response(health, 200 if healthy else 503)
