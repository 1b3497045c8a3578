"""The HTTP API: one FastAPI app per ingress replica, calling capability deployments by handle.

``create_api(edge)`` builds the app around an :class:`Edge` — the replica's config, run book and
one :class:`CapabilityClient` per capability deployment — so the same routes run under Serve
(clients wrap ``DeploymentHandle``s) and in a unit test (clients wrap plain objects). Routes are
mounted only for capabilities that exist. Every non-GET route needs the bearer token when one is
configured. A capability POST answers inline within the request's deadline, or — with
``Prefer: respond-async``, or when the work is always long — 202 with a run id to poll at
``GET /runs/{run_id}``.
"""

# No `from __future__ import annotations`: FastAPI resolves route annotations at runtime, and
# the routes are closures over local names.
import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import twinloop
from serve_apps.clients import CapabilityClient
from serve_apps.config import AppConfig
from serve_apps.docs_ui import mount_docs
from serve_apps.edge import EdgeMiddleware, error_json
from serve_apps.errors import (
    ErrorBody,
    Unauthorized,
    from_validation,
    http_error,
    http_status_body,
)
from serve_apps.runs import Deferred, RunBook, RunRecord, RunStatus
from serve_apps.schemas import (
    AbTestRequest,
    AnalyzeRequest,
    AnomaliesRequest,
    AnomaliesResponse,
    CalibrateRequest,
    CalibrateResponse,
    CorrelationsRequest,
    EdgeModel,
    EnvironmentCreate,
    EnvironmentDetail,
    EnvironmentList,
    GridRequest,
    HeadToHeadRequest,
    Health,
    PatternList,
    RunAccepted,
    SandboxTestRequest,
    SimWhatIfRequest,
    SyntheticRequest,
    SyntheticResponse,
    WhatIfRequest,
)
from serve_apps.telemetry import Telemetry
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.replication.correlation import CorrelationResult
from twinloop.replication.whatif.analytic import WhatIfResult
from twinloop.replication.whatif.simulated import SimWhatIfResult
from twinloop.sandbox.results import AbTestResult, GridResult, HeadToHeadResult, SandboxTestResult

log = logging.getLogger("twinloop.serve")
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (401, "missing or wrong bearer token"),
        (404, "unknown id"),
        (413, "request larger than a limit (the body names it)"),
        (422, "invalid input (the body names the field)"),
        (504, "past the request deadline"),
    ]
}
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": RunAccepted, "description": "running in the background; poll the location"}
}

# Which capability deployment runs each background operation.
OPERATIONS: dict[str, str] = {
    "what_if": "metrics",
    "what_if_sim": "twin",  # the simulation what-if runs the twin, whose replicas own environments
    "correlations": "metrics",
    "synthetic": "metrics",
    "anomalies": "metrics",
    "calibrate": "metrics",
    "sandbox_test": "twin",
    "sandbox_compare": "twin",
    "sandbox_grid": "twin",
    "sandbox_ab_test": "twin",
    "analyze_failure": "analyzer",
}


@dataclass
class Edge:
    """Everything the routes of one ingress replica use."""

    config: AppConfig
    runs: RunBook
    capabilities: Mapping[str, CapabilityClient]
    telemetry: Telemetry = field(default_factory=Telemetry)
    # The same capability classes inside this replica, for bounded requests (see ``client_for``).
    in_replica: Mapping[str, CapabilityClient] = field(default_factory=dict)

    def client_for(self, operation: str, body: EdgeModel, body_bytes: int) -> CapabilityClient:
        """Who answers an inline request: this replica for small bounded work, else the
        capability deployment.

        A summary-form analysis or an analytic what-if takes 1-2 ms; one DeploymentHandle round
        trip costs more than that, so routing them over a handle would make the hop the work.
        Anything that reads or fits a table (rows, a history) goes to the deployment, which
        scales on its own.
        """
        name = OPERATIONS[operation]
        local = self.in_replica.get(name)
        if (
            local is not None
            and body.bounded()
            and body_bytes <= self.config.limits.ingress_answer_bytes
        ):
            return local
        return self.capabilities[name]

    def dispatch(self, record: RunRecord) -> None:
        """Hand a run to the capability that owns its operation."""
        self.capabilities[OPERATIONS[record.operation]].fire("execute_run", record.id)


async def recover_runs(edge: Edge) -> int:
    """Re-dispatch runs left orphaned by a restart (their lease ran out); returns how many."""
    now = edge.runs.clock()
    found = 0
    for status in ("queued", "running"):
        for record in await run_in_threadpool(edge.runs.recent, status, 500):
            if record.orphaned(now) and record.operation in OPERATIONS:
                edge.dispatch(record)
                found += 1
    if found:
        log.warning("re-dispatched %d orphaned background runs", found)
    return found


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


