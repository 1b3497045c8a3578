"""The improvement loop's operations, answered by the analyzer capability (same Store).

``start_improvement`` creates (or finds) the experiment's improvement and drives its quick
stages (``analyzed``, ``planned``: ``INLINE_UNTIL``) inline; the long ones (retraining, the
championship, the canary) are driven by the Ray job ``cluster.jobs.improve`` (or ``twinloop
improve start``), which resumes from there. ``cancel`` marks
it cancelled. ``preflight`` predicts a planned test in the twin and keeps the prediction;
``kpis`` computes the loop's KPIs from the Store.
"""

from __future__ import annotations

from typing import Final

from serve_apps.schemas.improvements import ImprovementCreate, PreflightRequest
from serve_apps.telemetry import Telemetry
from twinloop.errors import InvalidInput
from twinloop.loop import (
    IMPROVEMENTS,
    Improvement,
    cancel_improvement,
    run_improvement,
    start_improvement,
)
from twinloop.loop.kpis import LoopKpis, loop_kpis
from twinloop.loop.preflight import Preflight, run_preflight
from twinloop.loop.stages import default_stages
from twinloop.loop.triggers import TriggerDecision
from twinloop.store import Store

INLINE_UNTIL: Final = "planned"  # the last stage an HTTP request drives (milliseconds)


class LoopOperations:
    """Mixed into the analyzer capability: its ``store`` holds analyses and improvements."""

    store: Store
    telemetry: Telemetry

    def start_improvement(self, request: ImprovementCreate) -> Improvement:
        try:
            improvement, _ = start_improvement(self.store, request.spec())
        except InvalidInput as exc:
            raise InvalidInput("experimentId", exc.message) from exc
        return run_improvement(self.store, improvement.id, default_stages(), until=INLINE_UNTIL)

    def drive_triggered(self, decision: TriggerDecision) -> None:
        """Drive an improvement an analysis started (a no-op when none was)."""
        if decision.improvement_id is not None:
            run_improvement(
                self.store, decision.improvement_id, default_stages(), until=INLINE_UNTIL
            )

    def get_improvement(self, improvement_id: str) -> Improvement:
        return self.store.get_model(IMPROVEMENTS, improvement_id, Improvement)

    def cancel_improvement(self, improvement_id: str) -> Improvement:
        return cancel_improvement(self.store, improvement_id)

    def preflight(self, request: PreflightRequest) -> Preflight:
        return run_preflight(self.store, request.spec())

    def kpis(self) -> LoopKpis:
        kpis = loop_kpis(self.store)
        self.telemetry.loop_kpis(kpis.gauges())
        return kpis
