"""The frozen, closed base model of the strategy and agent contracts.

Declared once here until the project-wide contract module lands; then this becomes an import.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """A value object: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")
