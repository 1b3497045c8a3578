"""The Failure Analyzer: an A/B result in, a ``FailureAnalysis`` out (and kept in the Store).

``analyze_failure`` checks the whole input first — nothing is stored when it is bad — then

1. decides winner and loser with the statistics engine (:mod:`.decision`);
2. names the failure types with their severity (:mod:`.failures`);
3. finds root causes: segments from raw data or a breakdown (:mod:`.segments`), metric chains
   (:mod:`.chains`, their part of the loss from a fitted graph in :mod:`.attribution`) and
   data-quality causes (:mod:`.quality`), ranked together (:mod:`.causes`);
4. prices the loss (:mod:`.impact`) and writes ranked hypotheses with runnable sandbox plans
   (:mod:`.hypotheses`);
5. matches the failure's signature against earlier analyses (:mod:`.patterns`).

With a store, the analysis is written under kind ``analyses`` and id ``experimentId``: a
re-analysis replaces the current document and the Store keeps the earlier versions as history.
Nothing random happens; the same input gives the same analysis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from twinloop.analysis.armsums import breakdown_leaves, raw_leaves
from twinloop.analysis.attribution import LossAttribution, attribute_loss
from twinloop.analysis.causes import RootCause, rank_root_causes
from twinloop.analysis.cells import CellSums, cell_sums, check_binary, is_binary
from twinloop.analysis.cells import metric_spec as cell_metric_spec
from twinloop.analysis.chains import MetricChain, metric_chains
from twinloop.analysis.decision import Decision, decide
from twinloop.analysis.failures import FailureType, failure_types
from twinloop.analysis.hypotheses import Hypothesis, hypotheses
from twinloop.analysis.impact import BusinessImpact, business_impact
from twinloop.analysis.inputs import (
    AbTestResult,
    MetricInput,
    RawSource,
    VariantInfo,
    parse_ab_result,
)
from twinloop.analysis.normalise import default_control
from twinloop.analysis.patterns import (
    PatternReport,
    match,
    named_patterns,
    record,
    signature_tokens,
)
from twinloop.analysis.quality import (
    QualityFinding,
    engine_findings,
    excluded_dimensions,
    novelty,
)
from twinloop.analysis.rawinput import RawInput, raw_input, read_table
from twinloop.analysis.segments import SegmentAnalysis, analyse_segments
from twinloop.analysis.settings import AnalyzerSettings, SeverityLevel
from twinloop.config import Settings, load_settings
from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.sim.domains import DOMAINS
from twinloop.stats.arms import prepare_arms
from twinloop.stats.inputs import CompareSpec, MetricSpec, VariantSpec
from twinloop.store import Store

KIND = "analyses"
InputForm = Literal["point", "summary", "raw", "breakdown"]


class FailureAnalysis(FrozenModel):
    """Why a model lost an A/B test: decision, failures, causes, patterns, impact, hypotheses."""

    experiment_id: str
    input_form: InputForm = Field(description="the richest data form the analysis had")
    decision: Decision
    failure_types: tuple[FailureType, ...]
    root_causes: tuple[RootCause, ...]
    chains: tuple[MetricChain, ...]
    attribution: LossAttribution | None = Field(
        default=None,
        description="the key metric's change split over the chains' roots (per-unit data only)",
    )
    segments: tuple[SegmentAnalysis, ...]
    data_quality: tuple[QualityFinding, ...]
    patterns: PatternReport
    impact: BusinessImpact
    severity: SeverityLevel
    hypotheses: tuple[Hypothesis, ...]
    metrics: tuple[MetricInput, ...] = Field(description="metric metadata used (data left out)")
    settings: AnalyzerSettings
    seed: int | None = Field(default=None, description="deterministic: no randomness is used")


@dataclass(frozen=True)
class Prepared:
    """The checked input in the statistics engine's terms."""

    result: AbTestResult
    variants: list[VariantSpec]
    specs: list[MetricSpec]
    metrics: dict[str, MetricInput]
    raw: RawInput | None
    sums: dict[str, CellSums]
    form: InputForm


