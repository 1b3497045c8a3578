"""The customer population as fixed slots in numpy arrays.

A customer keeps its slot for the whole run and churned slots are never reused or compacted.
That costs a little memory but buys *common random numbers*: slot i is the same customer, with the
same random draws, in every run that shares a seed — whatever model is being tested.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from twinloop.sim.state import Contacts, Sales


class Population:
    """Per-customer state, grown by doubling; only slots [0, n) are in use."""

    def __init__(self, capacity: int, n_features: int, *, features: bool, units: bool) -> None:
        capacity = max(capacity, 16)
        self.n = 0
        self.active = np.zeros(capacity, dtype=bool)
        self.segment = np.zeros(capacity, dtype=np.int16)
        self.channel = np.zeros(capacity, dtype=np.int16)
        self.variant = np.zeros(capacity, dtype=np.int16)
        self.satisfaction = np.zeros(capacity, dtype=np.float32)
        self.arrival_step = np.zeros(capacity, dtype=np.int32)
        # Per-step event probabilities as uint32 thresholds (p·2³²), compared with raw random
        # bits: no float conversion and no per-step gather or exp over the whole population.
        self.interact_threshold = np.zeros(capacity, dtype=np.uint32)
        self.churn_threshold = np.zeros(capacity, dtype=np.uint32)
        self.features: NDArray[np.float32] | None = (
            np.zeros((capacity, n_features), dtype=np.float32) if features else None
        )
        # Per-unit counters, kept only when the caller wants one row per customer.
        self.units = units
        if units:
            self.interactions = np.zeros(capacity, dtype=np.int32)
            self.conversions = np.zeros(capacity, dtype=np.int32)
            self.correct = np.zeros(capacity, dtype=np.int32)
            self.revenue = np.zeros(capacity, dtype=np.float64)
            self.latency_sum = np.zeros(capacity, dtype=np.float64)
            self.churn_step = np.full(capacity, -1, dtype=np.int32)

    @property
    def capacity(self) -> int:
        return int(self.active.size)

    def _grow(self, needed: int) -> None:
        old_capacity = self.capacity
        new_capacity = max(needed, 2 * old_capacity)
        for name, value in list(vars(self).items()):
            if isinstance(value, np.ndarray):
                shape = (new_capacity, *value.shape[1:])
                fill = -1 if name == "churn_step" else 0
                grown = np.full(shape, fill, dtype=value.dtype)
                grown[:old_capacity] = value
                setattr(self, name, grown)

    def add(
        self,
        segment: NDArray[np.integer],
        channel: NDArray[np.integer],
        variant: NDArray[np.integer],
        interact_threshold: NDArray[np.uint32],
        churn_threshold: NDArray[np.uint32],
        satisfaction: float,
        step: int,
        features: NDArray[np.floating] | None,
    ) -> slice:
        """Append new active customers; returns their slot range."""
        count = int(segment.size)
        if self.n + count > self.capacity:
            self._grow(self.n + count)
        new = slice(self.n, self.n + count)
        self.active[new] = True
        self.segment[new] = segment
        self.channel[new] = channel
        self.variant[new] = variant
        self.interact_threshold[new] = interact_threshold
        self.churn_threshold[new] = churn_threshold
        self.satisfaction[new] = satisfaction
        self.arrival_step[new] = step
        if self.features is not None and features is not None:
            self.features[new] = features
        self.n += count
        return new

    def record(
        self, contacts: Contacts, sales: Sales, churned: NDArray[np.int64], step: int
    ) -> None:
        """Add one tick's contacts to the per-unit counters (kept only when ``units`` is on)."""
        idx = contacts.idx
        self.interactions[idx] += 1
        self.conversions[idx] += sales.converted
        self.correct[idx] += contacts.correct
        self.revenue[idx] += sales.revenue
        self.latency_sum[idx] += contacts.latency
        self.churn_step[churned] = step
