"""The simulation's grouped state: per-segment and per-cell tables, per-variant totals, contacts.

The segment tables hold the environment's per-segment and per-channel parameters as arrays. A
*cell* is one (variant, segment) pair; its tables are built once from the models and read by a
flat index ``variant * n_segments + segment``. The per-variant totals are kept incrementally
so that a step never rescans the population. ``Contacts`` and ``Sales`` carry one tick's
interactions from one phase of ``Simulation.step`` to the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from twinloop.sim.environment import BusinessEnvironment, Segment
from twinloop.sim.models import ModelProfile, ModelSpec


@dataclass(frozen=True)
class SegmentTables:
    """The environment's per-segment and per-channel parameters, indexed by segment or channel."""

    conversion: NDArray[np.float64]
    value: NDArray[np.float64]
    churn: NDArray[np.float64]
    feature_mean: NDArray[np.float32]
    feature_std: NDArray[np.float32]
    interact_p: NDArray[np.float64]  # P(interaction within one step)
    channel_shares: NDArray[np.float64]
    channel_cpa: NDArray[np.float64]  # cost per acquisition

    @classmethod
    def build(cls, env: BusinessEnvironment, dt: float) -> SegmentTables:
        segs, channels = env.segments, env.acquisition.channels
        interaction = np.array([s.interaction_multiplier for s in segs])
        return cls(
            conversion=np.array([s.conversion_multiplier for s in segs]),
            value=np.array([s.value for s in segs]),
            churn=np.array([s.churn_multiplier for s in segs]),
            feature_mean=np.array([s.feature_mean for s in segs], dtype=np.float32),
            feature_std=np.array([s.feature_std for s in segs], dtype=np.float32),
            interact_p=np.minimum(env.interaction_probability_per_day * dt * interaction, 1.0),
            channel_shares=np.array([c.share for c in channels]),
            channel_cpa=np.array([c.cost_per_acquisition for c in channels]),
        )


def _cell(model: ModelSpec, segment: str) -> tuple[float, float, float]:
    """(accuracy, latency p50, latency sigma) of ``model`` on ``segment``, overrides applied."""
    accuracy = getattr(model, "accuracy", 0.0)
    override = model.segment_overrides.get(segment) if isinstance(model, ModelProfile) else None
    if override is None:
        return accuracy, model.latency_p50_ms, model.latency_sigma
    if override.accuracy is not None:
        accuracy = override.accuracy
    p50 = override.latency_p50_ms or model.latency_p50_ms
    p95 = override.latency_p95_ms or max(model.latency_p95_ms, p50)
    # The override's latency law, as a profile would state it (p95 below p50 reads as p50).
    local = model.model_copy(update={"latency_p50_ms": p50, "latency_p95_ms": max(p95, p50)})
    return accuracy, p50, local.latency_sigma


@dataclass(frozen=True)
class CellTables:
    """Per (variant × segment) tables, float32: per-interaction math runs in single precision."""

    accuracy: NDArray[np.float32]
    latency_p50: NDArray[np.float32]
    latency_sigma: NDArray[np.float32]

    @classmethod
    def build(cls, models: Sequence[ModelSpec], segments: Sequence[Segment]) -> CellTables:
        shape = (len(models), len(segments))
        accuracy = np.zeros(shape, dtype=np.float32)
        p50 = np.zeros(shape, dtype=np.float32)
        sigma = np.zeros(shape, dtype=np.float32)
        for v, model in enumerate(models):
            for s, segment in enumerate(segments):
                accuracy[v, s], p50[v, s], sigma[v, s] = _cell(model, segment.name)
        return cls(accuracy, p50, sigma)


@dataclass
class VariantTotals:
    """Running totals per variant (float64 counts, as the KPI rows carry them)."""

    active: NDArray[np.float64]
    satisfaction_sum: NDArray[np.float64]
    assigned: NDArray[np.int64]
    conversions: NDArray[np.float64]
    interactions: NDArray[np.float64]

    @classmethod
    def zeros(cls, n_variants: int) -> VariantTotals:
        return cls(
            active=np.zeros(n_variants),
            satisfaction_sum=np.zeros(n_variants),
            assigned=np.zeros(n_variants, dtype=np.int64),
            conversions=np.zeros(n_variants),
            interactions=np.zeros(n_variants),
        )


@dataclass(frozen=True)
class Contacts:
    """One tick's interactions: who (slots), what the model did, and what it felt like."""

    slots: int  # population slots this tick (the size of every per-slot draw)
    churn_bits: NDArray[np.uint32]  # one per slot, drawn with the interaction bits
    draws: int  # interaction candidates, churned ones included (the size of per-contact draws)
    alive: NDArray[np.bool_]  # which candidates are still customers
    idx: NDArray[np.int64]  # slots of the live interacting customers
    segment: NDArray[np.int16]
    variant: NDArray[np.int16]
    correct: NDArray[np.bool_]  # the model's decision was right
    latency: NDArray[np.float32]  # ms
    satisfaction: NDArray[np.float32]  # after this contact
    kind: NDArray[np.int8] | None = None  # confusion cell (sim.effects); None: symmetric effects


@dataclass(frozen=True)
class Sales:
    """One tick's transactions, aligned with ``Contacts.idx``."""

    uplift: NDArray[np.float64]  # the decision's multiplier on its target
    converted: NDArray[np.bool_]
    revenue: NDArray[np.float64]  # order value where converted, else 0