def analyze_failure(
    result: AbTestResult | Mapping[str, Any],
    *,
    store: Store | None = None,
    settings: AnalyzerSettings | Settings | None = None,
    raw_table: pa.Table | None = None,
    base_dir: Path | None = None,
) -> FailureAnalysis:
    """Analyse why the loser lost (see the module docstring).

    ``raw_table`` passes per-unit rows in memory (instead of ``raw.path``); ``base_dir`` is where
    a relative ``raw.path`` is read from. Raises InvalidInput naming the field for bad input,
    before anything is stored.
    """
    config = _settings(settings)
    prepared = prepare(
        parse_ab_result(result, raw_given=raw_table is not None), raw_table, base_dir
    )
    parsed, meta = prepared.result, prepared.metrics
    spec = CompareSpec(
        variants=tuple(prepared.variants),
        metrics=tuple(prepared.specs),
        settings=config.statistics,
    )
    arms = prepare_arms(spec, metric_path=lambda _, metric: f"metrics.{metric.name}")
    decision = decide(arms, winner=parsed.winner, loser=parsed.loser)
    failures = failure_types(decision.comparisons, meta, config.failure_threshold)
    chains = metric_chains(failures, meta, decision.key_metric)
    segments = _segments(prepared, decision, failures, config)
    quality = engine_findings(decision, config)
    if prepared.raw is not None:
        quality += excluded_dimensions(prepared.raw.excluded_dims)
    if prepared.raw is not None and prepared.raw.time is not None:
        quality += novelty(prepared.raw.table, prepared.raw.time, decision, failures, config)
    attribution = attribute_loss(
        chains, decision, meta, prepared.raw.table if prepared.raw is not None else None
    )
    causes = rank_root_causes(segments, chains, quality, config.max_root_causes, attribution)
    impact = business_impact(
        decision, meta, parsed.business, config, estimated_traffic=_traffic(prepared.raw)
    )
    ideas = hypotheses(causes, decision, impact, parsed, meta, config)
    tokens = signature_tokens(failures, chains, causes)
    codes = named_patterns(failures, chains, causes, decision.status == "not_tested")
    report = match(
        parsed.experiment_id, tokens, codes, store, config.similarity_threshold, config.max_matches
    )
    analysis = FailureAnalysis(
        experiment_id=parsed.experiment_id,
        input_form=prepared.form,
        decision=decision,
        failure_types=tuple(failures),
        root_causes=tuple(causes),
        chains=tuple(chains),
        attribution=attribution,
        segments=tuple(segments),
        data_quality=tuple(quality),
        patterns=report,
        impact=impact,
        severity=impact.severity,
        hypotheses=tuple(ideas),
        metrics=tuple(m.model_copy(update={"variants": None}) for m in meta.values()),
        settings=config,
    )
    if store is not None:
        record(store, parsed.experiment_id, report)
        store.put_model(KIND, parsed.experiment_id, analysis)
    return analysis


def _settings(settings: AnalyzerSettings | Settings | None) -> AnalyzerSettings:
    if isinstance(settings, AnalyzerSettings):
        return settings
    return AnalyzerSettings.from_settings(settings if settings is not None else load_settings())


def prepare(
    result: AbTestResult, raw_table: pa.Table | None = None, base_dir: Path | None = None
) -> Prepared:
    """Resolve variants and metrics (reading raw data when there is some) for the engine."""
    if result.environment is not None and result.environment not in DOMAINS:
        raise InvalidInput(
            "environment", f"unknown sandbox preset {result.environment!r}; have {list(DOMAINS)}"
        )
    raw = None
    if raw_table is not None or result.raw is not None:
        source = result.raw or RawSource()
        table = raw_table if raw_table is not None else read_table(source, base_dir)
        declared = [m for m in result.metrics if m.variants is None]
        raw = raw_input(table, source, declared)
        result = _with_raw_variants(result, raw)
    metrics: dict[str, MetricInput] = {}
    specs: list[MetricSpec] = []
    sums: dict[str, CellSums] = {}
    for metric in result.metrics:
        if metric.variants is not None:
            metrics[metric.name] = metric
            specs.append(
                MetricSpec(
                    name=metric.name,
                    variants=dict(metric.variants),
                    direction=metric.direction,
                    role=metric.role,
                    metric_type=metric.metric_type,
                )
            )
    if raw is not None:
        declared_names = {m.name for m in result.metrics}
        denominators = {m.denominator for m in result.metrics if m.denominator}
        columns = [c for c in raw.table.metrics if c not in metrics and c not in denominators]
        order = [result.control, *(v for v in result.variant_names if v != result.control)]
        for column in columns:
            meta = result.metric(column) if column in declared_names else None
            meta = meta or MetricInput.model_validate({"name": column})
            metrics[column] = meta
            if meta.denominator is not None:  # a ratio metric: the engine's (slower) path
                spec = raw.table.metric_spec(
                    column,
                    metric_type="ratio",
                    denominator=meta.denominator,
                    direction=meta.direction,
                    role=meta.role,
                )
                specs.append(spec)
                continue
            sums[column] = cell_sums(raw.cells, raw.table.metrics[column], _binary(raw, meta))
            specs.append(
                cell_metric_spec(
                    sums[column],
                    raw.cells.variants,
                    order,
                    name=column,
                    direction=meta.direction,
                    role=meta.role,
                )
            )
    if result.primary_metrics:
        metrics, specs = _primary(result.primary_metrics, metrics, specs)
    form = _form(result, raw)
    return Prepared(result, _variant_specs(result), specs, metrics, raw, sums, form)


