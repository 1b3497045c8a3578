"""Canary traffic simulated by the twin: units from the environment's population, outcomes from
its ground truth.

Each unit is a customer drawn as the twin draws them (:func:`~twinloop.sim.groundtruth
.sample_customers`: features, true intent, segment). The version the configuration assigns scores
it; its decision (act when the score reaches the version's threshold for the unit's segment:
0.5 unless the version is a predictor with its own thresholds) multiplies the conversion
probability as in the twin's lifecycle — by (1 + u) when right, (1 - u) when wrong, or by the
environment's ``decision_effects`` for the confusion cell it falls in; a conversion earns the
average order value × the segment's value × a log-normal spread. The per-unit ``revenue`` is
the outcome the canary is judged on (and ``conversions``, 0/1), so a better model truly earns more.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
from numpy.typing import NDArray

from twinloop.canary.assignment import CanaryConfig
from twinloop.canary.outcomes import CanaryStats, merge_arrays
from twinloop.sim.effects import scored_multiplier
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.groundtruth import sample_customers
from twinloop.sim.models import Predictor


def unit_revenue(
    env: BusinessEnvironment,
    scores: NDArray[np.float64],
    intent: NDArray[np.int64],
    segment: NDArray[np.int64],
    rng: np.random.Generator,
    cut: NDArray[np.float64] | float = 0.5,
) -> NDArray[np.float64]:
    """Revenue of each unit given the model's scores, its decision threshold per unit (``cut``)
    and the ground truth."""
    deal = env.transaction
    effect = scored_multiplier(deal, scores >= cut, intent == 1)
    multiplier = np.array([s.conversion_multiplier for s in env.segments])[segment]
    p = deal.base_conversion * multiplier * effect
    converted = rng.random(scores.size) < np.minimum(p, 1.0)
    sigma = deal.order_value_sigma
    value = np.array([s.value for s in env.segments])[segment] * deal.average_order_value
    spread = np.exp(sigma * rng.standard_normal(scores.size) - sigma * sigma / 2)  # mean 1
    return np.where(converted, value * spread, 0.0)


def unit_outcomes(
    env: BusinessEnvironment,
    scores: NDArray[np.float64],
    intent: NDArray[np.int64],
    segment: NDArray[np.int64],
    rng: np.random.Generator,
    cut: NDArray[np.float64] | float = 0.5,
) -> dict[str, NDArray[np.float64]]:
    """Per unit ``revenue`` and ``conversions`` (0/1) from the ground truth."""
    revenue = unit_revenue(env, scores, intent, segment, rng, cut)
    return {"revenue": revenue, "conversions": (revenue > 0).astype(np.float64)}


def traffic_batches(
    env: BusinessEnvironment,
    config: CanaryConfig,
    predictors: Mapping[str, Predictor],
    *,
    batch_size: int,
    seed: int,
    thresholds: Mapping[str, NDArray[np.float64]] | None = None,
) -> Iterator[tuple[list[str], dict[str, dict[str, NDArray[np.float64]]]]]:
    """Endless batches: (unit ids, per version its units' outcomes), one seed-determined stream.

    ``thresholds`` gives a version its decision threshold per segment (environment order); a
    version without one acts at score >= 0.5."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    start = 0
    while True:
        x, intent, segment = sample_customers(env, batch_size, rng)
        units = [f"u{seed}-{start + i}" for i in range(batch_size)]
        start += batch_size
        versions = np.array(config.versions(units))
        outcomes: dict[str, dict[str, NDArray[np.float64]]] = {}
        for version, predictor in predictors.items():
            mine = versions == version
            if mine.any():
                scores = predictor.predict(x[mine])
                per_segment = (thresholds or {}).get(version)
                cut = 0.5 if per_segment is None else per_segment[segment[mine]]
                outcomes[version] = unit_outcomes(
                    env, scores, intent[mine], segment[mine], rng, cut
                )
        yield units, outcomes


def merge_outcomes(
    stats: CanaryStats, outcomes: Mapping[str, dict[str, NDArray[np.float64]]]
) -> CanaryStats:
    """One simulated batch merged as the outcomes route would merge it."""
    for version, metrics in outcomes.items():
        stats = merge_arrays(stats, version, metrics)
    return stats
