"""The seed's loop KPIs, computed from what the Store holds (no counter can drift from it).

- **improvement rate**: decided improvements that ended ``promoted`` (a failure fixed);
- **time to improvement**: from the improvement's start (the failure's analysis) to promotion;
- **simulation accuracy**: the twin's predicted effect (the championship's
  ``predicted_effect``) against the effect the canary measured (``measured_effect``), over
  promoted or rolled-back improvements: Pearson correlation, mean error (bias), mean absolute
  error;
- **pattern detection rate**: stored analyses in which a known failure pattern was recognised;
- **pre-flight scores**: Brier score and interval coverage of the kept predictions
  (``twinloop.loop.preflight``).

Every figure is ``None`` when there is nothing to compute it from, never a made-up zero.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence

from pydantic import Field

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.contract import FrozenModel
from twinloop.loop.model import IMPROVEMENTS, STAGE_OUTPUTS, Improvement, StageOutput, output_id
from twinloop.loop.preflight import PreflightScores, preflight_scores
from twinloop.store import Store

DECIDED = ("promoted", "rolled_back", "abandoned")


class SimulationAccuracy(FrozenModel):
    """Twin-predicted vs canary-measured effects over improvements that reached the canary."""

    pairs: int
    correlation: float | None = Field(description="Pearson; None below 3 pairs or no spread")
    mean_error: float | None = Field(description="measured − predicted, averaged (bias)")
    mean_absolute_error: float | None


class LoopKpis(FrozenModel):
    """``GET /kpis``: the loop's KPIs and the counts they come from."""

    improvements: int
    by_stage: dict[str, int]
    decided: int
    promoted: int
    improvement_rate: float | None = Field(description="promoted / decided")
    time_to_improvement_seconds: float | None = Field(description="median, start → promotion")
    time_to_improvement_mean_seconds: float | None
    simulation_accuracy: SimulationAccuracy
    analyses: int
    pattern_detection_rate: float | None = Field(
        description="stored analyses in which a known pattern was recognised"
    )
    preflight: PreflightScores = Field(description="pre-flight predictions: Brier, coverage")

    def gauges(self) -> dict[str, float | None]:
        """The figures a dashboard plots, by name (None: not computable yet)."""
        twin = self.simulation_accuracy
        return {
            "improvements": float(self.improvements),
            "improvement_rate": self.improvement_rate,
            "time_to_improvement_seconds": self.time_to_improvement_seconds,
            "simulation_correlation": twin.correlation,
            "simulation_mean_absolute_error": twin.mean_absolute_error,
            "pattern_detection_rate": self.pattern_detection_rate,
            "preflight_brier": self.preflight.brier,
            "preflight_coverage": self.preflight.coverage,
        }


def simulation_accuracy(pairs: Sequence[tuple[float, float]]) -> SimulationAccuracy:
    """Agreement of (predicted, measured) effects."""
    if not pairs:
        return SimulationAccuracy(
            pairs=0, correlation=None, mean_error=None, mean_absolute_error=None
        )
    errors = [measured - predicted for predicted, measured in pairs]
    correlation = None
    if len(pairs) >= 3:
        xs, ys = zip(*pairs, strict=True)
        if statistics.pstdev(xs) > 0 and statistics.pstdev(ys) > 0:
            correlation = statistics.correlation(xs, ys)
    return SimulationAccuracy(
        pairs=len(pairs),
        correlation=correlation,
        mean_error=statistics.fmean(errors),
        mean_absolute_error=statistics.fmean(abs(e) for e in errors),
    )


def loop_kpis(store: Store) -> LoopKpis:
    """Every KPI from the improvements, their stage outputs and the stored analyses."""
    improvements = store.query_models(IMPROVEMENTS, Improvement)
    by_stage = Counter(i.stage or "start" for i in improvements)
    decided = [i for i in improvements if i.stage in DECIDED]
    promoted = [i for i in decided if i.stage == "promoted"]
    times = [i.finished_at - i.created_at for i in promoted if i.finished_at is not None]
    return LoopKpis(
        improvements=len(improvements),
        by_stage=dict(sorted(by_stage.items())),
        decided=len(decided),
        promoted=len(promoted),
        improvement_rate=len(promoted) / len(decided) if decided else None,
        time_to_improvement_seconds=statistics.median(times) if times else None,
        time_to_improvement_mean_seconds=statistics.fmean(times) if times else None,
        simulation_accuracy=simulation_accuracy(_effect_pairs(store, decided)),
        analyses=(analyses := len(store.query(ANALYSES))),
        pattern_detection_rate=_detection_rate(store, analyses),
        preflight=preflight_scores(store),
    )


def _effect_pairs(store: Store, decided: Sequence[Improvement]) -> list[tuple[float, float]]:
    pairs = []
    for improvement in decided:
        champ = store.find_model(
            STAGE_OUTPUTS, output_id(improvement.id, "championship"), StageOutput
        )
        canary = store.find_model(STAGE_OUTPUTS, output_id(improvement.id, "canary"), StageOutput)
        if champ is None or canary is None:
            continue
        predicted = _finite(champ.outcome.get("predicted_effect"))
        measured = _finite(canary.outcome.get("measured_effect"))
        if predicted is not None and measured is not None:
            pairs.append((predicted, measured))
    return pairs


def _finite(value: object) -> float | None:
    """A finite number from a stage's JSON outcome, else None (absent, null, a string)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _detection_rate(store: Store, analyses: int) -> float | None:
    if analyses == 0:
        return None
    detected = sum(1 for a in store.query(ANALYSES) if a.doc.get("patterns", {}).get("patterns"))
    return detected / analyses
