"""The library of known anomaly patterns as kept in the Store: its kind and its ids.

The detector matches against a plain list of patterns (``patterns.py`` never stores it); every
caller that keeps a library in the project's Store — the CLI, the HTTP API — reads and writes it
here, so they share one kind and one id rule and see each other's learned patterns.
"""

from __future__ import annotations

from typing import Final

from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.models import AnomalyPattern
from twinloop.store import Store

PATTERN_KIND: Final = "anomaly_pattern"  # Store kind of the pattern library


def pattern_id(name: str, field: str = "learn") -> str:
    """A store id from a pattern name: letters, digits, '.', '_' and '-' only.

    ``field`` names where the name came from, for the error when nothing is left of it.
    """
    ident = "".join(c if c.isalnum() or c in "._-" else "-" for c in name.strip()).strip("-.")
    if not ident:
        raise InvalidInput(field, f"{name!r} gives an empty pattern id")
    return ident[:128]


def stored_patterns(store: Store) -> list[AnomalyPattern]:
    """The patterns learned so far, oldest first (the order they were matched in before)."""
    return store.query_models(PATTERN_KIND, AnomalyPattern, order="oldest")


def keep_pattern(store: Store, pattern: AnomalyPattern, field: str = "learn") -> str:
    """Store a learned pattern under the id of its name (replacing one of the same name)."""
    ident = pattern_id(pattern.name, field)
    store.put_model(PATTERN_KIND, ident, pattern)
    return ident
