"""Input forms of an A/B comparison: variants, settings, and each metric in any form a user has.

A metric's data per variant is one of: the seed's ``point`` value (no significance possible),
``binomial`` (n, successes), ``continuous`` (n, mean, std), ``sums`` (n, Σx, Σx²), ``ratio``
(numerator/denominator sums, squares, cross-product), ``covariate`` (sums with a pre-period
covariate for CUPED), ``raw`` per-unit lists — or a ready :mod:`sufficient` statistics object,
which is how raw files of millions of rows come in. The models check shapes; numbers are checked
by :func:`to_stats`, which raises :class:`InvalidInput` with the dotted path of the field.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, InstanceOf, PositiveFloat
from pydantic.json_schema import SkipJsonSchema

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.stats.results import Direction, Role
from twinloop.stats.sufficient import (
    BinomialStats,
    CovariateStats,
    RatioStats,
    SampleStats,
    Stats,
)


class PointData(FrozenModel):
    """The seed's form: one value per variant; ``percent_change`` is the stated % vs control."""

    form: Literal["point"] = "point"
    value: float
    percent_change: float | None = None


class BinomialData(FrozenModel):
    """Units and units that converted."""

    form: Literal["binomial"] = "binomial"
    n: int
    successes: int


class ContinuousData(FrozenModel):
    """Units, mean and sample standard deviation (``ddof=1``)."""

    form: Literal["continuous"] = "continuous"
    n: int
    mean: float
    std: float


class SumsData(FrozenModel):
    """Units, Σx and Σx² — what a warehouse query returns."""

    form: Literal["sums"] = "sums"
    n: int
    sum: float
    sum_sq: float


class RatioData(FrozenModel):
    """A ratio metric Σnum/Σden over ``n`` units: sums, squares and the cross-product."""

    form: Literal["ratio"] = "ratio"
    n: int
    num_sum: float
    num_sum_sq: float
    den_sum: float
    den_sum_sq: float
    cross_sum: float


class CovariateData(FrozenModel):
    """A metric with a pre-period covariate (CUPED): Σy, Σy², Σx, Σx², Σxy over ``n`` units."""

    form: Literal["covariate"] = "covariate"
    n: int
    sum: float
    sum_sq: float
    pre_sum: float
    pre_sum_sq: float
    cross_sum: float


class RawData(FrozenModel):
    """Per-unit values (small samples in JSON; files go through :mod:`rawdata`)."""

    form: Literal["raw"] = "raw"
    values: tuple[float, ...]
    denominators: tuple[float, ...] | None = Field(default=None, description="ratio metric")
    pre_values: tuple[float, ...] | None = Field(default=None, description="CUPED covariate")


FormData = Annotated[
    PointData | BinomialData | ContinuousData | SumsData | RatioData | CovariateData | RawData,
    Field(discriminator="form"),
]
# Statistics objects are a Python-only form (from files and workers): not in the JSON schema.
VariantData = (
    FormData
    | SkipJsonSchema[InstanceOf[SampleStats]]
    | SkipJsonSchema[InstanceOf[BinomialStats]]
    | SkipJsonSchema[InstanceOf[RatioStats]]
    | SkipJsonSchema[InstanceOf[CovariateStats]]
)
MetricType = Literal["auto", "mean", "proportion", "ratio"]


class MetricSpec(FrozenModel):
    """One metric: its data per variant (keys must be exactly the experiment's variants)."""

    name: str = Field(min_length=1)
    variants: dict[str, VariantData]
    direction: Direction = "higher"
    role: Role = "primary"
    metric_type: MetricType = Field(
        default="auto",
        description="'auto' infers it from the forms; 'proportion' reads raw 0/1 values",
    )


class VariantSpec(FrozenModel):
    """One arm of the experiment; ``allocation`` is its planned share (weights are normalised)."""

    name: str = Field(min_length=1)
    control: bool = False
    allocation: float | None = Field(default=None, description="planned share; None = equal")
    units: int | None = Field(default=None, description="units assigned, for the SRM check")


