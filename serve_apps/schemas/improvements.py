"""Bodies of the improvement-loop routes: start one by hand; the core's models answer."""

from __future__ import annotations

from serve_apps.schemas.base import EDGE_CONFIG, EdgeModel
from twinloop.loop import ImprovementSpec


class ImprovementCreate(EdgeModel, ImprovementSpec):
    """``POST /improvements``: ``{"experimentId": ..., "family"?, "seed"?, "budgetSeconds"?}``.

    The experiment's analysis must be stored (``POST /analyze-failure`` first); a second start
    of the same experiment returns the existing improvement.
    """

    model_config = EDGE_CONFIG

    def spec(self) -> ImprovementSpec:
        return ImprovementSpec.model_validate(self.model_dump(exclude={"trigger"}))
