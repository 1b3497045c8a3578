"""The statistics engine's entry point: every metric, every treatment against control, in one call.

``compare(spec)`` checks the whole input first (mismatched variants, negative counts, successes
above n, negative variances → :class:`InvalidInput` naming the field) while converting it once
into comparable arms (:mod:`twinloop.stats.arms`; :func:`compare_arms` takes prepared ones),
then compares each metric for each treatment, applies the multiple-testing correction across the
comparisons, and checks the sample ratio against the planned allocation. Nothing random happens:
same input, same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from twinloop.contract import FrozenModel, invalid_input
from twinloop.errors import NotFound
from twinloop.stats.arms import PreparedArms, prepare_arms
from twinloop.stats.corrections import adjust
from twinloop.stats.inputs import (
    CompareSettings,
    CompareSpec,
    MetricSpec,
    PointData,
    VariantSpec,
)
from twinloop.stats.pairwise import Arm, MetricInfo, compare_pair
from twinloop.stats.results import MetricComparison, Note, SrmResult
from twinloop.stats.srm import check_srm
from twinloop.stats.sufficient import BinomialStats, CovariateStats, RatioStats, SampleStats, Stats

_FORM_OF_STATS = {
    SampleStats: "sums",
    BinomialStats: "binomial",
    RatioStats: "ratio",
    CovariateStats: "covariate",
}


class ComparisonResult(FrozenModel):
    """All comparisons of an experiment, corrected across metrics, with the SRM check."""

    control: str
    treatments: tuple[str, ...]
    comparisons: tuple[MetricComparison, ...]
    srm: SrmResult | None
    notes: tuple[Note, ...]
    settings: CompareSettings

    def get(self, metric: str, treatment: str | None = None) -> MetricComparison:
        """The comparison of ``metric`` for ``treatment`` (the only one when omitted)."""
        for comparison in self.comparisons:
            if comparison.metric == metric and treatment in (None, comparison.treatment.variant):
                return comparison
        raise NotFound("comparison", f"{metric}/{treatment}" if treatment else metric)


def compare(spec: CompareSpec | Mapping[str, Any]) -> ComparisonResult:
    """Compare every metric for every treatment against control; see the module docstring."""
    checked = parse_spec(spec) if not isinstance(spec, CompareSpec) else spec
    return compare_arms(prepare_arms(checked))


def compare_arms(prepared: PreparedArms) -> ComparisonResult:
    """Compare arms checked and converted by :func:`~twinloop.stats.arms.prepare_arms`."""
    checked, control, treatments = prepared.spec, prepared.control, prepared.treatments
    settings = checked.settings
    comparisons: list[MetricComparison] = []
    for metric, arms in zip(checked.metrics, prepared.arms, strict=True):
        info = MetricInfo(metric.name, metric.direction, metric.role)
        for treatment in treatments:
            comparisons.append(compare_pair(info, arms[control], arms[treatment], settings))
    corrected = _correct(comparisons, settings)
    srm, notes = _srm(checked, prepared.arms, settings)
    return ComparisonResult(
        control=control,
        treatments=tuple(treatments),
        comparisons=tuple(corrected),
        srm=srm,
        notes=tuple(notes),
        settings=settings,
    )


def compare_metrics(
    metrics: Iterable[MetricSpec | Mapping[str, Any]],
    variants: Iterable[VariantSpec | Mapping[str, Any]],
    settings: CompareSettings | Mapping[str, Any] | None = None,
) -> ComparisonResult:
    """Keyword-friendly form of :func:`compare` for callers holding the parts."""
    data: dict[str, Any] = {"metrics": list(metrics), "variants": list(variants)}
    if settings is not None:
        data["settings"] = settings
    return compare(data)


def parse_spec(data: Mapping[str, Any]) -> CompareSpec:
    """Validate a JSON-like mapping into a :class:`CompareSpec`, naming the first bad field."""
    try:
        return CompareSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data) from None


def _correct(
    comparisons: list[MetricComparison], settings: CompareSettings
) -> list[MetricComparison]:
    """Adjust p-values as one family (or one per role) and derive significance and outcome."""
    families: dict[str, list[int]] = {}
    for index, comparison in enumerate(comparisons):
        key = comparison.role if settings.correction_scope == "role" else "all"
        families.setdefault(key, []).append(index)
    adjusted: list[float | None] = [None] * len(comparisons)
    for members in families.values():
        values = adjust([comparisons[i].p_value for i in members], settings.correction)
        for index, value in zip(members, values, strict=True):
            adjusted[index] = value
    result = []
    for comparison, p in zip(comparisons, adjusted, strict=True):
        if p is None:
            result.append(comparison)
            continue
        significant = p < settings.alpha
        outcome = "inconclusive"
        if significant and comparison.favours != "neither":
            outcome = "better" if comparison.favours == "treatment" else "worse"
        result.append(
            comparison.model_copy(
                update={
                    "p_value_adjusted": p,
                    "correction": settings.correction,
                    "significant": significant,
                    "outcome": outcome,
                }
            )
        )
    return result


def _srm(
    spec: CompareSpec, arms_per_metric: Sequence[Mapping[str, Arm]], settings: CompareSettings
) -> tuple[SrmResult | None, list[Note]]:
    """Check units against the planned allocation; units from the variants or the first metric."""
    variants = spec.variants
    allocation = {v.name: v.allocation if v.allocation is not None else 1.0 for v in variants}
    if variants[0].units is not None:
        units = {v.name: int(v.units or 0) for v in variants}
        source = "variants.units"
    else:
        found = next(
            (
                (metric, arms)
                for metric, arms in zip(spec.metrics, arms_per_metric, strict=True)
                if not any(isinstance(arm.data, PointData) for arm in arms.values())
            ),
            None,
        )
        if found is None:
            message = "no unit counts (point values only): sample ratio not checked"
            return None, [Note(code="srm_not_checked", severity="info", message=message)]
        metric, arms = found
        units = {name: _units(arm.data) for name, arm in arms.items()}
        source = f"metric:{metric.name}"
    return check_srm(units, allocation, threshold=settings.srm_threshold, source=source)


def _units(data: Stats | PointData) -> int:
    assert not isinstance(data, PointData)
    return data.n
