"""Paced runs: hold the simulation to a speed factor (simulated seconds per wall second)."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Sleeps so that simulated time runs ``speed`` times faster than the wall clock.

    The clock and sleep are injectable so tests can check pacing without waiting.
    """

    def __init__(
        self,
        speed: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None

    def wait_until(self, simulated_seconds: float) -> None:
        """Block until the wall clock has caught up with ``simulated_seconds / speed``."""
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + simulated_seconds / self.speed
        if due > now:
            self._sleep(due - now)
