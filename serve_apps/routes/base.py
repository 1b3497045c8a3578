"""Routers built from operation declarations, and what every route gets through ``Depends``.

An :class:`OperationRouter` is one capability's ``APIRouter``: ``router.declare(op)`` mounts a POST
whose body is ``op.request`` and whose work is the capability method ``op.name`` — checked
against the limits, answered inline within the request's deadline, or run in the background as
``op.background`` allows — with no endpoint to write. ``@router.endpoint(op)`` mounts a
hand-written endpoint (GETs with path or query parameters). Either way the route's method, path,
statuses, documented answers and bearer-token dependency come from the declaration.

Dependencies: :data:`EdgeDep` (the replica's :class:`~serve_apps.dispatch.Edge`), :data:`Call`
(call an operation's capability within the request's deadline), :func:`authorized`.
"""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime, and a
# generated endpoint's body is annotated with its operation's request model.
import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from serve_apps.dispatch import Edge
from serve_apps.errors import Unauthorized
from serve_apps.operations import Operation
from serve_apps.runs import Deferred
from serve_apps.schemas.base import EdgeModel, RunAccepted

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
Endpoint = Callable[..., Awaitable[Response]]


def get_edge(request: Request) -> Edge:
    """The replica's Edge (``create_api`` keeps it in ``app.state``)."""
    edge: Edge = request.app.state.edge
    return edge


EdgeDep = Annotated[Edge, Depends(get_edge)]
bearer = HTTPBearer(
    auto_error=False,
    description="Required on every non-GET route when TWINLOOP_API_TOKEN is set.",
)


async def authorized(
    edge: EdgeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Refuse a mutating request without the configured bearer token (401)."""
    token = edge.config.settings.api_token
    if token is None:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(
            "authorization: this route needs the header 'Authorization: Bearer <token>'"
        )
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise Unauthorized("authorization: the bearer token is not valid")


class Caller:
    """Calls an operation's capability (method ``op.name``) within the request's deadline."""

    def __init__(self, edge: Edge, request: Request) -> None:
        self.edge = edge
        self.deadline_s: float = request.state.deadline_s

    async def __call__(self, op: Operation, *args: Any) -> Any:
        return await self.edge.client(op).call(op.name, *args, timeout=self.deadline_s)


def caller(edge: EdgeDep, request: Request) -> Caller:
    return Caller(edge, request)


Call = Annotated[Caller, Depends(caller)]
IdPath = Annotated[str, Path(pattern=ID_PATTERN)]


def json_response(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A pydantic model as JSON (NaN → null), skipping FastAPI's second validation pass."""
    return Response(
        model.model_dump_json(), status_code=status, headers=headers, media_type="application/json"
    )


def wants_background(request: Request) -> bool:
    """RFC 7240: ``Prefer: respond-async`` asks for a 202 and a run to poll."""
    prefer = request.headers.get("prefer", "")
    return any(p.strip().lower() == "respond-async" for p in prefer.split(","))


async def background(edge: Edge, op: Operation, body: BaseModel, why: str) -> Response:
    """Keep the request as a run record, hand it to the capability, answer 202."""
    # exclude_unset: the record keeps what the client sent, so re-validating it in the
    # capability sees the same fields (``environmentId`` without a defaulted ``environment``).
    sent = body.model_dump(mode="json", exclude_unset=True)
    record = await run_in_threadpool(edge.runs.create, op.name, sent)
    edge.dispatch(record)
    location = f"/runs/{record.id}"
    accepted = RunAccepted(id=record.id, operation=op.name, location=location, reason=why)
    return json_response(accepted, 202, {"Location": location})


async def submit(edge: Edge, op: Operation, body: EdgeModel, request: Request) -> Response:
    """Answer inline within the deadline, or 202 with a run id (asked for, or too big)."""
    body.check(edge.config.limits)
    if op.background == "always":
        return await background(edge, op, body, "this operation always runs in the background")
    if op.background == "on_request" and wants_background(request):
        response = await background(edge, op, body, "Prefer: respond-async")
        response.headers["Preference-Applied"] = "respond-async"
        return response
    client = edge.client_for(op, body, getattr(request.state, "body_bytes", 0))
    result = await client.call(op.name, body, timeout=request.state.deadline_s)
    if isinstance(result, Deferred):
        if op.background == "never":
            raise TypeError(f"{op.name} cannot run in the background")  # a capability bug
        return await background(edge, op, body, result.reason)
    headers = None
    if op.location is not None:
        headers = {"Location": op.location.format(**dict(result))}
    return json_response(result, op.status, headers)


def submit_endpoint(op: Operation) -> Endpoint:
    """The endpoint of a POST whose body is ``op.request``: :func:`submit` does the work."""
    body_model = op.request

    async def endpoint(
        body: body_model,  # type: ignore[valid-type]
        request: Request,
        edge: EdgeDep,
    ) -> Response:
        return await submit(edge, op, body, request)

    return endpoint


class OperationRouter(APIRouter):
    """One capability's routes, each from its :class:`Operation` (see the module docstring).

    ``capability`` is the deployment every operation here needs (``None``: the edge's own);
    ``create_api`` mounts the router only when that deployment exists.
    """

    def __init__(self, capability: str | None) -> None:
        super().__init__()
        self.capability = capability
        self.operations: list[Operation] = []

    def declare(self, op: Operation) -> Operation:
        """Mount a POST taking ``op.request`` and answered by the capability's ``op.name``."""
        if op.method != "POST" or op.request is None:
            raise ValueError(f"{op.name}: a generated route is a POST with a request model")
        self._add(op, submit_endpoint(op))
        return op

    def endpoint(self, op: Operation) -> Callable[[Endpoint], Endpoint]:
        """Mount a hand-written endpoint for ``op`` (path and query parameters are its own)."""

        def mount(fn: Endpoint) -> Endpoint:
            self._add(op, fn)
            return fn

        return mount

    def _add(self, op: Operation, fn: Endpoint) -> None:
        if op.capability != self.capability:
            raise ValueError(f"{op.name} belongs to {op.capability!r}, not {self.capability!r}")
        dependencies = [Depends(authorized)] if op.mutating else None
        self.add_api_route(op.path, fn, dependencies=dependencies, **op.route_options())
        self.operations.append(op)
