"""Body of ``POST /improvements/plan``: which stored analysis to plan, and the validation size."""

from __future__ import annotations

from pydantic import Field

from serve_apps.schemas.base import EDGE_CONFIG, EdgeModel
from twinloop.contract import ID_FIELD_PATTERN
from twinloop.strategy.evidence import ValidationSize


class PlanRequest(EdgeModel, ValidationSize):
    """``{"analysisId": …}`` plus the size of each sandbox validation (``ValidationSize``)."""

    model_config = EDGE_CONFIG

    analysis_id: str = Field(pattern=ID_FIELD_PATTERN, description="A stored analysis' id.")

    def size(self) -> ValidationSize:
        return ValidationSize.model_validate(self.model_dump(exclude={"analysis_id"}))
