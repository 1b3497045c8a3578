"""Data-quality findings: what makes the decision doubtful, and the ones that can cause a "loss".

Findings are values with a stable ``code``, never exceptions:

* the statistics engine's notes — ``srm`` (units differ from the planned allocation, χ² p <
  0.001: assignment or logging is broken, every effect is suspect), ``too_few_samples``,
  ``no_data``, ``few_events``, ``zero_variance``, ``point_form_no_significance`` …;
* ``low_power`` — nothing significant, and the smallest relative effect the test could detect
  (80% power) on a deciding metric is above ``FAILURE_THRESHOLD``: too little data to tell;
* ``novelty`` — with a time column in raw data, the loser's relative effect among units that
  arrived in the first ``novelty_days`` differs from the effect among later units (z-test of
  the two relative lifts, delta-method variances, flagged at ``novelty_alpha``). A loss
  concentrated in the first days (``fading``: change aversion, a novelty that wears off) is a
  root cause candidate; its share is the early units' excess loss over the later effect.
  Because per-unit totals grow with exposure (early arrivals are exposed longest), a fading
  loss is only reported when the later units show no significant loss at all; a loss that
  grows after the first days is reported as information.

* ``dimension_excluded`` — (info) a text column of raw data left out of the default segment
  dimensions because it labels units, not segments: named like an id (``user_id``) or with
  more distinct values than half the rows. Name it in ``raw.dimensions`` to search it anyway.

SRM and a fading novelty are *causes*: they can produce an apparent loss without a worse model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field
from scipy import special

from twinloop.analysis.decision import Decision
from twinloop.analysis.failures import FailureType
from twinloop.analysis.settings import AnalyzerSettings
from twinloop.contract import FrozenModel
from twinloop.stats.rawdata import RawTable
from twinloop.stats.results import NoteCode, Severity

QualityCode = NoteCode | Literal["low_power", "novelty", "dimension_excluded"]
Shape = Literal["fading", "growing"]


class QualityFinding(FrozenModel):
    """One data-quality finding; ``is_cause`` marks those that can explain a loss by themselves."""

    code: QualityCode
    severity: Severity
    message: str
    metric: str | None = None
    is_cause: bool = False
    p_value: float | None = None
    confidence: float | None = Field(default=None, description="P(the problem is real)")
    share: float | None = Field(default=None, description="share of the loss it may explain")
    shape: Shape | None = Field(default=None, description="novelty: fading or growing loss")
    early_change: float | None = Field(default=None, description="novelty: relative, early")
    late_change: float | None = Field(default=None, description="novelty: relative, later")
    early_units: int | None = None


def engine_findings(decision: Decision, settings: AnalyzerSettings) -> list[QualityFinding]:
    """The engine's coded notes, plus ``low_power`` when nothing could be shown."""
    found: list[QualityFinding] = []
    for note in decision.notes:
        finding = QualityFinding(
            code=note.code, severity=note.severity, message=note.message, metric=note.metric
        )
        if note.code == "srm" and decision.srm is not None and decision.srm.p_value is not None:
            finding = finding.model_copy(
                update={
                    "is_cause": True,
                    "p_value": decision.srm.p_value,
                    "confidence": 1.0 - decision.srm.p_value,
                    "share": 1.0,
                }
            )
        found.append(finding)
    if decision.status == "inconclusive":
        for comparison in decision.comparisons:
            if comparison.metric not in decision.deciding_metrics or comparison.power is None:
                continue
            mde = comparison.power.mde_relative
            if mde is not None and mde > settings.failure_threshold:
                message = (
                    f"nothing significant, and with this much data the smallest detectable change "
                    f"in {comparison.metric} is {mde:.1%} (80% power), above the "
                    f"{settings.failure_threshold:.0%} failure threshold: too little data"
                )
                found.append(
                    QualityFinding(
                        code="low_power",
                        severity="warning",
                        message=message,
                        metric=comparison.metric,
                    )
                )
    return found


def excluded_dimensions(excluded: Sequence[tuple[str, str]]) -> list[QualityFinding]:
    """One info finding per text column not searched as a segment dimension, and why."""
    return [
        QualityFinding(
            code="dimension_excluded",
            severity="info",
            message=f"column {name!r} is not used as a segment dimension ({why}: it labels "
            "units, not segments); name it in raw.dimensions to search it anyway",
        )
        for name, why in excluded
    ]


