"""Failure Analyzer: the seed's example, summary statistics checked against scipy, a flawed
model in the twin found by segment and chain, prices with intervals, hypotheses with plans."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from twinloop.analysis.analyzer import FailureAnalysis, analyze_failure
from twinloop.analysis.report_text import render
from twinloop.analysis.settings import AnalyzerSettings
from twinloop.config import load_settings
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.specs import HeadToHeadSpec, parse_sandbox_spec
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec

SETTINGS = AnalyzerSettings()
SEED = {
    "experimentId": "exp-123",
    "winner": "model-v2",
    "loser": "model-v3",
    "metrics": {
        "accuracy": {"winner": 0.92, "loser": 0.78, "percentChange": -15.2},
        "latency": {"winner": 100, "loser": 250, "percentChange": 150},
        "satisfaction": {"winner": 0.85, "loser": 0.72, "percentChange": -15.3},
    },
}


def summary_result(**extra: Any) -> dict[str, Any]:
    """Control A against treatment B in binomial and n/mean/std form."""
    return {
        "experimentId": "exp-summary",
        "variants": [
            {"name": "A", "control": True, "plannedAllocation": 0.5},
            {"name": "B", "plannedAllocation": 0.5},
        ],
        "metrics": {
            "conversion": {"variants": {"A": {"n": 10_000, "successes": 1_200},
                                        "B": {"n": 10_050, "successes": 1_100}}},
            "revenue": {"variants": {"A": {"n": 10_000, "mean": 10.0, "std": 30.0},
                                     "B": {"n": 10_050, "mean": 8.9, "std": 29.0}}},
            "latency_ms": {"variants": {"A": {"n": 10_000, "mean": 100.0, "std": 30.0},
                                        "B": {"n": 10_050, "mean": 131.0, "std": 35.0}}},
        },
        **extra,
    }  # fmt: skip


@pytest.fixture(scope="module")
def twin() -> tuple[pa.Table, FailureAnalysis]:
    """A model blind on enterprise (accuracy 0.4) and 4x slower, against a good one, 50/50."""
    good = ModelProfile(name="model-v2", accuracy=0.85, latency_p50_ms=100, latency_p95_ms=200)
    bad = ModelProfile(
        name="model-v3", accuracy=0.85, latency_p50_ms=400, latency_p95_ms=900,
        segment_overrides={"enterprise": {"accuracy": 0.4}},
    )  # fmt: skip
    spec = SimulationSpec(
        environment=environment("sales"), models=[good, bad], allocation=[0.5, 0.5],
        days=30, seed=1, record_units=True,
    )  # fmt: skip
    units = simulate(spec).units
    assert units is not None
    result = {
        "experimentId": "twin-enterprise",
        "variants": [
            {"name": "model-v3", "allocation": 0.5},
            {"name": "model-v2", "allocation": 0.5, "control": True},
        ],
        "business": {"valuePerConversion": 900.0},
    }
    return units, analyze_failure(result, raw_table=units, settings=SETTINGS)


def test_seed_example_is_analysed_and_says_there_is_no_significance() -> None:
    """The seed's point form gives the stated decision, untested failures and a warning."""
    analysis = analyze_failure(SEED, settings=SETTINGS)
    decision = analysis.decision
    assert (decision.winner, decision.loser, decision.status) == ("model-v2", "model-v3",
                                                                  "not_tested")  # fmt: skip
    assert any(n.code == "point_form_no_significance" for n in decision.notes)
    assert "no significance" in decision.summary
    kinds = {f.type: f for f in analysis.failure_types}
    assert set(kinds) == {"accuracy", "latency", "satisfaction"}
    assert all(f.evidence == "untested" for f in kinds.values())
    assert kinds["latency"].severity == "critical"  # +150% is over 4x the 10% threshold
    assert kinds["accuracy"].relative_loss == pytest.approx(0.14 / 0.92)
    labels = {c.label for c in analysis.chains}
    assert labels == {"latency → satisfaction", "accuracy → satisfaction"}
    assert analysis.chains[0].confidence == pytest.approx(0.25)  # two untested links of 0.5


