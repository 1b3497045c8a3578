"""Pre-flight: predict a planned A/B test in the calibrated twin, keep the prediction, score it.

Before real traffic, the challenger meets the champion in the twin on common random numbers
(``twinloop.sandbox`` head-to-head). The prediction is the challenger's relative effect on the
chosen KPI, signed so that positive is better, with the head-to-head's interval; P(lose) is
the posterior probability that the challenger is worse (1 − ``prob_challenger_better``); the
power is that of the planned test (``units_per_arm`` per arm, two-sided ``alpha``) to detect the
predicted effect, with the per-unit coefficient of variation of the KPI as the unit of effect
size (``stats.power.power_two_sample``; for a conversion rate p it is √((1−p)/p)).

The prediction is kept (kind ``preflights``, by the planned experiment's id). When that
experiment's analysis arrives, :func:`score_preflight` scores it once: the outcome is *lost*
when the analyzer names the challenger the loser, the Brier score is (P(lose) − lost)², and the
interval *covers* when it contains the measured effect (the analyzer's relative loss, negated
when the challenger lost). ``preflight_scores`` averages them for ``GET /kpis``.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Final

from pydantic import Field

from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.analysis.failures import relative_loss
from twinloop.contract import ID_FIELD_PATTERN, FrozenModel
from twinloop.errors import InvalidInput, VersionConflict
from twinloop.sandbox.executor import Executor
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.results import PairedKpi
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.stats.power import power_two_sample
from twinloop.store import Store

PREFLIGHTS: Final = "preflights"


class PreflightSpec(FrozenModel):
    """The planned test: its id, the twin head-to-head, the KPI, the test's size."""

    experiment_id: str = Field(pattern=ID_FIELD_PATTERN, description="the planned A/B test")
    head_to_head: HeadToHeadSpec = Field(description="baseline = champion, challenger")
    kpi: str | None = Field(default=None, description="default: the first primary KPI")
    units_per_arm: int = Field(default=10_000, ge=2, le=10**9)
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    unit_cv: float = Field(default=1.0, gt=0.0, description="per-unit std / mean of the KPI")


class PreflightScore(FrozenModel):
    """How the prediction fared against the real test."""

    measured_effect: float | None
    lost: bool
    brier: float
    covered: bool | None


class Preflight(FrozenModel):
    """A kept prediction (and, once the real result is in, its score)."""

    experiment_id: str
    champion: str
    challenger: str
    kpi: str
    predicted_effect: float = Field(description="relative, positive = the challenger is better")
    lower: float
    upper: float
    confidence: float
    p_lose: float
    power: float = Field(description="power of the planned test to detect predicted_effect")
    replicates: int
    seed: int
    created_at: float
    score: PreflightScore | None = None


class PreflightScores(FrozenModel):
    """``GET /kpis``: the pre-flight predictions scored so far."""

    predictions: int
    scored: int
    brier: float | None = Field(description="mean Brier score of P(lose); lower is better")
    coverage: float | None = Field(description="share of intervals that held the measured effect")


def _paired(result_differences: list[PairedKpi], kpi: str | None) -> PairedKpi:
    for paired in result_differences:
        if (kpi is None and paired.primary) or paired.kpi == kpi:
            return paired
    names = [p.kpi for p in result_differences]
    raise InvalidInput("kpi", f"{kpi!r} is not a KPI of the head-to-head; choose from {names}")


def run_preflight(
    store: Store,
    spec: PreflightSpec,
    *,
    executor: Executor | None = None,
    clock: Callable[[], float] = time.time,
) -> Preflight:
    """Run the head-to-head, predict, keep the prediction (a repeat returns the kept one)."""
    kept = store.find_model(PREFLIGHTS, spec.experiment_id, Preflight)
    if kept is not None:
        return kept
    result = run_head_to_head(spec.head_to_head, executor=executor)
    paired = _paired(result.differences, spec.kpi)
    sign = 1.0 if paired.direction == "higher" else -1.0
    scale = abs(paired.baseline_mean) or 1.0
    ends = sorted((sign * paired.lower / scale, sign * paired.upper / scale))
    effect = sign * paired.difference / scale
    prediction = Preflight(
        experiment_id=spec.experiment_id,
        champion=result.baseline,
        challenger=result.challenger,
        kpi=paired.kpi,
        predicted_effect=effect,
        lower=ends[0],
        upper=ends[1],
        confidence=paired.confidence,
        p_lose=1.0 - paired.prob_challenger_better,
        power=power_two_sample(abs(effect) / spec.unit_cv, spec.units_per_arm, spec.alpha),
        replicates=paired.n,
        seed=result.seed,
        created_at=clock(),
    )
    with contextlib.suppress(VersionConflict):  # a concurrent pre-flight kept its own first
        store.put(
            PREFLIGHTS, spec.experiment_id, prediction.model_dump(mode="json"), expected_version=0
        )
        return prediction
    return store.get_model(PREFLIGHTS, spec.experiment_id, Preflight)


def score_preflight(store: Store, analysis: FailureAnalysis) -> Preflight | None:
    """Score the kept prediction of this experiment against its analysis (once)."""
    kept = store.find_model(PREFLIGHTS, analysis.experiment_id, Preflight)
    if kept is None or kept.score is not None:
        return kept
    decision = analysis.decision
    lost = decision.loser == kept.challenger
    comparison = next((c for c in decision.comparisons if c.metric == decision.key_metric), None)
    loss = None if comparison is None else relative_loss(comparison)[0]
    measured = None if loss is None else (-loss if lost else loss)
    covered = None if measured is None else kept.lower <= measured <= kept.upper
    score = PreflightScore(
        measured_effect=measured, lost=lost, brier=(kept.p_lose - lost) ** 2, covered=covered
    )

    def step(current: Preflight | None) -> Preflight:
        assert current is not None
        return current if current.score is not None else current.model_copy(update={"score": score})

    return store.update_model(PREFLIGHTS, analysis.experiment_id, Preflight, step)


def preflight_scores(store: Store) -> PreflightScores:
    """Mean Brier score and interval coverage over the scored predictions."""
    kept = store.query_models(PREFLIGHTS, Preflight)
    scores = [p.score for p in kept if p.score is not None]
    covered = [s.covered for s in scores if s.covered is not None]
    return PreflightScores(
        predictions=len(kept),
        scored=len(scores),
        brier=statistics.fmean(s.brier for s in scores) if scores else None,
        coverage=sum(covered) / len(covered) if covered else None,
    )
