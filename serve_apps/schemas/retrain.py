"""Request bodies of ``POST /models/{family}/retrain`` (the family comes from the path)."""

from __future__ import annotations

from pydantic import Field

from serve_apps.schemas.base import EdgeModel
from twinloop.contract import ID_FIELD_PATTERN
from twinloop.registry.models import FAMILY_PATTERN


class RetrainBody(EdgeModel):
    """What a client posts: which stored analysis, how many recipes, which twin rows."""

    analysis_id: str = Field(pattern=ID_FIELD_PATTERN, description="A stored FailureAnalysis.")
    samples: int = Field(default=8, ge=1, le=64, description="Recipes to try.")
    seed: int = Field(default=0, ge=0, lt=2**63)
    rows: int = Field(default=8_000, ge=10, le=500_000, description="Twin rows to train on.")
    register_version: bool = Field(default=True, description="Register a confirmed candidate.")


class RetrainModelRequest(RetrainBody):
    """The stored run's body: the posted fields plus the family from the path."""

    family: str = Field(pattern=FAMILY_PATTERN)
