"""Stage functions for the loop's tests: real Store writes with derived ids, a planted gate.

Used in-process by ``test_loop_machine`` and by the resume test's job subprocess
(``--stages loop_stages:STAGES`` with this folder on ``PYTHONPATH``). ``LOOP_TEST_SLEEP``
(seconds) slows the candidates stage so a test can kill the driver in the middle of it.
"""

from __future__ import annotations

import contextlib
import os
import time

from twinloop.errors import VersionConflict
from twinloop.loop import StageContext, StageResult
from twinloop.loop.learning import failure_patterns, rank_actions, warm_start
from twinloop.loop.model import EvidenceLink
from twinloop.loop.stages import analyzed

VERSIONS = "test_versions"
ALIASES = "test_aliases"
CANDIDATES = 3


def planned(context: StageContext) -> StageResult:
    """Two actions; the learning's ranking (estimated ROI × past success) picks one."""
    estimated = {"retrain": 1.0, "threshold": 1.0}
    analyzed = context.outputs["analyzed"]
    ranked = rank_actions(context.store, failure_patterns(analyzed), estimated)
    actions = [{"kind": kind, "expected_roi": roi} for kind, roi in ranked]
    return StageResult(
        summary=f"{len(actions)} actions", outcome={"actions": actions, "chosen": ranked[0][0]}
    )


def candidates(context: StageContext) -> StageResult:
    """Register three versions under ids derived from the improvement, slowly if asked;
    the search starts at the past winners of the pattern (warm start) when there are any."""
    pause = float(os.environ.get("LOOP_TEST_SLEEP", "0"))
    action = context.outputs["planned"].outcome["chosen"]
    patterns = failure_patterns(context.outputs["analyzed"])
    starts = warm_start(context.store, patterns, action) or [{"depth": 3 + context.seed % 5}]
    ids = []
    for index in range(CANDIDATES):
        ident = context.derived_id("v", index)
        score = (context.seed % 1000 + index * 7) % 10
        # a driver that died after writing it registered it already
        with contextlib.suppress(VersionConflict):
            context.store.put(VERSIONS, ident, {"score": score}, expected_version=0)
        ids.append(ident)
        time.sleep(pause)
    return StageResult(
        summary=f"{len(ids)} candidates",
        outcome={"versions": ids, "first_config": starts[0]},
        evidence=tuple(EvidenceLink(kind=VERSIONS, id=i) for i in ids),
    )


def move_alias(context: StageContext, alias: str, version: str) -> None:
    """Compare-and-set an alias; moving it to where it already points writes nothing."""
    key = f"{context.improvement.family}.{alias}"
    found = context.store.find(ALIASES, key)
    if found is not None and found.doc["version"] == version:
        return
    context.check_cancelled()
    expected = 0 if found is None else found.version
    context.store.put(ALIASES, key, {"version": version}, expected_version=expected)


def championship(context: StageContext) -> StageResult:
    """The best candidate becomes challenger unless the (planted) gates fail."""
    versions = context.outputs["candidates"].outcome["versions"]
    best = max(versions, key=lambda v: (context.store.get(VERSIONS, v).doc["score"], v))
    if context.improvement.family.startswith("gates-fail"):
        return StageResult(summary="gates failed: primary P < 0.95", decision="abandoned")
    move_alias(context, "challenger", best)
    outcome = {
        "winner": best,
        "predicted_effect": 0.04,
        "winner_config": context.outputs["candidates"].outcome["first_config"],
    }
    return StageResult(summary=f"{best} wins", outcome=outcome)


def canary(context: StageContext) -> StageResult:
    winner = context.outputs["championship"].outcome["winner"]
    move_alias(context, "champion", winner)
    return StageResult(
        summary=f"{winner} promoted", outcome={"measured_effect": 0.03}, decision="promoted"
    )


STAGES = {
    "analyzed": analyzed,
    "planned": planned,
    "candidates": candidates,
    "championship": championship,
    "canary": canary,
}
