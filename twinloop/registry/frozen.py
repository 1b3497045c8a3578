"""`Frozen`: the value-object base of the registry and championship models.

One definition for both packages until the project-wide contract module (``twinloop.contract``)
lands; then this module re-exports that base and callers do not change.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable, and unknown fields are errors (a typo in a spec is never silently dropped)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