class GaussianPrior(FrozenModel):
    """Normal prior on the lift (same scale as ``bayesian_scale``)."""

    mean: float = 0.0
    std: float = Field(gt=0.0)


class CompareSettings(FrozenModel):
    """How to compare: error rates, corrections, which optional analyses to run."""

    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    correction: Literal["holm", "benjamini_hochberg", "none"] = "holm"
    correction_scope: Literal["all", "role"] = Field(
        default="all", description="one family for every comparison, or one per metric role"
    )
    srm_threshold: float = Field(default=0.001, gt=0.0, lt=1.0)
    min_samples: int = Field(default=30, ge=0, description="units per variant below: a note")
    power: float = Field(default=0.8, gt=0.0, lt=1.0)
    target_relative_effect: float | None = Field(
        default=None, gt=0.0, description="effect for 'power_at_target' (e.g. FAILURE_THRESHOLD)"
    )
    cuped: bool = True
    bayesian: bool = True
    bayesian_scale: Literal["relative", "absolute"] = "relative"
    prior: GaussianPrior | None = None
    beta_prior: tuple[PositiveFloat, PositiveFloat] = Field(
        default=(1.0, 1.0), description="Beta(a, b) prior of conversion rates"
    )
    sequential: bool = False
    sequential_tuning_n: int = Field(default=5000, ge=1)


class CompareSpec(FrozenModel):
    """Everything one comparison needs: the variants, the metrics and the settings."""

    variants: tuple[VariantSpec, ...]
    metrics: tuple[MetricSpec, ...]
    settings: CompareSettings = CompareSettings()


def to_stats(data: VariantData, metric_type: MetricType, path: str) -> Stats | PointData:
    """Check one variant's data and turn it into sufficient statistics (or keep a point value)."""
    if isinstance(data, SampleStats | BinomialStats | RatioStats | CovariateStats):
        return data
    if isinstance(data, PointData):
        _finite(data.value, f"{path}.value")
        if data.percent_change is not None:
            _finite(data.percent_change, f"{path}.percent_change")
        return data
    if isinstance(data, BinomialData):
        return BinomialStats.from_counts(data.n, data.successes, field=path)
    if isinstance(data, ContinuousData):
        return SampleStats.from_mean_std(data.n, data.mean, data.std, field=path)
    if isinstance(data, SumsData):
        return SampleStats.from_sums(data.n, data.sum, data.sum_sq, field=path)
    if isinstance(data, RatioData):
        return RatioStats.from_sums(
            data.n, data.num_sum, data.num_sum_sq, data.den_sum, data.den_sum_sq,
            data.cross_sum, field=path,
        )  # fmt: skip
    if isinstance(data, CovariateData):
        return CovariateStats.from_sums(
            data.n, data.sum, data.sum_sq, data.pre_sum, data.pre_sum_sq, data.cross_sum,
            field=path,
        )  # fmt: skip
    return _raw_to_stats(data, metric_type, path)


def _raw_to_stats(data: RawData, metric_type: MetricType, path: str) -> Stats:
    if data.denominators is not None:
        if data.pre_values is not None:
            raise InvalidInput(f"{path}.pre_values", "CUPED on a ratio metric is not supported")
        return RatioStats.from_arrays(data.values, data.denominators, field=f"{path}.values")
    if data.pre_values is not None:
        return CovariateStats.from_arrays(data.values, data.pre_values, field=f"{path}.values")
    if metric_type == "proportion":
        return BinomialStats.from_array(data.values, field=f"{path}.values")
    return SampleStats.from_array(data.values, field=f"{path}.values")


def _finite(value: float, field: str) -> None:
    if not math.isfinite(value):
        raise InvalidInput(field, f"must be finite, got {value!r}")