def novelty(
    raw: RawTable,
    days: npt.NDArray[np.float64],
    decision: Decision,
    failures: Sequence[FailureType],
    settings: AnalyzerSettings,
) -> list[QualityFinding]:
    """Early-vs-later effect of the loser on each failing metric (see the module docstring)."""
    early = days < settings.novelty_days
    if not early.any() or early.all():
        return []
    w, lo = raw.variants.index(decision.winner), raw.variants.index(decision.loser)
    codes = raw.variant.codes
    rows = (codes == w) | (codes == lo)
    group = (2 * early + (codes == lo))[rows]  # 0 late winner, 1 late loser, 2 early w., 3 e. l.
    found = []
    for failure in failures:
        x = raw.metrics.get(failure.metric)
        if x is None or failure.evidence != "confirmed":
            continue
        finding = _novelty_of(failure, group, x[rows], settings)
        if finding is not None:
            found.append(finding)
    return found


def _novelty_of(
    failure: FailureType,
    group: npt.NDArray[np.int64],
    x: npt.NDArray[np.float64],
    settings: AnalyzerSettings,
) -> QualityFinding | None:
    late_alpha_z = float(special.ndtri(1.0 - settings.statistics.alpha / 2.0))
    finite = ~np.isnan(x)
    group, x = group[finite], x[finite]
    n = np.bincount(group, minlength=4).astype(np.float64)
    if (n < 2).any():
        return None
    mean = np.bincount(group, weights=x, minlength=4) / n
    dx = x - mean[group]
    var = np.bincount(group, weights=dx * dx, minlength=4) / (n - 1)
    late, late_var = _lift(mean[0], var[0] / n[0], mean[1], var[1] / n[1])
    early, early_var = _lift(mean[2], var[2] / n[2], mean[3], var[3] / n[3])
    if late is None or early is None or early_var + late_var <= 0:
        return None
    z = (early - late) / math.sqrt(early_var + late_var)
    p = math.erfc(abs(z) / math.sqrt(2.0))
    if p >= settings.novelty_alpha:
        return None
    bad = -1.0 if failure.direction == "higher" else 1.0  # sign of a loss
    shape: Shape = "fading" if bad * early > bad * late else "growing"
    # Per-unit totals grow with exposure, so early arrivals (exposed longest) show a larger
    # loss even without novelty: a fading loss must also be gone among later arrivals.
    late_z = late / math.sqrt(late_var) if late_var > 0 else math.inf
    if shape == "fading" and bad * late_z > late_alpha_z:
        return None
    loss_total = n[1] * (mean[1] - mean[0]) + n[3] * (mean[3] - mean[2])
    excess = n[3] * mean[2] * (early - late)  # early losers' loss beyond the later effect
    share = float(np.clip(excess / loss_total, 0.0, 1.0)) if loss_total != 0 else 0.0
    when = f"the first {settings.novelty_days:g} days"
    if shape == "fading":
        message = (
            f"{failure.metric}: the loss is concentrated in units that arrived in {when} "
            f"({early:+.1%} vs {late:+.1%} later, p = {p:.2g}): a novelty or change-aversion "
            "effect that fades"
        )
    else:
        message = (
            f"{failure.metric}: the loss grows after {when} ({early:+.1%} early vs {late:+.1%} "
            f"later, p = {p:.2g}): the short-term effect understates it"
        )
    return QualityFinding(
        code="novelty",
        severity="warning",
        message=message,
        metric=failure.metric,
        is_cause=shape == "fading",
        p_value=p,
        confidence=1.0 - p,
        share=share if shape == "fading" else 0.0,
        shape=shape,
        early_change=early,
        late_change=late,
        early_units=int(n[2] + n[3]),
    )


def _lift(
    winner: float, winner_var: float, loser: float, loser_var: float
) -> tuple[float | None, float]:
    """Relative lift (loser - winner) / |winner| and its delta-method variance."""
    if winner == 0:
        return None, 0.0
    lift = (loser - winner) / abs(winner)
    variance = loser_var / winner**2 + (loser**2 / winner**4) * winner_var
    return lift, variance
