"""Starting an improvement: once per experiment, and automatically only when it is warranted.

The improvement's id is derived from the experiment id, and the document is created with the
Store's create-only write (``expected_version=0``): of two concurrent triggers for the same
experiment (two analyses, an HTTP call and a job) exactly one creates it and the other gets the
existing one back. An improvement needs the experiment's stored analysis, checked before
anything is written. :func:`auto_trigger` is the ``AUTO_IMPROVE`` rule of ``POST
/analyze-failure``: start when the setting is on and the key metric's relative loss exceeds
``FAILURE_THRESHOLD``, and otherwise say why not.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from pydantic import Field

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.config import Settings
from twinloop.contract import ID_PATTERN, FrozenModel
from twinloop.errors import InvalidInput, VersionConflict
from twinloop.loop.model import IMPROVEMENTS, Improvement, ImprovementSpec
from twinloop.store import Store


class TriggerDecision(FrozenModel):
    """Whether an analysis started an improvement, and why (or why not)."""

    started: bool = Field(description="an improvement was started (or already existed)")
    improvement_id: str | None = None
    created: bool = Field(default=False, description="this call created it")
    reason: str


def improvement_id(experiment_id: str) -> str:
    """The one improvement id of an experiment: ``imp-<experiment>`` (hashed when too long)."""
    text = f"imp-{experiment_id}"
    if ID_PATTERN.fullmatch(text):
        return text
    return f"imp-{hashlib.sha256(experiment_id.encode()).hexdigest()[:40]}"


def default_seed(ident: str) -> int:
    """A seed fixed by the id, so an improvement started twice draws the same numbers."""
    return int.from_bytes(hashlib.sha256(ident.encode()).digest()[:4], "big")


def start_improvement(
    store: Store, spec: ImprovementSpec, *, clock: Callable[[], float] = time.time
) -> tuple[Improvement, bool]:
    """Create the experiment's improvement unless it exists; returns it and whether it is new.

    Raises InvalidInput naming ``experiment_id`` when the experiment has no stored analysis;
    nothing is written then.
    """
    if store.find(ANALYSES, spec.experiment_id) is None:
        raise InvalidInput(
            "experiment_id",
            f"no stored analysis of {spec.experiment_id!r}; analyse the A/B test first",
        )
    ident = improvement_id(spec.experiment_id)
    existing = store.find_model(IMPROVEMENTS, ident, Improvement)
    if existing is not None:
        return existing, False
    now = clock()
    improvement = Improvement(
        id=ident,
        spec=spec,
        family=spec.family or spec.experiment_id,
        seed=spec.seed if spec.seed is not None else default_seed(ident),
        status="running",
        created_at=now,
        updated_at=now,
    )
    try:
        store.put(IMPROVEMENTS, ident, improvement.model_dump(mode="json"), expected_version=0)
    except VersionConflict:  # a concurrent trigger created it first: that one is the run
        return store.get_model(IMPROVEMENTS, ident, Improvement), False
    return improvement, True


def auto_trigger(
    store: Store,
    analysis: FailureAnalysis,
    settings: Settings,
    *,
    stored: bool = True,
    clock: Callable[[], float] = time.time,
) -> TriggerDecision:
    """The ``AUTO_IMPROVE`` rule after an analysis: start an improvement, or say why not."""
    threshold = settings.failure_threshold
    if not settings.auto_improve:
        return TriggerDecision(started=False, reason="AUTO_IMPROVE is off")
    loss = analysis.impact.key_relative_loss
    if loss is None:
        return TriggerDecision(started=False, reason="no relative loss on a key metric")
    if loss <= threshold:
        return TriggerDecision(
            started=False,
            reason=f"loss {loss:.1%} does not exceed FAILURE_THRESHOLD {threshold:.1%}",
        )
    if not stored:
        return TriggerDecision(started=False, reason="the analysis was not stored (store=false)")
    spec = ImprovementSpec(experiment_id=analysis.experiment_id, trigger="analyze_failure")
    improvement, created = start_improvement(store, spec, clock=clock)
    return TriggerDecision(
        started=True,
        improvement_id=improvement.id,
        created=created,
        reason=f"loss {loss:.1%} exceeds FAILURE_THRESHOLD {threshold:.1%}",
    )
