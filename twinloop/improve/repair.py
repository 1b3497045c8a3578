"""Repairs for a qa veto: which change to the search answers which failed edge-case scenario.

The qa agent vetoes a confirmed candidate that fails one of its edge cases (``twinloop.agents
.qa``). The loop then retrains once more with that scenario's repair in the search space
(``RetrainRequest.qa_repair``) and the vetoed winner, repaired, as the first recipe; the new
candidate is confirmed and goes through qa again like any other. Only a scenario with a
data-side answer has a repair. A cold start is a region of feature space the training rows
never cover (no history: every customer feature 0), so a model extrapolates its slopes there;
rows with the features zeroed and the labels kept cover it (``Recipe.cold_start_share``).

The range of that share is not fitted to a case: its low end is the quarter of traffic the qa
scenario sends without history, its high end as many cold rows as real ones. The repair round
also decides at 0.5: the gate judges a decision by its hit rate against the customer's intent,
which a calibrated score maximises at 0.5, and a shifted threshold moves a segment whose base
rate lies between the two to the wrong side (the demo's repaired winner at 0.564 failed again).
On the demo's family every share in the range passes qa and costs under half a point of hit rate
on ordinary traffic (docs/loop.md, "When qa vetoes the winner").
"""

from __future__ import annotations

from typing import Final, Literal

from twinloop.improve.recipe import Recipe
from twinloop.improve.space import Range, SearchSpace

QaRepair = Literal["cold_start"]
COLD_START_SHARE: Final[Range] = (0.25, 1.0)
REPAIRED_SHARE: Final = 0.5  # the vetoed winner's repair: the middle of the range, log scale


def repair_of(scenario: object) -> QaRepair | None:
    """The repair of a failed qa scenario, or None when no recipe change answers it."""
    return "cold_start" if scenario == "cold_start" else None


def repair_space(space: SearchSpace, repair: QaRepair) -> SearchSpace:
    """The space with the repair searched, and a reason saying why."""
    reason = (
        f"cold_start_share searched in {COLD_START_SHARE}: qa found the candidate worse than "
        "the champion on customers without history"
    )
    update = {
        "cold_start_share": COLD_START_SHARE,
        "threshold": (0.5, 0.5),
        "reasons": [*space.reasons, reason, "threshold 0.5: where the qa gate's hit rate is best"],
    }
    return space.model_copy(update=update)


def repaired(recipe: Recipe, repair: QaRepair) -> Recipe:
    """The vetoed winner with the repair applied: the repair round's first recipe."""
    update = {
        "name": f"{recipe.name}+{repair}",
        "cold_start_share": REPAIRED_SHARE,
        "threshold": 0.5,
    }
    return recipe.model_copy(update=update)
