"""`CanaryManager`: a family's canary lifecycle on the Store — start, reweigh, outcomes, decide.

Store layout (kind → id): ``canary`` → family (the live :class:`CanaryRecord`);
``canary_stats`` → ``<family>.g<generation>`` (:class:`~twinloop.canary.outcomes.CanaryStats`);
``canary_decision`` → ``<family>.g<generation>`` (:class:`CanaryDecision`, one per generation).
Applying a configuration to the serving layer is the injected ``apply`` (a Serve reconfigure in
``serve_apps``): :meth:`CanaryManager.start` applies before the record and the registry's aliases
move, so the record never claims a canary the routers do not serve; a decision first claims the
record by compare-and-set, then applies, then moves the aliases. Outcomes are merged by
compare-and-set (``Store.update``) and are in the Store when :meth:`record_outcomes` returns; a
batch id makes a retried batch merge once. A decision acts once: the record's status leaves
``running`` by compare-and-set, so of two replicas deciding at once one acts and the other sees it
done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Literal

from twinloop.canary.assignment import CanaryConfig
from twinloop.canary.decision import Action, DecisionSettings, Verdict, decide
from twinloop.canary.outcomes import CanaryStats, OutcomeEvent, merge_batch
from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput, NotFound, VersionConflict
from twinloop.registry.registry import Registry

RECORDS: Final = "canary"
STATS: Final = "canary_stats"
DECISIONS: Final = "canary_decision"
Status = Literal["running", "promoted", "rolled_back", "expired", "serving"]
_ENDED: Final[dict[Action, Status]] = {
    "rollback": "rolled_back",
    "promote": "promoted",
    "expire": "expired",
}


class CanaryRecord(FrozenModel):
    """The family's serving state: the config its routers serve and the canary's status."""

    family: str
    config: CanaryConfig
    status: Status
    settings: DecisionSettings
    started_at: float
    reason: str = ""


class CanaryDecision(FrozenModel):
    """A decision with the numbers it was taken on (one per canary generation)."""

    family: str
    generation: int
    action: Literal["rollback", "promote", "expire"]
    by: str
    champion: str
    canary: str
    reason: str
    decided_at: float
    verdict: Verdict | None = None
    stats_events: int = 0


class Outcome(FrozenModel):
    """What a batch of outcomes did: merged, unassigned, and the canary's decision if it has
    one (taken on this batch, by the monitor's timer, or earlier)."""

    family: str
    generation: int
    accepted: int
    unassigned: int
    decision: CanaryDecision | None = None


class CanaryManager:
    """A family's canary on the Store, its routers reached through ``apply``."""

    def __init__(
        self,
        registry: Registry,
        apply: Callable[[CanaryConfig], object],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.store = registry.store
        self.apply = apply
        self.clock = clock

    def record(self, family: str) -> CanaryRecord:
        """The live record; NotFound when the family was never deployed."""
        self.registry.family(family)
        found = self.store.find(RECORDS, family)
        if found is None:
            raise NotFound("canary of model family", family)
        return found.to_model(CanaryRecord)

    def stats(self, record: CanaryRecord) -> CanaryStats:
        key = f"{record.family}.g{record.config.generation}"
        found = self.store.find(STATS, key)
        if found is None:
            return CanaryStats(family=record.family, generation=record.config.generation)
        return found.to_model(CanaryStats)

    def decision(self, record: CanaryRecord) -> CanaryDecision | None:
        found = self.store.find(DECISIONS, f"{record.family}.g{record.config.generation}")
        return None if found is None else found.to_model(CanaryDecision)

    def start(
        self,
        family: str,
        version: str,
        weight: float,
        overrides: dict[str, float] | None = None,
        batching: bool | None = None,
    ) -> CanaryRecord:
        """Send ``weight`` of the units to ``version``; same version: only the weight moves.

        ``batching`` (None: keep the family's) scores through ``serve.batch``."""
        fam = self.registry.family(family)
        self.registry.version(family, version)  # NotFound names it
        champion = self.registry.alias(family, "champion").version
        if champion is None:
            raise InvalidInput("version", f"family {family!r} has no champion to compare with")
        found = self.store.find(RECORDS, family)
        current = None if found is None else found.to_model(CanaryRecord)
        if version == champion and weight > 0:
            raise InvalidInput("version", f"{version} is the champion of {family!r}")
        env = self.registry.environment(fam)
        width = env.n_features + len(env.segments)
        same = current is not None and current.status == "running"
        same = same and current is not None and current.config.canary == version
        if same and current is not None:
            config = current.config.model_copy(update={"weight": weight, "champion": champion})
            record = current.model_copy(update={"config": config})
        else:
            generation = 1 if current is None else current.config.generation + 1
            config = CanaryConfig(
                family=family,
                champion=champion,
                canary=version if weight > 0 or version != champion else None,
                weight=weight,
                salt=f"g{generation}",
                generation=generation,
                n_features=width,
            )
            settings = DecisionSettings(
                primary_kpi=fam.primary_kpi, guardrails=dict(fam.guardrails), **(overrides or {})
            )
            record = CanaryRecord(
                family=family,
                config=config,
                status="running" if config.canary else "serving",
                settings=settings,
                started_at=self.clock(),
            )
        if batching is not None:
            config = record.config.model_copy(update={"batching": batching})
            record = record.model_copy(update={"config": config})
        elif current is not None:
            config = record.config.model_copy(update={"batching": current.config.batching})
            record = record.model_copy(update={"config": config})
        self.apply(record.config)
        if record.config.canary is not None:
            alias = self.registry.alias(family, "canary")
            if alias.version != version:
                self.registry.move_alias(family, "canary", version, by="canary", reason="canary")
        self.store.put_model(RECORDS, family, record)
        return record

    def record_outcomes(
        self, family: str, events: list[OutcomeEvent], batch_id: str | None = None
    ) -> Outcome:
        """Merge a batch into the live generation's statistics (stored before returning), then
        run the decision rule."""
        record = self.record(family)
        key = f"{family}.g{record.config.generation}"
        before = self.stats(record).unassigned

        def merge(doc: CanaryStats | None) -> CanaryStats:
            empty = CanaryStats(family=family, generation=record.config.generation)
            return merge_batch(doc or empty, record.config, events, batch_id)

        stats = self.store.update_model(STATS, key, CanaryStats, merge)
        decision = self.evaluate(family) if record.status == "running" else None
        if decision is None:  # decided already (by the timer, or an earlier batch)?
            decision = self.decision(record)
        return Outcome(
            family=family,
            generation=record.config.generation,
            accepted=len(events),
            unassigned=max(0, stats.unassigned - before),
            decision=decision,
        )

    def verdict(self, record: CanaryRecord) -> Verdict | None:
        """The rule on the statistics so far (None when no canary is running)."""
        if record.status != "running" or record.config.canary is None:
            return None
        elapsed = self.clock() - record.started_at
        canary = record.config.canary
        return decide(self.stats(record), record.config.champion, canary, record.settings, elapsed)

    def evaluate(self, family: str) -> CanaryDecision | None:
        """Act on the rule's verdict when it is not 'continue'."""
        record = self.record(family)
        verdict = self.verdict(record)
        if verdict is None or verdict.action == "continue":
            return None
        return self.end(record, verdict.action, "monitor", verdict.reason, verdict)

    def rollback(self, family: str, reason: str = "rollback requested") -> CanaryRecord:
        """Every unit back to the champion at once; the canary alias is unset."""
        record = self.record(family)
        if record.config.canary is None:
            raise InvalidInput("family", f"{family!r} has no canary to roll back")
        self.end(record, "rollback", "user", reason, self.verdict(record))
        return self.record(family)

    def end(
        self,
        record: CanaryRecord,
        action: Literal["rollback", "promote", "expire"],
        by: str,
        reason: str,
        verdict: Verdict | None,
    ) -> CanaryDecision | None:
        """Apply the decision to the routers, then the registry and the Store (once)."""
        config = record.config
        assert config.canary is not None
        winner = config.canary if action == "promote" else config.champion
        serving = config.model_copy(update={"champion": winner, "canary": None, "weight": 0.0})
        ended = record.model_copy(
            update={"config": serving, "status": _ENDED[action], "reason": reason}
        )
        try:
            self.store.put_model(
                RECORDS, record.family, ended, expected_version=self._revision(record)
            )
        except VersionConflict:
            return None  # another replica decided first
        self.apply(serving)
        if action == "promote":
            self.registry.move_alias(record.family, "champion", winner, by=by, reason=reason)
        self.registry.move_alias(record.family, "canary", None, by=by, reason=reason)
        decision = CanaryDecision(
            family=record.family,
            generation=config.generation,
            action=action,
            by=by,
            champion=config.champion,
            canary=config.canary,
            reason=reason,
            decided_at=self.clock(),
            verdict=verdict,
            stats_events=self.stats(record).events,
        )
        self.store.put_model(DECISIONS, f"{record.family}.g{config.generation}", decision)
        return decision

    def _revision(self, record: CanaryRecord) -> int:
        found = self.store.find(RECORDS, record.family)
        if found is None or found.to_model(CanaryRecord) != record:
            raise VersionConflict(f"the canary of {record.family!r} changed")
        return found.version

    def running(self) -> list[str]:
        """Families whose canary is running (what the monitor's tick looks at)."""
        return [
            r.family
            for r in self.store.query_models(RECORDS, CanaryRecord, where={"status": "running"})
        ]
