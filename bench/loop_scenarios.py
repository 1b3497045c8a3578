"""Seeded scenarios of the hidden-production benchmark: a production world and its flawed champion.

Each scenario draws a *production* environment the twin never sees — the sales preset with every
segment's intent model perturbed (truth weights and bias), the flawed segment's more strongly,
and the business' conversion and order value moved by up to ±15% — and a champion trained on
production data by a process with a planted flaw:

- ``segment``: the champion's training set left out one segment (it is wrong there);
- ``threshold``: trained well but deciding at a mis-set threshold (0.3/0.35/0.65/0.7);
- ``mixed``: both;
- ``null``: trained well on ~7× the rows the loop trains on, at 0.5 — no retrain on the
  smaller labelled sample can truly beat it. The 18 flawed scenarios come first (indices 0–17),
  then ``nulls`` null ones (default 60, so that 0 false promotions bounds the rate below ~6%);
- ``latency``: trained as well as a null champion but served slower than it needs to be (p50
  3–6× the model before it, p95 2.4× its p50): a serving problem, not a model problem;
- ``latency_mixed``: a segment left out of training *and* served slow.

The latency scenarios live at indices from ``LATENCY_BASE`` (:func:`latency_scenarios`), so
adding them moves no earlier scenario.

The loop then sees only what a user has: an A/B test's per-unit rows (the champion against the
model before it), and a labelled sample of production decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from twinloop.improve.data import TrainingData, twin_data
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.trainer import train_model
from twinloop.sim.domains import environment
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelSpec

Flaw = Literal["segment", "threshold", "mixed", "null", "latency", "latency_mixed"]
MIX: tuple[Flaw, ...] = ("segment",) * 8 + ("threshold",) * 6 + ("mixed",) * 4 + ("null",) * 12
NULLS = 60  # null scenarios by default: 0 false promotions in 60 bounds the rate below 6%
SAMPLE_ROWS = 6_000  # the labelled sample the loop gets (half fits the twin, half trains)
CHAMPION_ROWS = 20_000  # rows the champion's (flawed) training process had
PREVIOUS_ROWS = 3_000  # rows the model before it was trained on
LATENCY_BASE = 1_000  # index of the first latency scenario (after any count of nulls)
SLOWDOWN = (3.0, 6.0)  # a slow champion's p50 latency, × the model before it (uniform range)
P95_OVER_P50 = 2.4  # a slow champion's p95 / p50


@dataclass(frozen=True)
class Scenario:
    """One hidden world, its champion and the data the loop is given."""

    index: int
    flaw: Flaw
    flawed_segment: str | None
    champion_threshold: float
    production: BusinessEnvironment
    champion: ModelSpec
    previous: ModelSpec
    sample: TrainingData
    seed: int


def _production(
    base: BusinessEnvironment, rng: np.random.Generator, flawed: str | None
) -> BusinessEnvironment:
    segments = []
    for seg in base.segments:
        weights = np.asarray(seg.truth_weights or base.truth_weights, dtype=np.float64)
        scale = 0.8 if seg.name == flawed else 0.3
        weights = weights + rng.normal(0.0, scale, weights.size)
        bias = float(seg.truth_bias + rng.normal(0.0, scale))
        segments.append(
            seg.model_copy(
                update={"truth_weights": [float(w) for w in weights], "truth_bias": bias}
            )
        )
    tr = base.transaction
    transaction = tr.model_copy(
        update={
            "base_conversion": tr.base_conversion * float(rng.uniform(0.85, 1.15)),
            "average_order_value": tr.average_order_value * float(rng.uniform(0.85, 1.15)),
        }
    )
    prod = base.model_copy(
        update={"segments": segments, "transaction": transaction, "name": "production"}
    )
    return BusinessEnvironment.model_validate(prod.model_dump())


def make_scenario(index: int, flaw: Flaw, seed: int) -> Scenario:
    """Scenario ``index`` of the benchmark: a pure function of (index, flaw, seed)."""
    ss = np.random.SeedSequence(seed, spawn_key=(index,))
    rng = np.random.default_rng(ss)
    base = environment("sales")
    flawed = None
    if flaw in ("segment", "mixed", "latency_mixed"):
        flawed = str(rng.choice(["enterprise", "mid_market"]))
    threshold = 0.5
    if flaw in ("threshold", "mixed"):
        threshold = float(rng.choice([0.3, 0.35, 0.65, 0.7]))
    production = _production(base, rng, flawed)
    seeds = [int(s.generate_state(1)[0]) for s in ss.spawn(3)]
    champion_data = twin_data(production, CHAMPION_ROWS, seeds[0])
    recipe = Recipe(
        name="champion",
        segment_weights={flawed: 0.0} if flawed else {},
        threshold=threshold,
    )
    champion = train_model(LOGISTIC, recipe, champion_data, 0)
    if flaw in ("latency", "latency_mixed"):
        p50 = champion.latency_p50_ms * float(rng.uniform(*SLOWDOWN))
        champion = champion.model_copy(
            update={"latency_p50_ms": p50, "latency_p95_ms": p50 * P95_OVER_P50}
        )
    # The model before the champion: sound but trained on fewer rows; the A/B test shows where
    # the champion is worse than it.
    previous = train_model(
        LOGISTIC, Recipe(name="previous"), twin_data(production, PREVIOUS_ROWS, seeds[1]), 0
    )
    return Scenario(
        index=index,
        flaw=flaw,
        flawed_segment=flawed,
        champion_threshold=threshold,
        production=production,
        champion=champion,
        previous=previous,
        sample=twin_data(production, SAMPLE_ROWS, seeds[2]),
        seed=int(ss.generate_state(1)[0]),
    )


def mix(nulls: int = NULLS) -> list[Flaw]:
    """The flaw of every scenario index: the 18 flawed ones of ``MIX``, then ``nulls`` nulls.

    Indices never move when ``nulls`` changes (scenario ``i`` is always the same world), so a
    run with more nulls extends, not reshuffles, one with fewer.
    """
    if nulls < 0:
        raise ValueError(f"nulls must be >= 0, got {nulls}")
    flawed = [f for f in MIX if f != "null"]
    return flawed + ["null"] * nulls


def scenarios(seed: int, count: int | None = None, nulls: int = NULLS) -> list[tuple[int, Flaw]]:
    """(index, flaw) of the benchmark's scenarios; ``count`` keeps the mix's proportions."""
    flaws = mix(nulls)
    if count is not None and count < len(flaws):
        order = np.random.default_rng(seed).permutation(len(flaws))
        by_flaw: dict[str, list[int]] = {}
        for i in order:
            by_flaw.setdefault(flaws[i], []).append(int(i))
        picked: list[int] = []
        while len(picked) < count:
            for flaw in ("segment", "null", "threshold", "mixed"):
                if by_flaw.get(flaw) and len(picked) < count:
                    picked.append(by_flaw[flaw].pop(0))
        return [(i, flaws[i]) for i in sorted(picked)]
    return list(enumerate(flaws))


def latency_scenarios(count: int) -> list[tuple[int, Flaw]]:
    """(index, flaw) of ``count`` latency scenarios, alternating ``latency`` and
    ``latency_mixed``, at indices from ``LATENCY_BASE``."""
    if count < 0:
        raise ValueError(f"latency must be >= 0, got {count}")
    kinds: tuple[Flaw, Flaw] = ("latency", "latency_mixed")
    return [(LATENCY_BASE + k, kinds[k % 2]) for k in range(count)]
