"""Time-varying conditions of a run: seasonality and the scenario shocks active at a given day."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from twinloop.sim.environment import BusinessEnvironment

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Conditions:
    """Multipliers in force during one step (all 1/0 when no shock is active)."""

    arrival_multiplier: float
    interaction_multiplier: float
    segment_shares: NDArray[np.float64]
    outage_fraction: float
    price_change: float
    order_value_multiplier: float


def seasonality(env: BusinessEnvironment, day: float) -> float:
    """Weekly × yearly arrival multiplier at ``day`` (day 0 is a Monday)."""
    acq = env.acquisition
    weekly = acq.weekly[math.floor(day) % 7] / (sum(acq.weekly) / 7.0)
    phase = 2.0 * math.pi * (day - acq.yearly_peak_day) / DAYS_PER_YEAR
    return weekly * (1.0 + acq.yearly_amplitude * math.cos(phase))


def conditions_at(env: BusinessEnvironment, day: float) -> Conditions:
    """Combine every shock active at ``day``; several shocks of one kind multiply (or add)."""
    arrivals = seasonality(env, day)
    interactions = 1.0
    shares = np.array([s.share for s in env.segments], dtype=np.float64)
    outage = 0.0
    price = 1.0
    order_value = 1.0
    for shock in env.shocks:
        if not shock.start_day <= day < shock.end_day:
            continue
        if shock.kind == "surge":
            arrivals *= shock.magnitude
            interactions = min(interactions * shock.magnitude, 1e6)
        elif shock.kind == "seasonal_peak":
            arrivals *= shock.magnitude
            order_value *= shock.magnitude
        elif shock.kind == "segment_mix_shift":
            target = np.zeros_like(shares)
            target[env.segment_index(shock.segment or "")] = 1.0
            shares = (1.0 - shock.magnitude) * shares + shock.magnitude * target
        elif shock.kind == "outage":
            outage = 1.0 - (1.0 - outage) * (1.0 - shock.magnitude)
        elif shock.kind == "price_change":
            price *= 1.0 + shock.magnitude
    return Conditions(
        arrival_multiplier=arrivals,
        interaction_multiplier=interactions,
        segment_shares=shares / shares.sum(),
        outage_fraction=outage,
        price_change=price - 1.0,
        order_value_multiplier=order_value,
    )
