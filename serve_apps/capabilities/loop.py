"""The improvement loop's operations, answered by the analyzer capability (same Store).

``start_improvement`` creates (or finds) the experiment's improvement and drives its quick
stages (``analyzed``, ``planned``: ``INLINE_UNTIL``) inline; the long ones (retraining, the
championship, the canary) then run in the background: one run record per improvement (id
``drive-<improvement id>``, operation ``drive_improvement``) handed to the application's run
queue, whose thread drives the improvement to a decision (``GET /improvements/{id}`` shows the
stages advancing, ``GET /runs/drive-…`` the run), its Monte Carlo replicates (retraining trials,
the championship) on the queue's shared worker pool. The record's create-only write means
concurrent triggers start one driver; a replica that dies mid-run stops renewing the lease and
the run is re-dispatched, and the driver resumes from the last finished stage. ``cancel`` marks
the improvement cancelled: the driver stops after the stage it is in, writes no output for it and
moves no alias. ``drive_improvement`` (``POST /improvements/{id}/resume``) starts the driver
again, e.g. after a stall. The Ray job ``cluster.jobs.improve`` is the same driver outside Serve.
``preflight`` predicts a planned test in the twin and keeps the prediction; ``kpis`` computes the
loop's KPIs from the Store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from serve_apps.runs import Progress, RunBook
from serve_apps.schemas.improvements import ImprovementCreate, ImprovementDrive, PreflightRequest
from serve_apps.telemetry import Telemetry
from twinloop.errors import InvalidInput
from twinloop.loop import (
    IMPROVEMENTS,
    STAGES,
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

if TYPE_CHECKING:
    from actors.sandbox_pool import RayExecutor

INLINE_UNTIL: Final = "planned"  # the last stage an HTTP request drives (milliseconds)
DRIVE: Final = "drive_improvement"  # the background run's operation


def drive_run_id(improvement_id: str) -> str:
    """The one background run that drives an improvement (ids keep the Store's id rule)."""
    return f"drive-{improvement_id}"[:128]


class LoopOperations:
    """Mixed into the analyzer capability: its ``store`` holds analyses and improvements."""

    store: Store
    telemetry: Telemetry
    runs: RunBook

    def submit_run(self, run_id: str) -> bool:
        raise NotImplementedError  # CapabilityService's, first in the capability's bases

    def executor(self, label: str) -> RayExecutor:
        raise NotImplementedError  # CapabilityService's

    def start_improvement(self, request: ImprovementCreate) -> Improvement:
        try:
            improvement, created = start_improvement(self.store, request.spec())
        except InvalidInput as exc:
            raise InvalidInput("experimentId", exc.message) from exc
        return self._drive_from(improvement, created)

    def drive_triggered(self, decision: TriggerDecision) -> None:
        """Drive an improvement an analysis started (a no-op when none was)."""
        if decision.improvement_id is not None:
            current = self.get_improvement(decision.improvement_id)
            self._drive_from(current, decision.created)

    def _drive_from(self, improvement: Improvement, created: bool) -> Improvement:
        """The quick stages inline (by the trigger that created it), the rest in the background.

        An improvement someone else created is left to its driver: only one ``waiting`` for a
        driver gets one (the run's create-once write makes that one even under a race)."""
        if created:
            improvement = run_improvement(
                self.store, improvement.id, default_stages(), until=INLINE_UNTIL,
                hand_off=f"in the background (run {drive_run_id(improvement.id)})",
            )  # fmt: skip
        if improvement.status == "waiting":
            self._submit_driver(improvement.id)
        return self.get_improvement(improvement.id)

    def _submit_driver(self, improvement_id: str) -> None:
        record, created = self.runs.create_once(
            drive_run_id(improvement_id), DRIVE, {"improvement_id": improvement_id}
        )
        if created:
            self.submit_run(record.id)

    def drive_improvement(self, improvement_id: str) -> Improvement:
        """Start (or find) the improvement's background driver; a decided one is as it is."""
        current = self.get_improvement(improvement_id)
        if not current.terminal and not current.cancel_requested:
            self._submit_driver(improvement_id)
        return current

    def _drive(self, request: ImprovementDrive, progress: Progress) -> Improvement:
        """The background run: every remaining stage, progress = stages finished / stages."""

        def report(current: Improvement) -> None:
            done = STAGES.index(current.stage) + 1 if current.stage in STAGES else len(STAGES)
            progress(done / len(STAGES), f"{current.stage}: {current.status}")

        ident = request.improvement_id
        with self.executor("improvement") as executor:  # the run queue's shared worker pool
            return run_improvement(
                self.store, ident, default_stages(), on_stage=report, executor=executor
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
