"""The improvement driver: run the next unfinished stage until a decision, a gap or a cancel.

``run_improvement`` reads the improvement, finds the next stage, and either adopts the stage's
output when it is already in the Store (a previous driver finished it and then died) or runs the
injected stage function and writes its output *create-only*. Only then does it move the
improvement's ``stage`` forward. So a driver killed anywhere re-runs at most the stage it was
in, and a stage function that derives its ids from :meth:`StageContext.derived_id` (never from
the clock or a counter) writes the same documents again instead of new ones: the restarted run
reaches the same decision with no duplicate versions or alias moves.

A stage whose piece is not there raises :class:`StageUnavailable`; the improvement is then
``stalled`` at that stage with the reason, and a later run (once the piece is wired) goes on
from there. Cancelling marks the improvement ``cancelled`` at once; the driver stops at its next
Store read and a stage function checks :meth:`StageContext.check_cancelled` before any
side effect that matters (an alias move), so a cancelled run moves no alias.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from twinloop.contract import ID_PATTERN, FrozenModel
from twinloop.errors import TwinloopError, VersionConflict
from twinloop.loop.learning import learn_from
from twinloop.loop.model import (
    DECISIONS,
    IMPROVEMENTS,
    STAGE_OUTPUTS,
    STAGES,
    EvidenceLink,
    Improvement,
    Stage,
    StageOutput,
    StageRecord,
    next_stage,
    output_id,
)
from twinloop.sandbox.executor import Executor
from twinloop.store import Store

Clock = Callable[[], float]


class StageUnavailable(TwinloopError):
    """The piece a stage needs is not wired (not installed, not deployed): the run stalls."""

    code = "unavailable"
    status = 503

    def __init__(self, stage: str, reason: str) -> None:
        self.stage = stage
        self.reason = reason
        super().__init__(f"stage {stage} unavailable: {reason}")


class ImprovementCancelled(TwinloopError):
    """Raised inside a stage function when the improvement was cancelled meanwhile."""

    code = "cancelled"
    status = 409

    def __init__(self, improvement_id: str) -> None:
        self.improvement_id = improvement_id
        super().__init__(f"improvement {improvement_id!r} was cancelled")


class StageResult(FrozenModel):
    """What a stage function returns; the driver stores it as the stage's output."""

    summary: str
    outcome: dict[str, Any] = Field(default_factory=dict)
    evidence: tuple[EvidenceLink, ...] = ()
    decision: Stage | None = None


@dataclass(frozen=True)
class StageContext:
    """What a stage function gets: the Store, the improvement, the earlier outputs, its seed."""

    store: Store
    improvement: Improvement
    stage: Stage
    outputs: Mapping[Stage, StageOutput]
    seed: int
    # Where a stage's Monte Carlo replicates run (a Ray worker pool under Serve); None: in-process.
    # Results do not depend on it: replicates are seeded by their position, not their worker.
    executor: Executor | None = None

    def derived_id(self, *parts: str | int) -> str:
        """A Store id that is the same on every run of this stage of this improvement."""
        text = "-".join([self.improvement.id, self.stage, *map(str, parts)])
        if ID_PATTERN.fullmatch(text):
            return text
        return f"{self.stage}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"

    def check_cancelled(self) -> None:
        """Raise :class:`ImprovementCancelled` when the improvement was cancelled meanwhile."""
        current = self.store.get_model(IMPROVEMENTS, self.improvement.id, Improvement)
        if current.cancel_requested:
            raise ImprovementCancelled(current.id)


StageFn = Callable[[StageContext], StageResult]


def stage_seed(root: int, stage: Stage) -> int:
    """One independent seed per stage (a SeedSequence child), fixed by the root seed."""
    index = STAGES.index(stage) if stage in STAGES else len(STAGES)
    return int(np.random.SeedSequence([root, index]).generate_state(1)[0])


def run_improvement(
    store: Store,
    improvement_id: str,
    stages: Mapping[Stage, StageFn],
    *,
    clock: Clock = time.time,
    on_stage: Callable[[Improvement], None] | None = None,
    until: Stage | None = None,
    hand_off: str | None = None,
    executor: Executor | None = None,
) -> Improvement:
    """Drive the improvement from its last finished stage to a decision, a stall or a cancel
    (or until the stage ``until`` has finished: the HTTP edge runs the quick stages inline and
    leaves the improvement ``waiting``, ``hand_off`` saying who runs the next stage)."""
    while True:
        current = store.get_model(IMPROVEMENTS, improvement_id, Improvement)
        stage = next_stage(current.stage)
        if current.terminal or current.cancel_requested or stage is None:
            return current
        if until is not None and STAGES.index(stage) > STAGES.index(until):
            return _hand_off(store, improvement_id, stage, clock, hand_off)
        output = _output_of(store, current, stage, stages, clock, executor)
        if output is None:  # stalled, failed or cancelled: the record says which
            current = store.get_model(IMPROVEMENTS, improvement_id, Improvement)
            if on_stage is not None:
                on_stage(current)
            return current
        current = _advance(store, improvement_id, stage, output, clock)
        if current.terminal:
            learn_from(store, current)  # counted once per improvement id, so a re-run is safe
        if on_stage is not None:
            on_stage(current)


