"""Sticky, monotone assignment of units to the champion or the canary of a model family.

A unit's *bucket* is a number in [0, 1) drawn from sha256(family, salt, unit id): the same unit
always gets the same bucket for a given family and salt, and buckets are uniform over units. A
unit goes to the canary when its bucket is below the canary weight. Raising the weight from 5% to
20% therefore keeps every unit of the first 5% on the canary and moves only units whose bucket
lies in [0.05, 0.20) — the assignment is monotone in the weight. A new salt (a new canary
experiment) reshuffles the buckets so one unlucky set of units is not always the first exposed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, Literal

from pydantic import Field, model_validator

from twinloop.contract import FrozenModel

Role = Literal["champion", "canary"]
_BUCKET_BITS: Final = 64
_SEP: Final = "\x1f"  # a byte no id may contain, so ("a", "bc") and ("ab", "c") hash apart


def _prefix(family: str, salt: str) -> bytes:
    return f"{family}{_SEP}{salt}{_SEP}".encode()


def _position(prefix: bytes, unit_id: str) -> int:
    """The unit's bucket as an integer in [0, 2^64)."""
    return int.from_bytes(hashlib.sha256(prefix + unit_id.encode()).digest()[:8], "big")


def bucket(family: str, salt: str, unit_id: str) -> float:
    """The unit's uniform position in [0, 1), fixed for (family, salt, unit id)."""
    return _position(_prefix(family, salt), unit_id) / 2.0**_BUCKET_BITS


class CanaryConfig(FrozenModel):
    """What the family's router serves: the Serve deployment's ``user_config``.

    ``generation`` counts canary experiments of the family (a new canary version starts a new
    one); ``salt`` is fixed per generation, so changing only the weight moves only the units it
    must. Invariant: ``weight`` is 0 when there is no canary.
    """

    family: str
    champion: str
    canary: str | None = None
    weight: float = Field(default=0.0, ge=0.0, le=1.0)
    salt: str = "0"
    generation: int = Field(default=0, ge=0)
    n_features: int | None = Field(default=None, ge=1, description="Width of a feature row.")
    batching: bool = Field(
        default=False, description="Score through serve.batch (pays only for costly models)."
    )

    @model_validator(mode="after")
    def _weight_needs_canary(self) -> CanaryConfig:
        if self.canary is None and self.weight != 0.0:
            raise ValueError(f"weight must be 0 without a canary, got {self.weight}")
        return self

    def _threshold(self) -> int:
        """Units whose position is below this go to the canary (0 when there is none)."""
        if self.canary is None:
            return 0
        return int(self.weight * 2**_BUCKET_BITS)

    def role(self, unit_id: str) -> Role:
        """Which side serves ``unit_id`` under this configuration."""
        below = _position(_prefix(self.family, self.salt), unit_id) < self._threshold()
        return "canary" if below else "champion"

    def version(self, unit_id: str) -> str:
        """The version id that answers ``unit_id``."""
        return self.versions([unit_id])[0]

    def versions(self, unit_ids: Sequence[str]) -> list[str]:
        """The version of each unit (one hash per unit; the prefix is hashed in once)."""
        threshold = self._threshold()
        if threshold == 0:
            return [self.champion] * len(unit_ids)
        prefix, champion = _prefix(self.family, self.salt), self.champion
        canary = self.canary or champion  # not None here: the threshold is 0 without a canary
        return [canary if _position(prefix, u) < threshold else champion for u in unit_ids]
