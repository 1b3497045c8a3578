"""One row per customer: the raw per-unit data an A/B analysis wants (variant, segment, …)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.population import Population


def units_table(
    pop: Population, env: BusinessEnvironment, variants: list[str], dt: float
) -> pa.Table:
    """Build the per-customer table; dictionary-encoded string columns keep it small."""
    n = pop.n
    seg_names = pa.array([s.name for s in env.segments])
    channel_names = pa.array([c.name for c in env.acquisition.channels])
    variant_names = pa.array(variants)
    interactions = pop.interactions[:n]
    # Customers who never interacted have no latency or accuracy: null, not NaN.
    none = interactions == 0
    safe = np.maximum(interactions, 1)
    latency_mean = pa.array(pop.latency_sum[:n] / safe, mask=none)
    accuracy = pa.array(pop.correct[:n] / safe, mask=none)
    churn_step = pop.churn_step[:n]
    return pa.table(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "variant": pa.DictionaryArray.from_arrays(
                pop.variant[:n].astype(np.int32), variant_names
            ),
            "segment": pa.DictionaryArray.from_arrays(pop.segment[:n].astype(np.int32), seg_names),
            "channel": pa.DictionaryArray.from_arrays(
                pop.channel[:n].astype(np.int32), channel_names
            ),
            "arrival_day": pop.arrival_step[:n] * dt,
            "churned": churn_step >= 0,
            "interactions": interactions.astype(np.int64),
            "conversions": pop.conversions[:n].astype(np.int64),
            "converted": pop.conversions[:n] > 0,
            "revenue": pop.revenue[:n],
            "latency_ms": latency_mean,
            "accuracy": accuracy,
            "satisfaction": pop.satisfaction[:n].astype(np.float64),
        }
    )
