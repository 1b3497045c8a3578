"""The Failure Analyzer's input: an A/B test result in any form a user has (``AbTestResult``).

The model's fields are snake_case; the seed's camelCase JSON is read by the explicit constructor
:meth:`AbTestResult.from_friendly` (the HTTP edge and the CLI call it)::

    {"experimentId": "exp-123", "winner": "model-v2", "loser": "model-v3",
     "metrics": {"accuracy": {"winner": 0.92, "loser": 0.78, "percentChange": -15.2}}}

and so are richer forms: variants with their planned allocation and which one is control,
metrics with a kind, a direction and a role and per-variant data in any form the statistics
engine takes (point, binomial, continuous, sums, ratio, covariate, raw values — the ``form`` key
may be left out when the keys make it plain), business parameters, a segment breakdown, or a raw
per-unit file. ``from_friendly`` normalises (``normalise.py``), validates and checks the
structure; the numbers are checked where each variant's data is converted, once, into the
statistics engine's arms (:func:`twinloop.stats.arms.prepare_arms`). Both raise
:class:`InvalidInput` with the dotted field as the user spelled it
(``metrics.conversion.variants.B.successes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self, get_args

from pydantic import Field, ValidationError, field_validator, model_validator

from twinloop.analysis.normalise import normalise, respell
from twinloop.contract import ID_PATTERN, FrozenModel, invalid_input
from twinloop.errors import InvalidInput
from twinloop.sim.models import ModelProfile
from twinloop.stats.arms import check_names
from twinloop.stats.inputs import FormData, MetricType, to_stats
from twinloop.stats.results import Direction, Role

MetricKind = Literal[
    "accuracy", "latency", "cost", "satisfaction", "conversion", "revenue", "custom"
]
METRIC_KINDS: tuple[str, ...] = get_args(MetricKind)

# Name fragments that reveal a metric's kind, checked in this order ("cost_per_conversion" is a
# cost, "revenue_per_conversion" a revenue).
_KIND_WORDS: tuple[tuple[MetricKind, tuple[str, ...]], ...] = (
    ("latency", ("latency", "response_time", "duration", "_ms", "p50", "p95", "p99")),
    ("cost", ("cost", "spend", "expense")),
    ("revenue", ("revenue", "gmv", "sales", "income", "arpu", "order_value", "aov")),
    ("conversion", ("conversion", "converted", "ctr", "click_through", "signup", "win_rate")),
    ("accuracy", ("accuracy", "precision", "recall", "f1", "auc", "correct")),
    ("satisfaction", ("satisfaction", "csat", "nps", "rating", "sentiment")),
)
_LOWER_WORDS = ("error", "churn", "bounce", "fail", "refund", "complaint", "abandon", "time")
_ROLE_OF_KIND: dict[str, Role] = {
    "conversion": "primary",
    "revenue": "primary",
    "latency": "guardrail",
    "cost": "guardrail",
}


def infer_kind(name: str) -> MetricKind:
    """The metric kind a name reveals (``latency_p95_ms`` → latency), else ``custom``."""
    text = name.lower()
    for kind, words in _KIND_WORDS:
        if any(word in text for word in words):
            return kind
    return "custom"


def infer_direction(name: str, kind: str) -> Direction:
    """Latency and cost are lower-is-better, and so are errors, churn, bounces …; else higher."""
    if kind in ("latency", "cost"):
        return "lower"
    return "lower" if any(word in name.lower() for word in _LOWER_WORDS) else "higher"


def infer_role(kind: str) -> Role:
    """Conversion and revenue decide a test; latency and cost guard it; the rest explain it."""
    return _ROLE_OF_KIND.get(kind, "secondary")


class _Input(FrozenModel):
    """Base of the analyzer's input models: frozen, unknown keys refused, snake_case."""


class VariantInfo(_Input):
    """One arm: its name, whether it is control, its planned share and its assigned units."""

    name: str = Field(min_length=1, max_length=128)
    control: bool = False
    allocation: float | None = Field(
        default=None,
        gt=0.0,
        description="planned share of units (weights are normalised); None = equal split",
    )
    units: int | None = Field(default=None, ge=0, description="units assigned (SRM check)")


