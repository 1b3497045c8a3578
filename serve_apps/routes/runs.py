"""Routes of the background runs: poll one (re-dispatching it if orphaned), list the recent."""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime.
from fastapi import Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from serve_apps.operations import Operation
from serve_apps.routes.base import EdgeDep, IdPath, OperationRouter, json_response
from serve_apps.runs import RunRecord, RunStatus

router = OperationRouter(None)

GET_RUN = Operation(
    name="get_run",
    capability=None,
    method="GET",
    path="/runs/{run_id}",
    response=RunRecord,
    tag="runs",
)
LIST_RUNS = Operation(
    name="list_runs",
    capability=None,
    method="GET",
    path="/runs",
    response=list[RunRecord],
    errors=False,
    tag="runs",
)


@router.endpoint(GET_RUN)
async def get_run(run_id: IdPath, edge: EdgeDep) -> Response:
    record = await run_in_threadpool(edge.runs.get, run_id)
    if record.orphaned(edge.runs.clock()) and edge.runnable(record):
        edge.dispatch(record)  # its replica died or the dispatch was lost: run it again
    return json_response(record)


@router.endpoint(LIST_RUNS)
async def list_runs(
    edge: EdgeDep,
    status: RunStatus | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> Response:
    records = await run_in_threadpool(edge.runs.recent, status, limit)
    return Response(
        "[" + ",".join(r.model_dump_json() for r in records) + "]",
        media_type="application/json",
    )
