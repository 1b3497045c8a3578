"""Routes of the Failure Analyzer: analyse an A/B loss, plan its fixes, fetch analyses, patterns."""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime.
from fastapi import Query
from fastapi.responses import Response

from serve_apps.operations import Operation
from serve_apps.routes.base import Call, IdPath, OperationRouter, json_response
from serve_apps.schemas.analyzer import AnalyzeRequest, AnalyzeResponse, PatternList
from serve_apps.schemas.improvements import PlanRequest
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.strategy import Plan

router = OperationRouter("analyzer")

ANALYZE_FAILURE = router.declare(
    Operation(
        name="analyze_failure",
        capability="analyzer",
        method="POST",
        path="/analyze-failure",
        request=AnalyzeRequest,
        response=AnalyzeResponse,
        background="on_request",
    )
)
PLAN_IMPROVEMENTS = router.declare(
    Operation(
        name="plan_improvements",
        capability="analyzer",
        method="POST",
        path="/improvements/plan",
        request=PlanRequest,
        response=Plan,
        background="on_request",
        summary="Rank the fixes of a stored analysis by ROI (validated in the sandbox)",
    )
)
GET_ANALYSIS = Operation(
    name="get_analysis",
    capability="analyzer",
    method="GET",
    path="/analyses/{experiment_id}",
    response=FailureAnalysis,
)
PATTERNS = Operation(
    name="patterns",
    capability="analyzer",
    method="GET",
    path="/patterns",
    response=PatternList,
)


@router.endpoint(GET_ANALYSIS)
async def get_analysis(experiment_id: IdPath, call: Call) -> Response:
    return json_response(await call(GET_ANALYSIS, experiment_id))


@router.endpoint(PATTERNS)
async def patterns(call: Call, limit: int = Query(100, ge=1, le=1000)) -> Response:
    return json_response(await call(PATTERNS, limit))