def create_api(edge: Edge) -> FastAPI:
    """The FastAPI app of one ingress replica (see the module docstring)."""
    limits = edge.config.limits
    token = edge.config.settings.api_token

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
    mount_docs(api)
    api.add_middleware(EdgeMiddleware, limits=limits, telemetry=edge.telemetry)
    bearer = HTTPBearer(
        auto_error=False,
        description="Required on every non-GET route when TWINLOOP_API_TOKEN is set.",
    )

    async def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if token is None:
            return
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized(
                "authorization: this route needs the header 'Authorization: Bearer <token>'"
            )
        if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise Unauthorized("authorization: the bearer token is not valid")

    mutating = [Depends(authorized)]

    @api.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        status, body = http_error(
            from_validation(exc.errors(), drop=("body", "path", "query", "header"))
        )
        details = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or "body",
                "message": str(e.get("msg", "")),
            }
            for e in exc.errors()[:20]
        ]
        body = body.model_copy(update={"errors": details})
        return Response(error_json(body), status_code=status, media_type="application/json")

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        body = http_status_body(exc.status_code, str(exc.detail))
        return Response(
            error_json(body),
            status_code=exc.status_code,
            media_type="application/json",
            headers=exc.headers,
        )

    async def background(operation: str, body: BaseModel, why: str) -> Response:
        # exclude_unset: the record keeps what the client sent, so re-validating it in the
        # capability sees the same fields (``environmentId`` without a defaulted ``environment``).
        sent = body.model_dump(mode="json", exclude_unset=True)
        record = await run_in_threadpool(edge.runs.create, operation, sent)
        edge.dispatch(record)
        location = f"/runs/{record.id}"
        accepted = RunAccepted(id=record.id, operation=operation, location=location, reason=why)
        return json_response(accepted, 202, {"Location": location})

    async def submit(
        operation: str,
        body: EdgeModel,
        request: Request,
        method: str,
        *args: Any,
        always_background: bool = False,
    ) -> Response:
        """Answer inline within the deadline, or 202 with a run id (asked for, or too big)."""
        body.check(limits)
        if always_background:
            return await background(operation, body, "this operation always runs in the background")
        if wants_background(request):
            response = await background(operation, body, "Prefer: respond-async")
            response.headers["Preference-Applied"] = "respond-async"
            return response
        client = edge.client_for(operation, body, getattr(request.state, "body_bytes", 0))
        result = await client.call(method, *args, body, timeout=request.state.deadline_s)
        if isinstance(result, Deferred):
            return await background(operation, body, result.reason)
        return json_response(result)

    # --- health and runs ------------------------------------------------------------------

    @api.get("/healthz", response_model=Health, tags=["health"])
    async def healthz(
        request: Request,
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
        routes = sorted({getattr(r, "path", "") for r in api.routes} - {""})
        return json_response(
            Health(status=overall, version=twinloop.__version__, capabilities=status, routes=routes)
        )

    @api.get("/runs/{run_id}", response_model=RunRecord, responses=ERRORS, tags=["runs"])
    async def get_run(run_id: str = Path(pattern=ID_PATTERN)) -> Response:
        record = await run_in_threadpool(edge.runs.get, run_id)
        if record.orphaned(edge.runs.clock()) and record.operation in OPERATIONS:
            edge.dispatch(record)  # its replica died or the dispatch was lost: run it again
        return json_response(record)

    @api.get("/runs", response_model=list[RunRecord], tags=["runs"])
    async def list_runs(
        status: RunStatus | None = None,
        limit: int = Query(50, ge=1, le=500),
    ) -> Response:
        records = await run_in_threadpool(edge.runs.recent, status, limit)
        return Response(
            "[" + ",".join(r.model_dump_json() for r in records) + "]",
            media_type="application/json",
        )

    # --- environments (twin) --------------------------------------------------------------

    if "twin" in edge.capabilities:
        twin = edge.capabilities["twin"]

        @api.get("/environments", response_model=EnvironmentList, tags=["environments"])
        async def list_environments(request: Request) -> Response:
            found = await twin.call("list_environments", timeout=request.state.deadline_s)
            return json_response(found)

        @api.get(
            "/environments/{environment_id}",
            response_model=EnvironmentDetail,
            responses=ERRORS,
            tags=["environments"],
        )
        async def get_environment(
            request: Request, environment_id: str = Path(pattern=ID_PATTERN)
        ) -> Response:
            found = await twin.call(
                "get_environment", environment_id, timeout=request.state.deadline_s
            )
            return json_response(found)

        @api.post(
            "/environments",
            status_code=201,
            response_model=EnvironmentDetail,
            responses=ERRORS,
            dependencies=mutating,
            tags=["environments"],
        )
        async def create_environment(body: EnvironmentCreate, request: Request) -> Response:
            body.check(limits)
            created = await twin.call("create_environment", body, timeout=request.state.deadline_s)
            return json_response(created, 201, {"Location": f"/environments/{created.id}"})

        # --- the sandbox ----------------------------------------------------------------

        def sandbox_route(
            path: str,
            kind: str,
            request_type: type[Any],
            result_type: type[BaseModel],
            summary: str,
        ) -> None:
            async def route(body: Any, request: Request) -> Response:
                return await submit(f"sandbox_{kind}", body, request, "sandbox", kind)

            route.__annotations__["body"] = request_type
            api.post(
                path,
                response_model=result_type,
                responses={**ERRORS, **ACCEPTED},
                dependencies=mutating,
                tags=["sandbox"],
                summary=summary,
                name=f"sandbox_{kind}",
            )(route)

        sandbox_route(
            "/sandbox/test",
            "test",
            SandboxTestRequest,
            SandboxTestResult,
            "Test one model over Monte Carlo replicates",
        )
        sandbox_route(
            "/sandbox/compare",
            "compare",
            HeadToHeadRequest,
            HeadToHeadResult,
            "Head-to-head: baseline vs challenger on common random numbers",
        )
        sandbox_route(
            "/sandbox/grid",
            "grid",
            GridRequest,
            GridResult,
            "Parallel universes: scenarios × models",
        )
        sandbox_route(
            "/sandbox/ab-test",
            "ab_test",
            AbTestRequest,
            AbTestResult,
            "An A/B test with traffic allocation inside the twin",
        )

    # --- failure analyzer -------------------------------------------------------------------

    if "analyzer" in edge.capabilities:
        analyzer = edge.capabilities["analyzer"]

        @api.post(
            "/analyze-failure",
            response_model=FailureAnalysis,
            responses={**ERRORS, **ACCEPTED},
            dependencies=mutating,
            tags=["analyzer"],
        )
        async def analyze_failure(body: AnalyzeRequest, request: Request) -> Response:
            return await submit("analyze_failure", body, request, "analyze")

        @api.get(
            "/analyses/{experiment_id}",
            response_model=FailureAnalysis,
            responses=ERRORS,
            tags=["analyzer"],
        )
        async def get_analysis(
            request: Request, experiment_id: str = Path(pattern=ID_PATTERN)
        ) -> Response:
            found = await analyzer.call(
                "get_analysis", experiment_id, timeout=request.state.deadline_s
            )
            return json_response(found)

        @api.get("/patterns", response_model=PatternList, tags=["analyzer"])
        async def patterns(request: Request, limit: int = Query(100, ge=1, le=1000)) -> Response:
            found = await analyzer.call("patterns", limit, timeout=request.state.deadline_s)
            return json_response(found)

    # --- metric replication ---------------------------------------------------------------

    if "metrics" in edge.capabilities:

        @api.post(
            "/metrics/what-if",
            response_model=WhatIfResult,
            responses={**ERRORS, **ACCEPTED},
            dependencies=mutating,
            tags=["metrics"],
        )
        async def what_if(body: WhatIfRequest, request: Request) -> Response:
            return await submit("what_if", body, request, "what_if")

        @api.post(
            "/metrics/correlations",
            response_model=CorrelationResult,
            responses={**ERRORS, **ACCEPTED},
            dependencies=mutating,
            tags=["metrics"],
        )
        async def correlations(body: CorrelationsRequest, request: Request) -> Response:
            return await submit("correlations", body, request, "correlations")

        @api.post(
            "/metrics/anomalies",
            response_model=AnomaliesResponse,
            responses={**ERRORS, **ACCEPTED},
            dependencies=mutating,
            tags=["metrics"],
        )
        async def anomalies(body: AnomaliesRequest, request: Request) -> Response:
            return await submit("anomalies", body, request, "anomalies")

        @api.post(
            "/metrics/calibrate",
            status_code=202,
            response_model=RunAccepted,
            responses={
                **ERRORS,
                200: {
                    "model": CalibrateResponse,
                    "description": "the run's result (GET /runs/{id})",
                },
            },
            dependencies=mutating,
            tags=["metrics"],
        )
        async def calibrate(body: CalibrateRequest, request: Request) -> Response:
            return await submit("calibrate", body, request, "", always_background=True)

        @api.post(
            "/synthetic",
            response_model=SyntheticResponse,
            responses={**ERRORS, **ACCEPTED},
            dependencies=mutating,
            tags=["metrics"],
        )
        async def synthetic(body: SyntheticRequest, request: Request) -> Response:
            return await submit("synthetic", body, request, "synthetic")

    if "twin" in edge.capabilities:
        # Simulation mode of the what-if: it re-runs the twin, so the Twin deployment answers.

        @api.post(
            "/metrics/what-if/simulate",
            response_model=SimWhatIfResult,
            responses={**ERRORS, **ACCEPTED},
            dependencies=mutating,
            tags=["metrics"],
            summary="What-if by re-running the twin with changed parameters",
        )
        async def what_if_simulate(body: SimWhatIfRequest, request: Request) -> Response:
            return await submit("what_if_sim", body, request, "what_if_sim")

    return api
