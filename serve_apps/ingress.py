"""The HTTP API: one FastAPI app per ingress replica, its routes mounted from capability routers.

``create_api(edge)`` builds the app around an :class:`~serve_apps.dispatch.Edge` — the replica's
config, run book and one client per capability deployment — and mounts the routers of
``serve_apps.routes`` whose capability exists, so none pretends to serve a missing one. Every
route is derived from its operation's declaration (``serve_apps.operations``); every non-GET
route needs the bearer token when one is configured. A capability POST answers inline within the
request's deadline, or — with ``Prefer: respond-async``, or when the work is always long — 202
with a run id to poll at ``GET /runs/{run_id}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import twinloop
from serve_apps.dispatch import Edge, recover_runs
from serve_apps.docs_ui import mount_docs
from serve_apps.edge import EdgeMiddleware, error_json
from serve_apps.errors import from_validation, http_error, http_status_body
from serve_apps.routes import ROUTERS
from twinloop.errors import InvalidInput

__all__ = ["Edge", "create_api"]


def create_api(edge: Edge) -> FastAPI:
    """The FastAPI app of one ingress replica (see the module docstring)."""
    mounted = [r for r in ROUTERS if r.capability is None or r.capability in edge.capabilities]
    edge = dataclasses.replace(
        edge, operations={op.name: op for r in mounted for op in r.operations}
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await recover_runs(edge)
        yield

    api = FastAPI(
        lifespan=lifespan,
        title="twinloop",
        version=twinloop.__version__,
        description="Prove an A/B loss, explain it, price it, and test fixes in a digital twin. "
        "Errors: JSON `{code, field, message}`; 422 names the field, 413 the limit.",
        docs_url=None,  # /docs is served offline by docs_ui.mount_docs
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    api.state.edge = edge
    mount_docs(api)
    api.add_middleware(EdgeMiddleware, limits=edge.config.limits, telemetry=edge.telemetry)
    api.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    api.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    for router in mounted:
        api.include_router(router)
    # Every path served, for GET /healthz (FastAPI keeps included routers as nested entries).
    api.state.paths = sorted(
        {getattr(r, "path", "") for r in [*api.routes, *(x for r in mounted for x in r.routes)]}
        - {""}
    )
    return api


async def _validation(request: Request, exc: RequestValidationError) -> Response:
    """A body, path or query FastAPI refused: 422 naming the first field, all of them listed."""
    errors = exc.errors()
    status, body = http_error(from_validation(errors, drop=("body", "path", "query", "header")))
    if errors and isinstance(errors[0].get("ctx", {}).get("error"), InvalidInput):
        # One of our validators named the field itself (e.g. inside testResult): that is all.
        return Response(error_json(body), status_code=status, media_type="application/json")
    details = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or "body",
            "message": str(e.get("msg", "")),
        }
        for e in errors[:20]
    ]
    body = body.model_copy(update={"errors": details})
    return Response(error_json(body), status_code=status, media_type="application/json")


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    """Starlette's own errors (unknown path, wrong method) in the JSON error shape."""
    body = http_status_body(exc.status_code, str(exc.detail))
    return Response(
        error_json(body),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )
