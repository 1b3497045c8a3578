"""Cross-model learning: what worked before, per (failure pattern, action kind), across families.

Each finished improvement updates one :class:`ActionRecord` per failure pattern its analysis
recognised, for the action it took: a Beta posterior of success (promoted or not; the prior is
Beta(1, 1)), the uplifts it saw as sufficient statistics, and the winning configuration of the
best success (the warm start of the next search, Tune's ``points_to_evaluate``). An update is a
Store compare-and-set keyed by the improvement id, so a driver that re-runs its last step counts
an improvement once. :func:`rank_actions` is the prior of a plan's ranking: expected ROI =
estimated ROI × posterior mean of success, so an action that kept working for a pattern rises
above an untried one of the same estimated ROI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import Field
from scipy import stats

from twinloop.contract import FrozenModel
from twinloop.loop.model import STAGE_OUTPUTS, Improvement, StageOutput, output_id
from twinloop.store import Store

LEARNING: Final = "loop_learning"
PRIOR: Final = (1.0, 1.0)  # Beta(1, 1): no opinion before the first improvement


class ActionRecord(FrozenModel):
    """What one action kind achieved against one failure pattern, over improvements."""

    pattern: str
    action: str
    successes: int = 0
    failures: int = 0
    uplift_n: int = 0
    uplift_sum: float = 0.0
    uplift_sum_sq: float = 0.0
    best_uplift: float | None = None
    best_config: dict[str, Any] | None = Field(default=None, description="the best winner's")
    improvements: tuple[str, ...] = Field(default=(), description="counted once each")

    @property
    def alpha(self) -> float:
        return PRIOR[0] + self.successes

    @property
    def beta(self) -> float:
        return PRIOR[1] + self.failures

    @property
    def success_mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def success_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Equal-tailed credible interval of the success probability."""
        tail = (1.0 - level) / 2.0
        low, high = stats.beta.ppf([tail, 1.0 - tail], self.alpha, self.beta)
        return float(low), float(high)

    @property
    def uplift_mean(self) -> float | None:
        return self.uplift_sum / self.uplift_n if self.uplift_n else None


class Outcome(FrozenModel):
    """One finished improvement as the learning sees it."""

    improvement_id: str
    patterns: tuple[str, ...]
    action: str
    success: bool
    uplift: float | None = None
    config: dict[str, Any] | None = None


def record_id(pattern: str, action: str) -> str:
    """The Store id of a (pattern, action) record; other characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{pattern}.{action}")[:128]


def record_outcome(store: Store, outcome: Outcome) -> list[ActionRecord]:
    """Add one improvement's outcome to the record of each of its patterns (once per id)."""
    updated = []
    for pattern in outcome.patterns:

        def step(current: ActionRecord | None, pattern: str = pattern) -> ActionRecord:
            record = current or ActionRecord(pattern=pattern, action=outcome.action)
            if outcome.improvement_id in record.improvements:
                return record
            return _added(record, outcome)

        ident = record_id(pattern, outcome.action)
        updated.append(store.update_model(LEARNING, ident, ActionRecord, step))
    return updated


def _added(record: ActionRecord, outcome: Outcome) -> ActionRecord:
    changes: dict[str, Any] = {
        "successes": record.successes + outcome.success,
        "failures": record.failures + (not outcome.success),
        "improvements": (*record.improvements, outcome.improvement_id),
    }
    if outcome.uplift is not None:
        changes.update(
            uplift_n=record.uplift_n + 1,
            uplift_sum=record.uplift_sum + outcome.uplift,
            uplift_sum_sq=record.uplift_sum_sq + outcome.uplift**2,
        )
        better = record.best_uplift is None or outcome.uplift > record.best_uplift
        if outcome.success and better:
            changes.update(best_uplift=outcome.uplift, best_config=outcome.config)
    return record.model_copy(update=changes)


def records_for(store: Store, patterns: Sequence[str], action: str) -> list[ActionRecord]:
    found = (store.find_model(LEARNING, record_id(p, action), ActionRecord) for p in patterns)
    return [record for record in found if record is not None]


def success_probability(store: Store, patterns: Sequence[str], action: str) -> float:
    """Posterior mean of success for ``action``, averaged over the failure's patterns (each
    pattern its own Beta; pooling the counts would count one improvement once per pattern)."""
    means = []
    for pattern in patterns or ("unpatterned",):
        found = store.find_model(LEARNING, record_id(pattern, action), ActionRecord)
        means.append(found.success_mean if found else PRIOR[0] / sum(PRIOR))
    return sum(means) / len(means)


def rank_actions(
    store: Store, patterns: Sequence[str], estimated_roi: Mapping[str, float]
) -> list[tuple[str, float]]:
    """Actions by expected ROI (estimated ROI × posterior success), best first; ties by name."""
    expected = {
        action: roi * success_probability(store, patterns, action)
        for action, roi in estimated_roi.items()
    }
    return sorted(expected.items(), key=lambda item: (-item[1], item[0]))


def warm_start(store: Store, patterns: Sequence[str], action: str) -> list[dict[str, Any]]:
    """Past winners' configurations for ``points_to_evaluate``, best uplift first, no repeats."""
    records = [r for r in records_for(store, patterns, action) if r.best_config is not None]
    records.sort(key=lambda r: -(r.best_uplift or 0.0))
    points: list[dict[str, Any]] = []
    for record in records:
        if record.best_config not in points:
            points.append(dict(record.best_config or {}))
    return points


def outcome_of(store: Store, improvement: Improvement) -> Outcome | None:
    """A decided improvement's outcome from its stage outputs (None when it took no action)."""
    outputs = {
        stage: store.find_model(STAGE_OUTPUTS, output_id(improvement.id, stage), StageOutput)
        for stage in ("analyzed", "planned", "candidates", "championship", "canary")
    }
    analyzed, planned = outputs["analyzed"], outputs["planned"]
    if improvement.stage not in ("promoted", "rolled_back", "abandoned") or planned is None:
        return None
    action = planned.outcome.get("chosen") or next(
        (a.get("kind") for a in planned.outcome.get("actions", []) if isinstance(a, Mapping)), None
    )
    if not isinstance(action, str) or analyzed is None:
        return None
    champion, canary = outputs["championship"], outputs["canary"]
    uplift = canary.outcome.get("measured_effect") if canary else None
    found = [o.outcome.get("winner_config") for o in (champion, outputs["candidates"]) if o]
    config = next((c for c in found if isinstance(c, dict)), None)
    return Outcome(
        improvement_id=improvement.id,
        patterns=failure_patterns(analyzed),
        action=action,
        success=improvement.stage == "promoted",
        uplift=uplift if isinstance(uplift, int | float) else None,
        config=config,
    )


def failure_patterns(analyzed: StageOutput) -> tuple[str, ...]:
    """The analysis's named patterns; without one, its failure types (``type:accuracy``)."""
    named = [str(p) for p in analyzed.outcome.get("patterns") or ()]
    types = [f"type:{t}" for t in analyzed.outcome.get("failure_types") or ()]
    return tuple(named or types or ["unpatterned"])


def learn_from(store: Store, improvement: Improvement) -> list[ActionRecord]:
    """Update the records with a decided improvement (idempotent by its id)."""
    outcome = outcome_of(store, improvement)
    return [] if outcome is None else record_outcome(store, outcome)
