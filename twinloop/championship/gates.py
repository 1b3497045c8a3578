"""Paired comparisons of two entrants and the promotion gates read from them.

Every comparison pairs the two entrants replicate by replicate (they ran on the same seeds) and
uses the sandbox's paired statistics (``twinloop.sandbox.intervals.paired``): a t interval of
the mean difference and P(better) = the t posterior of the difference's sign. A guardrail or a
segment passes when P(its harm stays within the tolerance) reaches ``guardrail_prob``:

    P(signed Δ ≥ −tol·|baseline mean|),  signed Δ = Δ for higher-is-better KPIs, −Δ otherwise,

which asks for evidence of no large harm, not merely no evidence of harm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Final

from scipy import stats

from twinloop.championship.replicates import ScoredReplicate
from twinloop.championship.results import GateVerdict
from twinloop.championship.spec import ExternalGate
from twinloop.registry.models import ModelFamily
from twinloop.sandbox.indicators import RATIO_KPIS, Direction, direction
from twinloop.sandbox.intervals import paired, win
from twinloop.sandbox.moments import Moments
from twinloop.sandbox.results import PairedKpi

Values = Callable[[ScoredReplicate], dict[str, float]]
_OVERALL: Final[Values] = lambda r: r.values  # noqa: E731


def _observation(values: dict[str, float], kpi: str) -> list[float]:
    if kpi in RATIO_KPIS:
        num, den = RATIO_KPIS[kpi]
        return [values[num], values[den]]
    return [values[kpi]]


def compare(
    base: Sequence[ScoredReplicate],
    chal: Sequence[ScoredReplicate],
    kpi: str,
    *,
    confidence: float,
    primary: bool = False,
    values: Values = _OVERALL,
    kpi_direction: Direction | None = None,
) -> PairedKpi:
    """Challenger − baseline on ``kpi`` over replicates paired by index (same seeds)."""
    way = kpi_direction or direction(kpi)
    rows, wins = [], 0.0
    for b, c in zip(base, chal, strict=True):
        if b.seed != c.seed:
            raise ValueError(f"replicate {b.replicate}: seeds differ ({b.seed} vs {c.seed})")
        vb, vc = values(b), values(c)
        rows.append(_observation(vb, kpi) + _observation(vc, kpi))
        wins += win(vb[kpi], vc[kpi], way)
    moments = _moments(rows)
    return paired(kpi, moments, wins, direction=way, primary=primary, confidence=confidence)


def _moments(rows: list[list[float]]) -> Moments:
    """The exact moments of all rows at once (what merging ``Moments.of`` per row gives)."""
    exact = [[Fraction(v) for v in row] for row in rows]
    k = len(exact[0])
    sums = tuple(sum((r[i] for r in exact), Fraction(0)) for i in range(k))
    cross = tuple(
        sum((r[i] * r[j] for r in exact), Fraction(0)) for i in range(k) for j in range(i, k)
    )
    return Moments(len(rows), sums, cross)


def prob_within(diff: PairedKpi, tolerance: float) -> float:
    """P(the challenger's harm on this KPI is at most ``tolerance`` × |baseline mean|)."""
    signed = diff.difference if diff.direction == "higher" else -diff.difference
    margin = signed + tolerance * abs(diff.baseline_mean)
    if diff.std_error == 0:
        return 1.0 if margin >= 0 else 0.0
    return float(stats.t.cdf(margin / diff.std_error, diff.n - 1))


def _relative(diff: PairedKpi) -> float | None:
    return diff.relative_difference


def evaluate(
    family: ModelFamily,
    base: Sequence[ScoredReplicate],
    chal: Sequence[ScoredReplicate],
    external: Sequence[ExternalGate],
    *,
    confidence: float,
) -> tuple[PairedKpi, list[GateVerdict]]:
    """The primary comparison and every gate's verdict for ``chal`` against ``base``."""
    gates = family.gates
    primary = compare(base, chal, family.primary_kpi, confidence=confidence, primary=True)
    verdicts = [
        GateVerdict(
            gate="primary",
            passed=primary.prob_challenger_better >= gates.primary_prob,
            probability=primary.prob_challenger_better,
            threshold=gates.primary_prob,
            relative_difference=_relative(primary),
            detail=f"{family.primary_kpi}: P(better) {primary.prob_challenger_better:.3f}",
        )
    ]
    for kpi, tolerance in sorted(family.guardrails.items()):
        diff = compare(base, chal, kpi, confidence=confidence)
        verdicts.append(_within(f"guardrail:{kpi}", diff, tolerance, gates.guardrail_prob))
    seg_kpi = gates.segment_kpi
    way: Direction = "lower" if seg_kpi == "churned" else "higher"
    for name in base[0].segments if base else ():
        diff = compare(
            base,
            chal,
            seg_kpi,
            confidence=confidence,
            values=lambda r, name=name: r.segments[name],  # type: ignore[misc]
            kpi_direction=way,
        )
        verdict = _within(f"segment:{name}", diff, gates.segment_tolerance, gates.guardrail_prob)
        verdicts.append(verdict)
    verdicts.extend(_external(gates.required_external, external))
    return primary, verdicts


def _within(gate: str, diff: PairedKpi, tolerance: float, needed: float) -> GateVerdict:
    prob = prob_within(diff, tolerance)
    rel = diff.relative_difference
    change = "n/a" if rel is None else f"{rel:+.2%}"
    return GateVerdict(
        gate=gate,
        passed=prob >= needed,
        probability=prob,
        threshold=needed,
        relative_difference=rel,
        detail=f"{diff.kpi} {change} (tolerance {tolerance:.0%} worse, P within {prob:.3f})",
    )


def _external(required: Sequence[str], results: Sequence[ExternalGate]) -> list[GateVerdict]:
    """Every reported external gate must pass; every required one must be reported."""
    by_name = {g.name: g for g in results}
    verdicts = [
        GateVerdict(
            gate=f"external:{g.name}",
            passed=g.passed,
            probability=None,
            threshold=None,
            detail=g.detail or ("passed" if g.passed else "failed"),
        )
        for g in results
    ]
    verdicts += [
        GateVerdict(
            gate=f"external:{name}",
            passed=False,
            probability=None,
            threshold=None,
            detail="required but no result was given",
        )
        for name in required
        if name not in by_name
    ]
    return verdicts
