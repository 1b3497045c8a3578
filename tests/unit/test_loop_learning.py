"""Cross-model learning: the Beta posterior per (pattern, action), the ranking, the warm start."""

from __future__ import annotations

from pathlib import Path

import loop_stages
import pytest
from scipy import stats

from twinloop.analysis.analyzer import analyze_failure
from twinloop.loop import STAGE_OUTPUTS, ImprovementSpec, run_improvement, start_improvement
from twinloop.loop.learning import (
    LEARNING,
    ActionRecord,
    Outcome,
    rank_actions,
    record_id,
    record_outcome,
    warm_start,
)
from twinloop.store import SqliteStore, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "learning.sqlite3")


def outcome(ident: str, success: bool, uplift: float, depth: int = 4) -> Outcome:
    return Outcome(
        improvement_id=ident,
        patterns=("segment-blind",),
        action="retrain",
        success=success,
        uplift=uplift,
        config={"depth": depth},
    )


def test_the_posterior_is_beta_one_one_plus_the_counts(store: Store) -> None:
    """2 successes, 1 failure: Beta(3, 2); mean and interval as scipy's; uplift mean exact."""
    for ident, success, uplift in (("i1", True, 0.04), ("i2", False, -0.01), ("i3", True, 0.02)):
        record_outcome(store, outcome(ident, success, uplift))
    record = store.get_model(LEARNING, record_id("segment-blind", "retrain"), ActionRecord)
    assert (record.alpha, record.beta) == (3.0, 2.0)
    assert record.success_mean == pytest.approx(stats.beta.mean(3, 2))
    assert record.success_interval() == pytest.approx(stats.beta.interval(0.95, 3, 2))
    assert record.uplift_mean == pytest.approx(0.05 / 3)


def test_an_improvement_is_counted_once(store: Store) -> None:
    """A driver that re-runs its last step reports the same improvement twice: one count."""
    record_outcome(store, outcome("i1", True, 0.04))
    record_outcome(store, outcome("i1", True, 0.04))
    record = store.get_model(LEARNING, record_id("segment-blind", "retrain"), ActionRecord)
    assert (record.successes, record.failures, record.uplift_n) == (1, 0, 1)


def test_past_successes_lift_an_action_above_a_higher_estimate(store: Store) -> None:
    """Untried: threshold (ROI 1.3) first. After two retrain wins: 1.0×3/4 > 1.3×1/2."""
    estimated = {"retrain": 1.0, "threshold": 1.3}
    assert rank_actions(store, ["segment-blind"], estimated)[0][0] == "threshold"
    record_outcome(store, outcome("i1", True, 0.03, depth=4))
    record_outcome(store, outcome("i2", True, 0.05, depth=6))
    ranked = rank_actions(store, ["segment-blind"], estimated)
    assert ranked == [("retrain", pytest.approx(0.75)), ("threshold", pytest.approx(0.65))]
    assert warm_start(store, ["segment-blind"], "retrain") == [{"depth": 6}]
    assert rank_actions(store, ["other-pattern"], estimated)[0][0] == "threshold"


def test_a_third_family_starts_from_the_past_winner(store: Store) -> None:
    """Two improvements in one family, then a third family with the same failure: the loop
    ranks the action that worked first and its search starts at the past winner's config."""
    decided = []
    for experiment, family in (("e1", "lead"), ("e2", "lead"), ("e3", "churn")):
        analyze_failure({**loop_stages_seed(), "experimentId": experiment}, store=store)
        spec = ImprovementSpec(experiment_id=experiment, family=family)
        decided.append(run_improvement(store, start_improvement(store, spec)[0].id, STAGES))
    assert [d.stage for d in decided] == ["promoted"] * 3
    first = store.get(STAGE_OUTPUTS, "imp-e1.championship").doc["outcome"]["winner_config"]
    third = store.get(STAGE_OUTPUTS, "imp-e3.candidates").doc["outcome"]["first_config"]
    assert third == first
    planned = store.get(STAGE_OUTPUTS, "imp-e3.planned").doc["outcome"]
    assert planned["chosen"] == "retrain"
    assert planned["actions"][0]["expected_roi"] == pytest.approx(0.75)  # 1.0 × 3/4


STAGES = loop_stages.STAGES


def loop_stages_seed() -> dict[str, object]:
    return {
        "winner": "model-v2",
        "loser": "model-v3",
        "metrics": {"accuracy": {"winner": 0.92, "loser": 0.78}},
    }