def test_summary_form_decision_matches_scipy_and_statsmodels() -> None:
    """Welch t and the pooled z test match scipy/statsmodels; Holm decides significance."""
    analysis = analyze_failure(summary_result(), settings=SETTINGS)
    by_metric = {c.metric: c for c in analysis.decision.comparisons}
    welch = stats.ttest_ind_from_stats(8.9, 29.0, 10_050, 10.0, 30.0, 10_000, equal_var=False)
    assert by_metric["revenue"].p_value == pytest.approx(welch.pvalue, rel=1e-6)
    _, p_conv = proportions_ztest([1_100, 1_200], [10_050, 10_000])
    assert by_metric["conversion"].p_value == pytest.approx(p_conv, rel=1e-6)
    raw = [by_metric[m].p_value for m in ("conversion", "revenue", "latency_ms")]
    reject, adjusted, _, _ = multipletests(raw, alpha=0.05, method="holm")
    names = ("conversion", "revenue", "latency_ms")
    for name, p_adj, rejected in zip(names, adjusted, reject, strict=True):
        assert by_metric[name].p_value_adjusted == pytest.approx(p_adj, rel=1e-6)
        assert by_metric[name].significant == bool(rejected)
    expected = "significant" if reject[0] or reject[1] else "inconclusive"
    assert (analysis.decision.winner, analysis.decision.loser) == ("A", "B")
    assert analysis.decision.status == expected
    assert analysis.decision.deciding_metrics == ("conversion", "revenue")


def test_twin_flaw_is_found_by_segment_and_chain(twin: tuple[pa.Table, FailureAnalysis]) -> None:
    """The enterprise blind spot and latency → satisfaction → conversion lead the root causes."""
    _, analysis = twin
    assert (analysis.decision.winner, analysis.decision.loser) == ("model-v2", "model-v3")
    assert analysis.decision.status == "significant"
    top = analysis.root_causes[:5]
    segment = next(c for c in top if c.kind == "segment")
    assert segment.segment is not None and segment.segment.element == {"segment": "enterprise"}
    accuracy = next(f for f in segment.segment.findings if f.metric == "accuracy")
    assert accuracy.relative_change is not None and accuracy.relative_change < -0.4
    assert accuracy.outside_relative_change is not None
    assert abs(accuracy.outside_relative_change) < 0.05  # the other segments are fine
    chains = [c.chain.nodes for c in top if c.chain is not None]
    assert any(nodes[:3] == ("latency", "satisfaction", "conversion") for nodes in chains)
    latency = next(s for s in analysis.segments if s.metric == "latency_ms")
    assert latency.findings == ()  # slower everywhere: not a segment cause
    assert {f.type for f in analysis.failure_types} >= {"latency", "accuracy", "conversion"}


def test_impact_is_priced_with_an_interval_from_the_effect() -> None:
    """Money per day is -Δ revenue × traffic, its interval the Welch interval × traffic."""
    analysis = analyze_failure(summary_result(business={"trafficPerDay": 50_000}),
                               settings=SETTINGS)  # fmt: skip
    impact = analysis.impact
    va, vb = 30.0**2 / 10_000, 29.0**2 / 10_050
    dof = (va + vb) ** 2 / (va**2 / 9_999 + vb**2 / 10_049)
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert impact.per_day == pytest.approx(1.1 * 50_000)
    assert impact.per_day is not None
    assert impact.per_day_interval is not None
    assert impact.per_day_interval.lower == pytest.approx((1.1 - half) * 50_000, rel=1e-6)
    assert impact.per_day_interval.upper == pytest.approx((1.1 + half) * 50_000, rel=1e-6)
    assert impact.per_month == pytest.approx(30 * impact.per_day)
    assert impact.severity == "critical"  # 1.65 million a month is above 100,000
    assert [c.basis for c in impact.components] == ["revenue"]  # conversion not counted twice


def test_impact_prices_conversions_without_a_revenue_metric() -> None:
    """Without revenue, Δ conversion rate × value per conversion × traffic is the money."""
    result = summary_result(business={"trafficPerDay": 1_000, "valuePerConversion": 50})
    del result["metrics"]["revenue"]
    impact = analyze_failure(result, settings=SETTINGS).impact
    delta = 1_200 / 10_000 - 1_100 / 10_050
    assert impact.per_day == pytest.approx(delta * 50 * 1_000)
    assert impact.severity == "high"  # about 15,800 a month: between 10,000 and 100,000


def test_hypotheses_are_ranked_and_their_plans_run(twin: tuple[pa.Table, FailureAnalysis]) -> None:
    """Hypotheses sort by gain × confidence, answer root causes, and their specs run as is."""
    _, analysis = twin
    ideas = analysis.hypotheses
    assert len(ideas) >= 3
    assert [h.score for h in ideas] == sorted((h.score for h in ideas), reverse=True)
    cause_ids = {c.id for c in analysis.root_causes}
    assert all(h.root_cause in cause_ids for h in ideas)
    for idea in ideas:
        spec = parse_sandbox_spec(idea.validation.spec.model_dump(mode="json"))
        assert isinstance(spec, HeadToHeadSpec)
    fix = next(h for h in ideas if h.root_cause == "segment:segment=enterprise")
    challenger = fix.validation.spec.challenger
    baseline = fix.validation.spec.baseline
    assert isinstance(challenger, ModelProfile) and isinstance(baseline, ModelProfile)
    assert baseline.segment_overrides["enterprise"].accuracy == pytest.approx(0.4, abs=0.05)
    assert challenger.segment_overrides["enterprise"].accuracy == pytest.approx(0.85, abs=0.05)
    small = fix.validation.spec.model_copy(update={"customers": 300, "days": 3.0, "replicates": 2})
    ran = run_head_to_head(small, settings=load_settings({}))
    assert ran.spec.challenger.name == challenger.name


