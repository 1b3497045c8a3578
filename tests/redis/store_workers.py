"""Writers for the store's concurrency tests, kept out of the test module so spawned processes
import only this and the store (not pytest's test module with its fixtures)."""

from __future__ import annotations

from typing import Any

from twinloop.store import Store


def plus_one(doc: dict[str, Any] | None) -> dict[str, Any]:
    """The read-modify-write step: a counter that starts at 0."""
    return {"n": (doc or {"n": 0})["n"] + 1}


def increment_many(store: Store, times: int) -> None:
    """Increment the shared counter ``times`` times through update(), retrying conflicts."""
    for _ in range(times):
        store.update("counter", "shared", plus_one, retries=1000)
