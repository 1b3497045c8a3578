"""Bodies of the improvement routes: plan a stored analysis, start an improvement by hand."""

from __future__ import annotations

from pydantic import Field, ValidationError

from serve_apps.limits import Limits, check_limit
from serve_apps.schemas.base import EDGE_CONFIG, EdgeModel
from serve_apps.schemas.sandbox import HeadToHeadRequest
from twinloop.contract import ID_FIELD_PATTERN, invalid_input
from twinloop.loop import ImprovementSpec
from twinloop.loop.preflight import PreflightSpec
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.strategy.evidence import ValidationSize


class PlanRequest(EdgeModel, ValidationSize):
    """``{"analysisId": …}`` plus the size of each sandbox validation (``ValidationSize``)."""

    model_config = EDGE_CONFIG

    analysis_id: str = Field(pattern=ID_FIELD_PATTERN, description="A stored analysis' id.")

    def check(self, limits: Limits) -> None:
        """Each validation run within the sandbox's limits; all of them within customer-days."""
        check_limit("customers", self.customers, limits.max_customers)
        check_limit("days", self.days, limits.max_days)
        check_limit("replicates", self.replicates, limits.max_replicates)
        check_limit("customers", self.customer_days(), limits.max_customer_days)

    def customer_days(self) -> float:
        """Customer-days of every validation run: customers × days × replicates × 2 arms × top."""
        return self.customers * self.days * self.replicates * 2 * self.top

    def size(self) -> ValidationSize:
        return ValidationSize.model_validate(self.model_dump(exclude={"analysis_id"}))


class ImprovementCreate(EdgeModel, ImprovementSpec):
    """``POST /improvements``: ``{"experimentId": ..., "family"?, "seed"?, "budgetSeconds"?}``.

    The experiment's analysis must be stored (``POST /analyze-failure`` first); a second start
    of the same experiment returns the existing improvement.
    """

    model_config = EDGE_CONFIG

    def spec(self) -> ImprovementSpec:
        return ImprovementSpec.model_validate(self.model_dump(exclude={"trigger"}))


class ImprovementDrive(EdgeModel):
    """The body of a ``drive_improvement`` background run: which improvement to drive."""

    model_config = EDGE_CONFIG

    improvement_id: str = Field(pattern=ID_FIELD_PATTERN, description="An improvement's id.")


class PreflightRequest(EdgeModel, PreflightSpec):
    """``POST /preflight``: the planned test's id, the champion-vs-challenger head-to-head in
    the twin (the body of ``POST /sandbox/compare``), the KPI and the planned test's size."""

    model_config = EDGE_CONFIG

    head_to_head: HeadToHeadRequest

    def check(self, limits: Limits) -> None:
        self.head_to_head.check(limits)

    def spec(self) -> PreflightSpec:
        fields = self.head_to_head.core_fields()
        try:
            h2h = HeadToHeadSpec.model_validate(fields)
        except ValidationError as exc:
            raise invalid_input(exc, fields, field="headToHead") from exc
        return PreflightSpec.model_validate(
            {**self.model_dump(exclude={"head_to_head"}), "head_to_head": h2h}
        )
