"""The strategy generator on the reference scenario: ranking, intervals, costs, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from statsmodels.stats.power import NormalIndPower

from tests.strategy_reference import reference
from twinloop.agents.business import best_thresholds
from twinloop.errors import NotFound
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.store import SqliteStore
from twinloop.strategy import PLAN_KIND, Plan, PlanSettings, build_plan, plan_analysis, render_plan
from twinloop.strategy.costs import cohens_h, rows_for_gain
from twinloop.strategy.evidence import ValidationSize
from twinloop.strategy.generator import POLICY_KEY

SIZE = ValidationSize(customers=2_000, days=14.0, replicates=4, top=3)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, SqliteStore]:
    """The reference analysis stored, then planned with its top hypotheses and the policy run."""
    env, _, v3, analysis = reference()
    store = SqliteStore(tmp_path_factory.mktemp("plan") / "store.sqlite3")
    store.put_model("analyses", analysis.experiment_id, analysis)
    policy = v3.model_copy(
        update={"name": "model-v3-policy", "segment_thresholds": best_thresholds(env, v3, seed=0)}
    )
    extra = {
        POLICY_KEY: HeadToHeadSpec(
            environment=env,
            baseline=v3,
            challenger=policy,
            kpis=["revenue"],
            customers=SIZE.customers,
            days=SIZE.days,
            replicates=SIZE.replicates,
        )
    }
    return plan_analysis(store, analysis.experiment_id, size=SIZE, extra=extra), store


def test_segment_fix_ranks_first_and_measured_actions_by_uplift(
    planned: tuple[Plan, SqliteStore],
) -> None:
    """The enterprise fix leads; measured threshold and latency actions follow their uplift."""
    plan = planned[0]
    first = plan.actions[0]
    assert first.root_cause == "segment:segment=enterprise" and first.agent == "ml_pipeline"
    assert first.uplift.source == "sandbox" and first.training_plan is not None
    assert first.training_plan.segments == ("enterprise",)
    measured = [
        a
        for a in plan.actions
        if a.agent in ("business", "performance") and a.uplift.source == "sandbox"
    ]
    assert {a.agent for a in measured} == {"business", "performance"}
    gains = [a.uplift.relative.estimate for a in measured]  # type: ignore[union-attr]
    assert gains == sorted(gains, reverse=True)
    assert [a.rank for a in plan.actions] == list(range(1, len(plan.actions) + 1))


def test_roi_interval_is_the_sandbox_interval_scaled(planned: tuple[Plan, SqliteStore]) -> None:
    """ROI bounds × cost ÷ the loser's money per month = the sandbox's relative interval."""
    plan = planned[0]
    assert plan.loser_money_per_month is not None
    for a in plan.actions:
        if a.uplift.source != "sandbox" or a.roi is None:
            continue
        ev = a.uplift.evidence
        assert ev is not None
        scale = plan.loser_money_per_month / a.cost.total_money
        rel_lower = ev.difference.lower / ev.baseline_mean
        rel_upper = ev.difference.upper / ev.baseline_mean
        assert a.roi.lower == pytest.approx(rel_lower * scale, rel=1e-9)
        assert a.roi.upper == pytest.approx(rel_upper * scale, rel=1e-9)
        assert a.roi.lower <= a.roi.estimate <= a.roi.upper


def test_costs_name_their_assumptions_and_measured_compute(
    planned: tuple[Plan, SqliteStore],
) -> None:
    """Measured sandbox seconds are in the compute; every price used is listed as an assumption."""
    for a in planned[0].actions:
        if a.uplift.source == "sandbox":
            assert a.cost.measured_cpu_seconds > 0
        assert any("TWINLOOP_CPU_HOUR_PRICE" in s for s in a.cost.assumptions)
        if a.cost.labelled_rows:
            assert any("TWINLOOP_LABELLED_ROW_PRICE" in s for s in a.cost.assumptions)


def test_plan_is_stored_deterministic_and_renders(planned: tuple[Plan, SqliteStore]) -> None:
    """The stored plan equals the returned one; rebuilding from the same evidence is identical."""
    plan, store = planned
    assert store.get_model(PLAN_KIND, plan.id, Plan) == plan
    evidence = {a.root_cause: a.uplift.evidence for a in plan.actions if a.uplift.evidence}
    _, _, _, analysis = reference()
    again = build_plan(analysis, evidence, plan.settings)  # type: ignore[arg-type]
    assert [a.id for a in again.actions] == [a.id for a in plan.actions]
    text = render_plan(plan)
    assert "1. Fix model-v3 on segment=enterprise" in text and "ROI:" in text


def test_labelled_rows_match_statsmodels() -> None:
    """Rows to detect accuracy 0.60 → 0.70 (α 0.05, power 0.8) equal NormalIndPower's answer."""
    h = cohens_h(0.6, 0.7)
    expected = NormalIndPower().solve_power(effect_size=h, alpha=0.05, power=0.8, ratio=1.0)
    assert rows_for_gain(0.6, 0.7, 0.05, 0.8) == int(-(-expected // 1))


def test_unknown_analysis_is_not_found(tmp_path: Path) -> None:
    """An unknown analysis id raises NotFound (HTTP 404) and stores nothing."""
    with SqliteStore(tmp_path / "s.sqlite3") as store:
        with pytest.raises(NotFound, match="nope"):
            plan_analysis(store, "nope")
        assert store.find(PLAN_KIND, "nope") is None


def test_no_significant_loss_gives_an_empty_plan_with_the_reason() -> None:
    """An inconclusive analysis plans nothing and says why, without an error."""
    _, _, _, analysis = reference()
    decision = analysis.decision.model_copy(update={"status": "inconclusive"})
    plan = build_plan(analysis.model_copy(update={"decision": decision}), {}, PlanSettings())
    assert plan.actions == () and plan.reason is not None and "not significant" in plan.reason
    assert "No action" in render_plan(plan)
