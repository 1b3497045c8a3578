"""The canary capability: start and reweigh canaries, outcomes, rollback, and the monitor.

A Serve deployment rather than a separate Ray actor: Serve restarts a failed replica, health-checks
it and scales it from the same config as the rest of the API, and everything it decides is in the
Store (records, statistics, decisions by compare-and-set), so a restarted replica — or a second
one — picks up where the last left off. The decision rule runs after every outcome batch (a
rollback is decided the moment the evidence is there) and on a timer (``MONITOR_INTERVAL_S``) for
the maximum duration, which passes without any request.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from serve_apps.canary_metrics import CanaryTelemetry
from serve_apps.capabilities.base import CapabilityService
from serve_apps.config import AppConfig
from serve_apps.family import deploy
from serve_apps.schemas.canary import CanaryUpdate, CanaryView, OutcomeBatch
from twinloop.canary.assignment import CanaryConfig
from twinloop.canary.manager import CanaryDecision, CanaryManager, Outcome
from twinloop.registry.registry import Registry
from twinloop.store import Store

MONITOR_INTERVAL_S: Final = 5.0
log = logging.getLogger("twinloop.serve")


class CanaryService(CapabilityService):
    """Methods named as the canary operations (serve_apps/routes/canary.py)."""

    name = "canary"

    def __init__(self, config: AppConfig, store: Store | None = None, monitor: bool = True) -> None:
        super().__init__(config, store)
        self.registry = Registry(self.store, settings=config.settings)
        self.manager = CanaryManager(self.registry, self._apply)
        self.canary_telemetry = CanaryTelemetry()
        self._stop = threading.Event()
        if monitor:
            threading.Thread(target=self._monitor, name="canary-monitor", daemon=True).start()

    def _apply(self, config: CanaryConfig) -> None:
        deploy(config, self.config.settings)
        self.canary_telemetry.weight(config.family, config.weight)

    def _decided(self, decision: CanaryDecision | None) -> None:
        if decision is not None:
            self.canary_telemetry.decision(decision.family, decision.action, decision.by)

    def _monitor(self) -> None:
        while not self._stop.wait(MONITOR_INTERVAL_S):
            try:
                for family in self.manager.running():
                    self._decided(self.manager.evaluate(family))
            except Exception:  # the next tick tries again; the Store holds everything
                log.exception("canary monitor tick failed")

    def set_canary(self, family: str, body: CanaryUpdate) -> CanaryView:
        self.manager.start(family, body.version, body.weight, body.overrides(), body.batching)
        return self.get_canary(family)

    def rollback_canary(self, family: str) -> CanaryView:
        record = self.manager.rollback(family)
        self.canary_telemetry.decision(family, "rollback", "user")
        return self.get_canary(record.family)

    def record_outcomes(self, family: str, body: OutcomeBatch) -> Outcome:
        events = [event.core() for event in body.events]
        outcome = self.manager.record_outcomes(family, events, body.batch_id)
        self._decided(outcome.decision)
        return outcome

    def get_canary(self, family: str) -> CanaryView:
        record = self.manager.record(family)
        stats = self.manager.stats(record)
        config = record.config
        sides = [v for v in (config.champion, config.canary) if v is not None]
        return CanaryView(
            family=family,
            status=record.status,
            config=config,
            started_at=record.started_at,
            units={v: stats.units(v) for v in sorted({*sides, *stats.versions})},
            events=stats.events,
            unassigned=stats.unassigned,
            verdict=self.manager.verdict(record),
            decision=self.manager.decision(record),
            record=record,
        )
