"""Whether the store still holds what it held: a marker written at start-up, checked by deep health.

A Redis without persistence (no AOF, no RDB) that restarts comes back empty and answers PING as
if nothing happened: every stored environment, analysis and run is gone, and the API would go on
serving 404s. The ingress writes a marker document when it starts (:func:`mark`);
``GET /healthz?deep=true`` reads it back (:func:`check`) and reports the store ``empty`` —
so ``degraded``, 503 — when it is missing.
"""

from __future__ import annotations

import logging
import time

from twinloop.errors import StoreError, VersionConflict
from twinloop.store import Store

log = logging.getLogger("twinloop.serve")

MARKER_KIND = "meta"
MARKER_ID = "store-marker"
EMPTY = (
    "empty: the marker written at start-up is gone — the store lost its data "
    "(a Redis restarted without AOF or RDB persistence?)"
)


def mark(store: Store) -> None:
    """Write the marker unless it is there (the first ingress replica writes it)."""
    try:
        store.put(MARKER_KIND, MARKER_ID, {"written_at": time.time()}, expected_version=0)
    except VersionConflict:
        pass  # written by an earlier start or another replica
    except StoreError as exc:
        log.warning("could not write the store marker: %s", exc)


def check(store: Store) -> str:
    """'ok', or why the store is not: its error, or ``EMPTY`` when the marker is gone."""
    try:
        store.ping()
        return "ok" if store.find(MARKER_KIND, MARKER_ID) is not None else EMPTY
    except StoreError as exc:
        return f"error: {exc.public_message()}"