def _output_of(
    store: Store,
    current: Improvement,
    stage: Stage,
    stages: Mapping[Stage, StageFn],
    clock: Clock,
    executor: Executor | None = None,
) -> StageOutput | None:
    """The stage's stored output, running the stage first when it has none."""
    key = output_id(current.id, stage)
    found = store.find_model(STAGE_OUTPUTS, key, StageOutput)
    if found is not None:
        return found
    started = clock()
    _mark(store, current.id, stage, started, "running", clock)
    context = StageContext(
        store=store,
        improvement=current,
        stage=stage,
        outputs=_outputs(store, current),
        seed=stage_seed(current.seed, stage),
        executor=executor,
    )
    fn = stages.get(stage)
    try:
        if fn is None:
            raise StageUnavailable(stage, "no stage function is wired for it")
        result = fn(context)
        context.check_cancelled()
    except StageUnavailable as exc:
        _mark(store, current.id, stage, started, "unavailable", clock, reason=exc.reason)
        return None
    except ImprovementCancelled:
        return None
    except TwinloopError as exc:
        _mark(store, current.id, stage, started, "failed", clock, reason=str(exc))
        return None
    return _write_output(store, current, stage, result, clock)


def _write_output(
    store: Store, current: Improvement, stage: Stage, result: StageResult, clock: Clock
) -> StageOutput:
    """Create the output document once; a concurrent driver's earlier write wins."""
    decision = result.decision
    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"stage {stage} returned decision {decision!r}")
    if stage == STAGES[-1] and decision is None:
        raise ValueError(f"stage {stage} must decide: promoted, rolled_back or abandoned")
    output = StageOutput(
        improvement_id=current.id,
        stage=stage,
        summary=result.summary,
        outcome=result.outcome,
        evidence=result.evidence,
        decision=decision,
        seed=stage_seed(current.seed, stage),
        finished_at=clock(),
    )
    key = output_id(current.id, stage)
    try:
        store.put(STAGE_OUTPUTS, key, output.model_dump(mode="json"), expected_version=0)
    except VersionConflict:
        return store.get_model(STAGE_OUTPUTS, key, StageOutput)
    return output


def _advance(
    store: Store, improvement_id: str, stage: Stage, output: StageOutput, clock: Clock
) -> Improvement:
    """Move ``stage`` forward to the finished stage (or to the decision it made)."""

    def step(current: Improvement | None) -> Improvement:
        assert current is not None  # improvements are never deleted while a driver runs
        if current.terminal:
            return current
        before = current.record(stage)
        record = StageRecord(
            stage=stage,
            status="done",
            started_at=before.started_at if before else output.finished_at,
            finished_at=output.finished_at,
            attempts=before.attempts if before else 1,
            output_id=output_id(improvement_id, stage),
            summary=output.summary,
        )
        changes: dict[str, Any] = {"stage": stage, "status": "running", "updated_at": clock()}
        if output.decision is not None:
            changes.update(stage=output.decision, status="done", finished_at=output.finished_at)
            changes["reason"] = output.summary if output.decision == "abandoned" else None
        return current.with_record(record, **changes)

    return store.update_model(IMPROVEMENTS, improvement_id, Improvement, step)


def _hand_off(
    store: Store, improvement_id: str, stage: Stage, clock: Clock, by: str | None
) -> Improvement:
    """Stop before ``stage``: ``waiting`` for a driver that runs the long stages (``by``;
    default the job)."""
    reason = f"{stage} runs {by or 'in the improvement job (python -m cluster.jobs.improve)'}"

    def step(current: Improvement | None) -> Improvement:
        assert current is not None
        if current.terminal or current.status != "running":
            return current
        return current.model_copy(
            update={"status": "waiting", "reason": reason, "updated_at": clock()}
        )

    return store.update_model(IMPROVEMENTS, improvement_id, Improvement, step)


def _mark(
    store: Store,
    improvement_id: str,
    stage: Stage,
    started: float,
    status: str,
    clock: Clock,
    *,
    reason: str | None = None,
) -> None:
    """Record a stage attempt's start or its end without an output (unavailable, failed)."""

    def step(current: Improvement | None) -> Improvement:
        assert current is not None
        if current.terminal:
            return current
        before = current.record(stage)
        attempts = (before.attempts + 1 if before else 1) if status == "running" else None
        record = StageRecord.model_validate(
            {
                "stage": stage,
                "status": status,
                "started_at": started,
                "finished_at": None if status == "running" else clock(),
                "attempts": attempts or (before.attempts if before else 1),
                "reason": reason,
            }
        )
        state = "running" if status == "running" else "stalled"
        return current.with_record(record, status=state, reason=reason, updated_at=clock())

    store.update_model(IMPROVEMENTS, improvement_id, Improvement, step)


def _outputs(store: Store, current: Improvement) -> dict[Stage, StageOutput]:
    found: dict[Stage, StageOutput] = {}
    for stage in STAGES:
        output = store.find_model(STAGE_OUTPUTS, output_id(current.id, stage), StageOutput)
        if output is not None:
            found[stage] = output
    return found


def cancel_improvement(
    store: Store, improvement_id: str, *, clock: Clock = time.time
) -> Improvement:
    """Cancel now: status ``cancelled``; a finished improvement is returned unchanged."""

    def step(current: Improvement | None) -> Improvement:
        assert current is not None
        if current.terminal:
            return current
        now = clock()
        return current.model_copy(
            update={
                "stage": "cancelled",
                "status": "cancelled",
                "cancel_requested": True,
                "reason": f"cancelled after {current.stage or 'start'}",
                "updated_at": now,
                "finished_at": now,
            }
        )

    store.get(IMPROVEMENTS, improvement_id)  # NotFound before anything else
    return store.update_model(IMPROVEMENTS, improvement_id, Improvement, step)