def _binary(raw: RawInput, meta: MetricInput) -> bool:
    """A 0/1 column analysed as a proportion: declared so, or a conversion that is all 0/1."""
    column = raw.table.metrics[meta.name]
    if meta.metric_type == "proportion":
        check_binary(column, meta.name)
        return True
    if meta.metric_type != "auto" or meta.kind != "conversion":
        return False
    return meta.name in raw.boolean or is_binary(column)


def _primary(
    names: Sequence[str], metrics: dict[str, MetricInput], specs: list[MetricSpec]
) -> tuple[dict[str, MetricInput], list[MetricSpec]]:
    """Make exactly ``names`` primary; a metric that would be primary otherwise is secondary."""
    for index, name in enumerate(names):
        if name not in metrics:
            raise InvalidInput(
                f"primary_metrics[{index}]",
                f"unknown metric {name!r}; metrics are {sorted(metrics)}",
            )

    def role(metric: str, current: str) -> str:
        if metric in names:
            return "primary"
        return "secondary" if current == "primary" else current

    metrics = {k: m.model_copy(update={"role": role(k, m.role)}) for k, m in metrics.items()}
    specs = [s.model_copy(update={"role": role(s.name, s.role)}) for s in specs]
    return metrics, specs


def _with_raw_variants(result: AbTestResult, raw: RawInput) -> AbTestResult:
    """Variants from the data; given ones (their control flag, allocation) must be in it."""
    found = list(raw.table.variants)
    if len(found) < 2:
        raise InvalidInput("raw.variant_column", f"needs at least two variants, found {found}")
    given = {v.name: v for v in result.variants}
    for index, name in enumerate(given):
        if name not in found:
            raise InvalidInput(
                f"variants[{index}].name", f"{name!r} is not in the raw data; variants are {found}"
            )
    for field in ("winner", "loser"):
        value = getattr(result, field)
        if value is not None and value not in found:
            raise InvalidInput(field, f"{value!r} is not in the raw data; variants are {found}")
    flagged = [v.name for v in result.variants if v.control]
    control = flagged[0] if flagged else default_control(found, result.winner)
    variants = tuple(
        given[name].model_copy(update={"control": name == control})
        if name in given
        else VariantInfo(name=name, control=name == control)
        for name in found
    )
    return result.model_copy(update={"variants": variants})


def _variant_specs(result: AbTestResult) -> list[VariantSpec]:
    allocations = [v.allocation for v in result.variants]
    units = [v.units for v in result.variants]
    return [
        VariantSpec(
            name=v.name,
            control=v.control,
            allocation=v.allocation if all(a is not None for a in allocations) else None,
            units=v.units if all(u is not None for u in units) else None,
        )
        for v in result.variants
    ]


def _form(result: AbTestResult, raw: RawInput | None) -> InputForm:
    if raw is not None:
        return "raw"
    if result.segments:
        return "breakdown"
    forms = {getattr(d, "form", None) for m in result.metrics for d in (m.variants or {}).values()}
    return "point" if forms == {"point"} else "summary"


def _segments(
    prepared: Prepared,
    decision: Decision,
    failures: Sequence[FailureType],
    settings: AnalyzerSettings,
) -> list[SegmentAnalysis]:
    """Localize the worst failing metrics in raw data or the breakdown (at most a few)."""
    wanted = [f.metric for f in failures if f.evidence != "unconfirmed"]
    if decision.key_metric is not None and decision.key_metric not in wanted:
        wanted.insert(0, decision.key_metric)
    wanted = wanted[: settings.max_localized_metrics]
    alpha = settings.statistics.alpha
    found: list[SegmentAnalysis] = []
    raw = prepared.raw
    if raw is not None:
        for name in wanted:
            if name not in prepared.sums:
                continue
            leaves = raw_leaves(raw.cells, prepared.sums[name], decision.winner, decision.loser)
            if leaves is None:
                return []
            meta = prepared.metrics[name]
            analysis = analyse_segments(leaves, meta, settings.localizer, "raw", alpha)
            if analysis is not None:
                found.append(analysis)
        return found
    rows = prepared.result.segments
    for name in wanted:
        mine = [(i, row) for i, row in enumerate(rows) if row.metric == name]
        if not mine:
            continue
        leaves = breakdown_leaves(mine, prepared.metrics[name], decision.winner, decision.loser)
        analysis = analyse_segments(
            leaves, prepared.metrics[name], settings.localizer, "breakdown", alpha
        )
        if analysis is not None:
            found.append(analysis)
    return found


def _traffic(raw: RawInput | None) -> float | None:
    """Units per day seen in the test, from the raw time column (None without one)."""
    if raw is None or raw.time is None:
        return None
    span = float(np.nanmax(raw.time))
    return raw.table.n_rows / max(span, 1.0)
