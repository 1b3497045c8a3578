"""The autonomous improvement loop: one persisted, resumable state machine per failure.

``model`` holds the documents (the :class:`Improvement`, its stage records and stage outputs),
``machine`` the transitions and the driver that resumes from the last finished stage,
``triggers`` the create-once rule and the ``AUTO_IMPROVE`` decision, ``learning`` the
cross-model posterior per (failure pattern, action kind), ``kpis`` the seed's loop KPIs
computed from the Store. Stage functions are injected (a mapping stage → callable), so each
piece of phase 2 plugs in where it exists and a missing one says so in the stage's status.
"""

from __future__ import annotations

from twinloop.loop.machine import (
    StageContext,
    StageFn,
    StageResult,
    StageUnavailable,
    cancel_improvement,
    run_improvement,
)
from twinloop.loop.model import (
    IMPROVEMENTS,
    STAGE_OUTPUTS,
    STAGES,
    Improvement,
    ImprovementSpec,
    Stage,
    StageOutput,
    StageRecord,
)
from twinloop.loop.triggers import TriggerDecision, improvement_id, start_improvement

__all__ = [
    "IMPROVEMENTS",
    "STAGES",
    "STAGE_OUTPUTS",
    "Improvement",
    "ImprovementSpec",
    "Stage",
    "StageContext",
    "StageFn",
    "StageOutput",
    "StageRecord",
    "StageResult",
    "StageUnavailable",
    "TriggerDecision",
    "cancel_improvement",
    "improvement_id",
    "run_improvement",
    "start_improvement",
]
