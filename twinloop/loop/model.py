"""The improvement's documents: the request that starts one, its state, its stage outputs.

An :class:`Improvement` (Store kind ``improvements``) is one run of the loop for one failed
experiment. Its ``stage`` is the last stage that finished; ``status`` says whether the driver may
go on (``running``), is waiting for a piece that is not there (``stalled``, with the reason), has
reached a decision (``done``: promoted, rolled back or abandoned) or was ``cancelled``;
``waiting`` means the HTTP edge drove the quick stages and the next one runs in the job. Each
stage's output is its own document (kind ``improvement_stages``, id ``<improvement>.<stage>``),
written once: a stage whose output exists is never run again, which is what makes a killed
driver's restart reach the same decision.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field

from twinloop.contract import ID_FIELD_PATTERN, FrozenModel

IMPROVEMENTS: Final = "improvements"
STAGE_OUTPUTS: Final = "improvement_stages"

Stage = Literal[
    "analyzed",
    "planned",
    "candidates",
    "championship",
    "canary",
    "promoted",
    "rolled_back",
    "abandoned",
    "cancelled",
]
#: the working stages, in order; each runs once and hands its output to the next
STAGES: Final[tuple[Stage, ...]] = ("analyzed", "planned", "candidates", "championship", "canary")
#: where an improvement ends; ``cancelled`` is reached by request, the others by a stage
TERMINAL: Final[frozenset[Stage]] = frozenset({"promoted", "rolled_back", "abandoned", "cancelled"})
#: the decisions a stage may end the improvement with (the canary's two, or giving up)
DECISIONS: Final[frozenset[Stage]] = frozenset({"promoted", "rolled_back", "abandoned"})

Status = Literal["running", "waiting", "stalled", "done", "cancelled"]
Trigger = Literal["manual", "analyze_failure", "job", "cli"]
RecordStatus = Literal["running", "done", "unavailable", "failed"]


class ImprovementSpec(FrozenModel):
    """What starts an improvement: the failed experiment (its analysis must be in the Store)."""

    experiment_id: str = Field(pattern=ID_FIELD_PATTERN, description="the analysed A/B test")
    family: str | None = Field(
        default=None,
        pattern=ID_FIELD_PATTERN,
        description="the model family the loser belongs to (default: the experiment id)",
    )
    seed: int | None = Field(
        default=None, ge=0, description="root seed of every stage (default: from the id)"
    )
    budget_seconds: float = Field(
        default=3_600.0, gt=0.0, le=7 * 86_400.0, description="wall-clock budget of the run"
    )
    trigger: Trigger = "manual"


class EvidenceLink(FrozenModel):
    """A Store document that backs a stage's decision (``GET`` it by kind and id)."""

    kind: str
    id: str
    note: str = ""


class StageRecord(FrozenModel):
    """One stage's attempt: when it ran, how it ended, where its output is."""

    stage: Stage
    status: RecordStatus
    started_at: float
    finished_at: float | None = None
    attempts: int = Field(default=1, ge=1, description="drivers that started this stage")
    output_id: str | None = Field(default=None, description="id of its improvement_stages doc")
    summary: str = ""
    reason: str | None = Field(default=None, description="why unavailable or failed")

    @property
    def duration_seconds(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


class Improvement(FrozenModel):
    """One run of the loop; the driver moves ``stage`` forward one finished stage at a time."""

    id: str = Field(pattern=ID_FIELD_PATTERN)
    spec: ImprovementSpec
    family: str
    seed: int
    stage: Stage | None = Field(
        default=None, description="the last stage that finished (or the terminal one)"
    )
    status: Status
    reason: str | None = Field(default=None, description="why stalled, cancelled or abandoned")
    records: tuple[StageRecord, ...] = ()
    cancel_requested: bool = False
    created_at: float
    updated_at: float
    finished_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.stage in TERMINAL

    def record(self, stage: Stage) -> StageRecord | None:
        """The latest record of ``stage``, if it was attempted."""
        return next((r for r in reversed(self.records) if r.stage == stage), None)

    def with_record(self, record: StageRecord, **changes: Any) -> Improvement:
        """A copy whose record of ``record.stage`` is replaced (or appended)."""
        kept = tuple(r for r in self.records if r.stage != record.stage)
        return self.model_copy(update={"records": (*kept, record), **changes})


class StageOutput(FrozenModel):
    """A finished stage's output: what it decided and the evidence, written exactly once."""

    improvement_id: str
    stage: Stage
    summary: str
    outcome: dict[str, Any] = Field(default_factory=dict, description="the stage's own result")
    evidence: tuple[EvidenceLink, ...] = ()
    decision: Stage | None = Field(
        default=None, description="promoted | rolled_back | abandoned when this stage ends the run"
    )
    seed: int
    finished_at: float


def output_id(improvement_id: str, stage: Stage) -> str:
    """The Store id of a stage's output; stage names are short, ids keep the id rule."""
    return f"{improvement_id}.{stage}"[:128]


def next_stage(stage: Stage | None) -> Stage | None:
    """The working stage after ``stage`` (None after the canary or at a terminal stage)."""
    if stage is None:
        return STAGES[0]
    if stage not in STAGES:
        return None
    index = STAGES.index(stage)
    return STAGES[index + 1] if index + 1 < len(STAGES) else None
