"""The arms of a comparison: the variants checked and each variant's data converted once.

:func:`prepare_arms` is the one place where a variant's data (any input form) becomes sufficient
statistics; it checks the variants first (names, one control, allocations, units) and then every
metric's data against them. The statistics engine compares what it returns
(:func:`twinloop.stats.compare.compare_arms`), and :meth:`PreparedArms.pair` picks two variants
(the loser against the winner) without converting anything again — the Failure Analyzer prepares
the arms once and compares them twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from twinloop.contract import field_path
from twinloop.errors import InvalidInput
from twinloop.stats.inputs import CompareSpec, MetricSpec, PointData, VariantSpec, to_stats
from twinloop.stats.pairwise import Arm
from twinloop.stats.sufficient import BinomialStats, CovariateStats, RatioStats, SampleStats, Stats

_FORM_OF_STATS = {
    SampleStats: "sums",
    BinomialStats: "binomial",
    RatioStats: "ratio",
    CovariateStats: "covariate",
}

MetricPath = Callable[[int, MetricSpec], str]


def by_index(index: int, metric: MetricSpec) -> str:
    """A metric's path as the engine's input has it: ``metrics[0]``."""
    return field_path("metrics", index)


class Variant(Protocol):
    """What the variant checks read (the engine's ``VariantSpec`` and the analyzer's input)."""

    @property
    def name(self) -> str: ...

    @property
    def control(self) -> bool: ...


@dataclass(frozen=True)
class PreparedArms:
    """Checked variants and every metric's arms; ``converted`` as given, ``arms`` comparable."""

    spec: CompareSpec
    control: str
    treatments: tuple[str, ...]
    paths: tuple[str, ...]  # where each metric is in the user's input, for errors
    converted: tuple[Mapping[str, Arm], ...]
    arms: tuple[Mapping[str, Arm], ...]

    def pair(self, control: str, treatment: str) -> PreparedArms:
        """Only ``treatment`` against ``control`` (made the control); no data is converted again.

        Arms are made comparable again over the two (three variants may need a common form that
        two of them do not), exactly as if the pair had been prepared on its own.
        """
        by_name = {v.name: v for v in self.spec.variants}
        variants = (
            by_name[control].model_copy(update={"control": True}),
            by_name[treatment].model_copy(update={"control": False}),
        )
        both = (control, treatment)
        metrics = tuple(
            m.model_copy(update={"variants": {k: m.variants[k] for k in both}})
            for m in self.spec.metrics
        )
        converted = tuple({k: arms[k] for k in both} for arms in self.converted)
        arms = tuple(
            _harmonise(path, metric, dict(given))
            for path, metric, given in zip(self.paths, metrics, converted, strict=True)
        )
        spec = self.spec.model_copy(update={"variants": variants, "metrics": metrics})
        return PreparedArms(spec, control, (treatment,), self.paths, converted, arms)


def prepare_arms(spec: CompareSpec, *, metric_path: MetricPath = by_index) -> PreparedArms:
    """Check the variants and convert every metric's data; InvalidInput names the field.

    ``metric_path`` names a metric in errors (the analyzer's users address metrics by name).
    """
    control, treatments = check_variants(spec.variants)
    paths = tuple(metric_path(i, m) for i, m in enumerate(spec.metrics))
    converted = tuple(
        _convert(path, m, spec.variants) for path, m in zip(paths, spec.metrics, strict=True)
    )
    arms = tuple(
        _harmonise(path, m, dict(given))
        for path, m, given in zip(paths, spec.metrics, converted, strict=True)
    )
    return PreparedArms(spec, control, tuple(treatments), paths, converted, arms)


def check_names(variants: Sequence[Variant], *, control_required: bool = True) -> None:
    """No variant named twice, and exactly one control (at most one when not required)."""
    names = [v.name for v in variants]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise InvalidInput(field_path("variants", index, "name"), f"duplicate variant {name!r}")
    controls = [v.name for v in variants if v.control]
    if len(controls) > 1 or (control_required and len(controls) != 1):
        raise InvalidInput("variants", f"exactly one variant must be the control, got {controls}")


def check_variants(variants: Sequence[VariantSpec]) -> tuple[str, list[str]]:
    """The engine's variant checks; returns the control and the treatments in order."""
    if len(variants) < 2:
        raise InvalidInput(
            "variants", f"need a control and at least one treatment, got {len(variants)}"
        )
    check_names(variants)
    for field in ("allocation", "units"):
        given = [getattr(v, field) is not None for v in variants]
        if any(given) and not all(given):
            index = given.index(False)
            raise InvalidInput(
                field_path("variants", index, field), "give it for every variant or none"
            )
    for index, variant in enumerate(variants):
        if variant.allocation is not None and not variant.allocation > 0:
            raise InvalidInput(
                field_path("variants", index, "allocation"),
                f"must be > 0, got {variant.allocation!r}",
            )
        if variant.units is not None and variant.units < 0:
            raise InvalidInput(
                field_path("variants", index, "units"), f"must be >= 0, got {variant.units}"
            )
    control = next(v.name for v in variants if v.control)
    return control, [v.name for v in variants if v.name != control]


def _convert(path: str, metric: MetricSpec, variants: Sequence[VariantSpec]) -> dict[str, Arm]:
    """Check one metric's data against the variants and convert each variant's data."""
    expected = [v.name for v in variants]
    if set(metric.variants) != set(expected):
        raise InvalidInput(
            f"{path}.variants",
            f"metric {metric.name!r} has variants {sorted(metric.variants)}, "
            f"the experiment has {sorted(expected)}",
        )
    arms: dict[str, Arm] = {}
    for name in expected:
        data = metric.variants[name]
        form = getattr(data, "form", None) or _FORM_OF_STATS[type(data)]
        stats = to_stats(data, metric.metric_type, f"{path}.variants.{name}")
        arms[name] = Arm(name, form, stats)
    return arms


def _harmonise(path: str, metric: MetricSpec, arms: dict[str, Arm]) -> dict[str, Arm]:
    """Make every arm of a metric the same kind of statistics, or say why they cannot be."""
    kinds = {type(arm.data) for arm in arms.values()}
    wanted = metric.metric_type
    if PointData in kinds and len(kinds) > 1:
        raise InvalidInput(
            f"{path}.variants", "point values cannot be compared with sample statistics"
        )
    if kinds == {PointData}:
        return arms
    if wanted == "proportion" and kinds != {BinomialStats}:
        raise InvalidInput(f"{path}.metric_type", "'proportion' needs binomial data or 0/1 values")
    if (wanted == "ratio" or RatioStats in kinds) and kinds != {RatioStats}:
        where = "metric_type" if wanted == "ratio" else "variants"
        raise InvalidInput(
            f"{path}.{where}", "a ratio metric needs ratio data (numerator and denominator)"
        )
    if kinds == {RatioStats}:
        if wanted not in ("auto", "ratio"):
            raise InvalidInput(f"{path}.metric_type", f"{wanted!r} does not fit ratio data")
        return arms
    if kinds == {BinomialStats} and wanted != "mean":
        return arms
    if kinds == {SampleStats}:
        return arms
    if CovariateStats in kinds:
        if len(kinds) > 1:
            raise InvalidInput(
                f"{path}.variants", "a pre-period covariate is given for some variants only"
            )
        return arms
    # Mixed mean-like forms: compare the metric values as plain samples.
    return {name: Arm(name, arm.form, _as_sample(arm.data)) for name, arm in arms.items()}


def _as_sample(data: Stats | PointData) -> Stats:
    if isinstance(data, BinomialStats):
        return data.as_sample()
    assert isinstance(data, SampleStats)
    return data