def test_segment_breakdown_finds_the_segment_that_lost() -> None:
    """Per-country rows: the loser converts 40% less in DE only; DE is the segment cause."""
    rows = []
    for country in ("DE", "FR", "US", "UK", "ES", "IT"):
        rate_b = 0.06 if country == "DE" else 0.10
        for device in ("ios", "android", "web"):
            rows.append({
                "segment": {"country": country, "device": device},
                "metric": "conversion",
                "variants": {"A": {"n": 20_000, "successes": 2_000},
                             "B": {"n": 20_000, "successes": int(20_000 * rate_b)}},
            })  # fmt: skip
    result = summary_result(segmentBreakdown=rows)
    analysis = analyze_failure(result, settings=SETTINGS)
    found = {f.label for s in analysis.segments for f in s.findings}
    assert found == {"country=DE"}
    assert analysis.input_form == "breakdown"


def _units(n: int, seed: int, *, early_loss: float, late_loss: float) -> pa.Table:
    """Units over 20 days; B converts less by early_loss before day 3, late_loss after."""
    rng = np.random.default_rng(seed)
    day = rng.uniform(0, 20, n)
    treated = rng.random(n) < 0.5
    loss = np.where(day < 3, early_loss, late_loss)
    converted = rng.random(n) < 0.2 * (1 - treated * loss)
    return pa.table({
        "variant": np.where(treated, "B", "A"),
        "country": rng.choice(["DE", "FR", "US"], n),
        "arrival_day": day,
        "converted": converted,
    })  # fmt: skip


def test_novelty_in_the_first_days_is_a_data_quality_cause() -> None:
    """A loss only among units arriving in the first 3 days is flagged as a fading novelty."""
    units = _units(200_000, 3, early_loss=0.3, late_loss=0.0)
    analysis = analyze_failure({"experimentId": "novel", "variants": [{"name": "A",
                               "control": True}]}, raw_table=units, settings=SETTINGS)  # fmt: skip
    novelty = [q for q in analysis.data_quality if q.code == "novelty"]
    assert len(novelty) == 1 and novelty[0].shape == "fading" and novelty[0].is_cause
    assert novelty[0].early_change == pytest.approx(-0.3, abs=0.05)
    assert any(c.id == "quality:novelty:converted" for c in analysis.root_causes)
    assert analysis.impact.traffic_source == "estimated"


def test_a_steady_loss_is_not_called_novelty() -> None:
    """The same loss early and late is no novelty."""
    units = _units(200_000, 4, early_loss=0.2, late_loss=0.2)
    analysis = analyze_failure({"experimentId": "steady"}, raw_table=units, settings=SETTINGS)
    assert not [q for q in analysis.data_quality if q.code == "novelty"]


def test_sample_ratio_mismatch_is_a_root_cause() -> None:
    """Units 10,000 vs 9,000 on a 50/50 plan: SRM is flagged and ranked as a cause."""
    result = summary_result()
    result["variants"][0]["units"] = 10_000
    result["variants"][1]["units"] = 9_000
    analysis = analyze_failure(result, settings=SETTINGS)
    assert analysis.decision.srm is not None and analysis.decision.srm.flagged
    cause = analysis.root_causes[0]
    assert cause.id == "quality:srm" and cause.share == 1.0
    assert any(h.root_cause == "quality:srm" for h in analysis.hypotheses)


def test_same_input_gives_the_same_bytes(twin: tuple[pa.Table, FailureAnalysis]) -> None:
    """The analysis is deterministic: analysing the same rows again gives identical JSON."""
    units, first = twin
    again = analyze_failure(
        {"experimentId": "twin-enterprise",
         "variants": [{"name": "model-v3", "allocation": 0.5},
                      {"name": "model-v2", "allocation": 0.5, "control": True}],
         "business": {"valuePerConversion": 900.0}},
        raw_table=units, settings=SETTINGS,
    )  # fmt: skip
    assert again.model_dump_json() == first.model_dump_json()
    assert FailureAnalysis.model_validate_json(first.model_dump_json()) == first


def test_summary_text_names_decision_causes_impact_and_hypotheses(
    twin: tuple[pa.Table, FailureAnalysis],
) -> None:
    """The readable summary carries every section a person looks for."""
    text = render(twin[1])
    for part in ("model-v2 beats model-v3", "failure types:", "top root causes",
                 "segment=enterprise", "business impact:", "top hypotheses"):  # fmt: skip
        assert part in text
