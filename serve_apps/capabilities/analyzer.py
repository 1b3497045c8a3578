"""The analyzer capability: the Failure Analyzer over HTTP, its stored analyses and patterns.

Analyses are kept in the Store under kind ``analyses`` by experiment id (a re-analysis replaces
the document and keeps the earlier version as history); named failure patterns under kind
``patterns`` — both written by ``twinloop.analysis`` itself, read back here. An improvement plan
for a stored analysis (``twinloop.strategy``) is kept under kind ``plans`` by the same id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from serve_apps.capabilities.base import CapabilityService
from serve_apps.capabilities.loop import LoopOperations
from serve_apps.runs import Deferred, Progress
from serve_apps.schemas.analyzer import AnalyzeRequest, AnalyzeResponse, PatternList
from serve_apps.schemas.improvements import PlanRequest
from serve_apps.tables import table_from_json
from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis, analyze_failure
from twinloop.analysis.patterns import PATTERNS, Pattern
from twinloop.errors import InvalidInput, NotFound
from twinloop.loop.preflight import score_preflight
from twinloop.loop.triggers import auto_trigger
from twinloop.strategy import Plan, PlanSettings, plan_analysis


class AnalyzerService(CapabilityService, LoopOperations):
    """Failure analyses: run one, fetch one, list the patterns seen across them; the
    improvements they start (``LoopOperations``)."""

    name = "analyzer"

    def background(self) -> Mapping[str, Callable[[Any, Progress], BaseModel]]:
        return {
            "analyze_failure": lambda request, _progress: self._analyze(request),
            "plan_improvements": lambda request, _progress: self._plan(request),
            "drive_improvement": self._drive,
        }

    def analyze_failure(self, request: AnalyzeRequest) -> AnalyzeResponse:
        return self._analyze(request)

    def get_analysis(self, experiment_id: str) -> FailureAnalysis:
        found = self.store.find(ANALYSES, experiment_id)
        if found is None:
            raise NotFound("analysis", experiment_id)
        return found.to_model(FailureAnalysis)

    def plan_improvements(self, request: PlanRequest) -> Plan | Deferred:
        """The strategy for a stored analysis (NotFound → 404), kept under kind ``plans``;
        validations above the inline budget run in the background."""
        work = request.customer_days()
        if work > self.limits.inline_customer_days:
            return Deferred(
                f"the validations simulate {work:.3g} customer-days, above the inline budget "
                f"of {self.limits.inline_customer_days:.3g}"
            )
        return self._plan(request)

    def _plan(self, request: PlanRequest) -> Plan:
        settings = self.config.settings
        return plan_analysis(
            self.store,
            request.analysis_id,
            size=request.size(),
            settings=PlanSettings.from_settings(settings, seed=request.seed),
            run_settings=settings,
        )

    def patterns(self, limit: int) -> PatternList:
        patterns = self.store.query_models(PATTERNS, Pattern)
        patterns.sort(key=lambda p: (-p.count, p.code))
        analyses = len(self.store.query(ANALYSES))
        return PatternList(patterns=patterns[:limit], analyses=analyses)

    def _analyze(self, request: AnalyzeRequest) -> AnalyzeResponse:
        table = None if request.rows is None else table_from_json(request.rows, self.limits, "rows")
        try:
            analysis = analyze_failure(
                request.test_result,
                store=self.store if request.store else None,
                settings=self.config.settings,
                raw_table=table,
            )
        except InvalidInput as exc:
            if exc.field.startswith(("rows", "experimentId")):
                raise
            raise InvalidInput(f"testResult.{exc.field}", exc.message) from exc
        self.telemetry.analysis(analysis.severity)
        if request.store:
            score_preflight(self.store, analysis)  # a pre-flight of this test meets its result
        decision = auto_trigger(self.store, analysis, self.config.settings, stored=request.store)
        self.drive_triggered(decision)
        return AnalyzeResponse(**dict(analysis), improvement=decision)
