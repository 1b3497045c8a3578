"""The search space of a retraining: derived from the failure's hypothesis, sampled by seed.

A lost A/B test localized to a segment ("enterprise leads are mis-scored") says where to look:
give that segment more weight in training. :func:`space_from_analysis` turns the analyzer's
segment root causes into a weight range per named segment, keeps a regularisation range and a
decision-threshold range, and :func:`sample_recipes` draws the recipes a search tries — a seeded
random search, so the set of trials is a function of the seed alone (and recipe 0 is always the
plain retrain on the data as it is, the natural yardstick — with the least of a repair the space
searches, ``twinloop.improve.repair``).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.improve.recipe import ParamValue, Recipe, Resample
from twinloop.sim.environment import BusinessEnvironment

Range = tuple[float, float]
_WEIGHT: tuple[Resample, ...] = ("weight",)


class SearchSpace(FrozenModel):
    """Ranges the recipes are drawn from (weights and l2 log-uniform, threshold uniform)."""

    segment_weights: dict[str, Range] = Field(
        default_factory=dict, description="Per segment: (low, high) row-weight multiplier."
    )
    l2: Range = Field(default=(0.1, 10.0), description="(low, high) regularisation.")
    threshold: Range = Field(default=(0.5, 0.5), description="(low, high) decision threshold.")
    resample: list[Resample] = Field(default_factory=lambda: list(_WEIGHT), min_length=1)
    params: dict[str, list[ParamValue]] = Field(
        default_factory=dict, description="Trainer parameters: a list of choices each."
    )
    cold_start_share: Range = Field(
        default=(0.0, 0.0), description="(low, high) share of added cold-start rows (uniform)."
    )
    reasons: list[str] = Field(default_factory=list, description="Why each range is there.")

    @model_validator(mode="after")
    def _ranges(self) -> SearchSpace:
        for name, (lo, hi) in {**self.segment_weights, "l2": self.l2}.items():
            if not 0 < lo <= hi:
                raise ValueError(f"{name}: range must satisfy 0 < low <= high, got ({lo}, {hi})")
        lo, hi = self.threshold
        if not 0 < lo <= hi < 1:
            raise ValueError(f"threshold: range must be inside (0, 1), got ({lo}, {hi})")
        lo, hi = self.cold_start_share
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"cold_start_share: range must be inside [0, 1], got ({lo}, {hi})")
        return self


def localized_segments(analysis: FailureAnalysis, env: BusinessEnvironment) -> list[str]:
    """The environment's segments named by the analysis' segment root causes, best first."""
    known = {s.name for s in env.segments}
    found: list[str] = []
    for cause in analysis.root_causes:
        if cause.segment is None:
            continue
        for value in cause.segment.element.values():
            if value in known and value not in found:
                found.append(value)
    return found


def space_from_segments(
    segments: list[str], env: BusinessEnvironment, *, threshold: Range = (0.4, 0.6)
) -> SearchSpace:
    """More weight for each localized segment; l2 and threshold searched around the defaults."""
    for name in segments:
        env.segment_index(name)  # InvalidInput("segment") for an unknown one
    reasons = [f"{s}: localized by the analysis, so its rows get weight ×1…×6" for s in segments]
    reasons.append(f"threshold searched in {threshold}: the decision point may be mis-set")
    return SearchSpace(
        segment_weights={s: (1.0, 6.0) for s in segments},
        threshold=threshold,
        reasons=reasons,
    )


def space_from_analysis(analysis: FailureAnalysis, env: BusinessEnvironment) -> SearchSpace:
    """The search space the analysis' hypotheses point at."""
    return space_from_segments(localized_segments(analysis, env), env)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    if lo == hi:
        return lo
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def sample_recipes(space: SearchSpace, n: int, seed: int) -> list[Recipe]:
    """``n`` recipes: recipe 0 is the plain retrain, the rest drawn from the space by seed."""
    if not 1 <= n <= 1_000:
        raise InvalidInput("samples", f"must be in [1, 1000], got {n}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(11,)))
    mid = 0.5 if space.threshold[0] <= 0.5 <= space.threshold[1] else space.threshold[0]
    cold_lo, cold_hi = space.cold_start_share
    out = [Recipe(name="r000", threshold=mid, resample=space.resample[0], cold_start_share=cold_lo)]
    for i in range(1, n):
        weights = {
            s: round(_log_uniform(rng, lo, hi), 4) for s, (lo, hi) in space.segment_weights.items()
        }
        params = {k: v[int(rng.integers(len(v)))] for k, v in sorted(space.params.items())}
        out.append(
            Recipe(
                name=f"r{i:03d}",
                segment_weights=weights,
                resample=space.resample[int(rng.integers(len(space.resample)))],
                l2=round(_log_uniform(rng, *space.l2), 5),
                threshold=round(float(rng.uniform(*space.threshold)), 4),
                params=params,
            )
        )
    if cold_hi > cold_lo:  # its own stream: searching it moves none of the other draws
        cold = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(12,)))
        shares = cold.uniform(cold_lo, cold_hi, size=n - 1)
        out[1:] = [
            r.model_copy(update={"cold_start_share": round(float(x), 4)})
            for r, x in zip(out[1:], shares, strict=True)
        ]
    return out