class MetricInput(_Input):
    """One metric's metadata and, unless it comes from raw data, its data per variant.

    ``kind``, ``direction`` and ``role`` are inferred from the name when absent (see
    :func:`infer_kind`, :func:`infer_direction`, :func:`infer_role`).
    """

    name: str = Field(min_length=1, max_length=128)
    kind: MetricKind
    direction: Direction
    role: Role
    variants: dict[str, FormData] | None = Field(
        default=None, description="data per variant; None = read from the raw data"
    )
    metric_type: MetricType = "auto"
    denominator: str | None = Field(default=None, description="raw data: ratio metric column")
    unit: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _infer(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            return data
        filled = dict(data)
        name = filled["name"]
        kind = filled.get("kind")
        if kind is None:
            kind = filled["kind"] = infer_kind(name)
        if filled.get("direction") is None:
            filled["direction"] = infer_direction(name, str(kind))
        if filled.get("role") is None:
            filled["role"] = infer_role(str(kind))
        return filled


class BusinessParameters(_Input):
    """What a unit of traffic is worth: how many per day, a conversion's value, a call's cost."""

    traffic_per_day: float | None = Field(default=None, ge=0.0, description="units per day")
    value_per_conversion: float | None = Field(default=None, ge=0.0, description="money")
    cost_per_call: float | None = Field(default=None, ge=0.0, description="money per call")
    calls_per_unit: float | None = Field(
        default=None, ge=0.0, description="model calls per unit when no calls metric is given"
    )
    currency: str = Field(default="USD", min_length=1, max_length=8)


class SegmentRow(_Input):
    """One segment's data of one metric for every variant (a segment breakdown row)."""

    segment: dict[str, str] = Field(min_length=1, description="dimension -> value")
    metric: str = Field(min_length=1)
    variants: dict[str, FormData]


class RawSource(_Input):
    """Per-unit rows in a Parquet, CSV or Arrow file (or passed in memory to the analyzer)."""

    path: str | None = None
    format: Literal["parquet", "csv", "arrow"] | None = None
    variant_column: str = "variant"
    dimensions: tuple[str, ...] | None = Field(
        default=None, description="segment columns; None = every text column"
    )
    metrics: tuple[str, ...] | None = Field(
        default=None, description="metric columns; None = every numeric column but ids and time"
    )
    time_column: str | None = Field(
        default=None, description="arrival time of a unit (days or a timestamp); None = detect"
    )


class AbTestResult(_Input):
    """An A/B test result as the Failure Analyzer takes it (see the module docstring)."""

    experiment_id: str = Field(min_length=1)
    variants: tuple[VariantInfo, ...] = ()
    winner: str | None = None
    loser: str | None = None
    metrics: tuple[MetricInput, ...] = ()
    business: BusinessParameters | None = None
    segments: tuple[SegmentRow, ...] = ()
    raw: RawSource | None = None
    primary_metrics: tuple[str, ...] = Field(
        default=(), description="names of the deciding metrics; others become non-primary"
    )
    models: dict[str, ModelProfile] = Field(
        default_factory=dict, description="twin profiles of the variants, for validation plans"
    )
    environment: str | None = Field(
        default=None, description="sandbox preset for validation plans; None = the settings'"
    )

    @classmethod
    def from_friendly(cls, data: Mapping[str, Any], *, raw_given: bool = False) -> Self:
        """Read the seed's and other friendly JSON shapes (module docstring) and check every
        number; InvalidInput names the first bad field as the user spelled it.

        ``raw_given`` says per-unit rows come separately (in memory), not through ``raw.path``.
        """
        if not isinstance(data, Mapping):
            raise InvalidInput("result", f"must be a JSON object, got {type(data).__name__}")
        normalised, spellings = normalise(data)
        try:
            result = cls.model_validate(normalised)
        except ValidationError as exc:
            error = invalid_input(
                exc, normalised, named={"metrics"}, messages=_FORM_ERRORS, root="result"
            )
            raise InvalidInput(respell(error.field, spellings), error.message) from None
        try:
            check_result(result, raw_given=raw_given)
        except InvalidInput as exc:
            raise InvalidInput(respell(exc.field, spellings), exc.message) from None
        return result

    @field_validator("experiment_id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not ID_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} must match {ID_PATTERN.pattern} (it is a store id)")
        return value

    @property
    def variant_names(self) -> list[str]:
        """Variant names in the order given."""
        return [v.name for v in self.variants]

    @property
    def control(self) -> str:
        """The control variant (``normalise`` guarantees exactly one)."""
        return next(v.name for v in self.variants if v.control)

    def metric(self, name: str) -> MetricInput | None:
        """The metric called ``name``, if any."""
        return next((m for m in self.metrics if m.name == name), None)


_FORM_ERRORS = {  # the variant-data union stands for the data form
    "union_tag_invalid": "unknown data form {tag!r}",
    "union_tag_not_found": (
        "cannot tell the data form from its keys; give 'form' (binomial, continuous, …)"
    ),
}


def parse_ab_result(
    data: AbTestResult | Mapping[str, Any], *, raw_given: bool = False
) -> AbTestResult:
    """A checked A/B result: a model is checked as is, anything else read by
    :meth:`AbTestResult.from_friendly`.

    ``raw_given`` says per-unit rows come separately (in memory), not through ``raw.path``.
    """
    if not isinstance(data, AbTestResult):
        return AbTestResult.from_friendly(data, raw_given=raw_given)
    check_result(data, raw_given=raw_given)
    return data


def check_result(result: AbTestResult, *, raw_given: bool = False) -> None:
    """Cross-field and numeric checks pydantic cannot make (InvalidInput naming the field)."""
    given = result.variant_names
    has_raw = raw_given or result.raw is not None
    # With raw data only, the data name the variants (given ones are checked against them).
    names = [] if has_raw and not any(m.variants for m in result.metrics) else given
    check_names(result.variants, control_required=bool(names))
    for field in ("winner", "loser"):
        value = getattr(result, field)
        if value is not None and names and value not in names:
            raise InvalidInput(field, f"{value!r} is not a variant; variants are {names}")
    if result.winner is not None and result.winner == result.loser:
        raise InvalidInput("loser", f"{result.loser!r} is also the winner")
    seen: set[str] = set()
    for metric in result.metrics:
        if metric.name in seen:
            raise InvalidInput(f"metrics.{metric.name}", "metric named twice")
        seen.add(metric.name)
        if metric.variants is None:
            if not has_raw:
                raise InvalidInput(f"metrics.{metric.name}.variants", "no data and no raw data")
            continue
        # Converted once, when the analyzer prepares the arms (twinloop.stats.arms).
        _check_variant_data(f"metrics.{metric.name}.variants", metric.variants, names)
    if not result.metrics and not has_raw:
        raise InvalidInput("metrics", "no metrics and no raw data: nothing to analyse")
    for index, row in enumerate(result.segments):
        row_metric = result.metric(row.metric)
        if row_metric is None:
            raise InvalidInput(f"segments[{index}].metric", f"unknown metric {row.metric!r}")
        path = f"segments[{index}].variants"
        _check_variant_data(path, row.variants, names)
        for variant, value in row.variants.items():
            to_stats(value, row_metric.metric_type, f"{path}.{variant}")
    for name in result.models:
        if names and name not in names:
            raise InvalidInput(f"models.{name}", f"not a variant; variants are {names}")


def _check_variant_data(path: str, data: Mapping[str, Any], names: Sequence[str]) -> None:
    if names and set(data) != set(names):
        raise InvalidInput(path, f"has variants {sorted(data)}, the experiment has {sorted(names)}")
    for variant, value in data.items():
        if getattr(value, "form", None) == "raw" and not value.values:
            raise InvalidInput(f"{path}.{variant}.values", "is empty: no units")
