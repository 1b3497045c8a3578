"""The improvement state machine: stages once each, resumable, one run per experiment, cancel."""

from __future__ import annotations

import threading
from pathlib import Path

import loop_stages
import pytest
from pydantic import ValidationError

from twinloop.analysis.analyzer import analyze_failure
from twinloop.config import load_settings
from twinloop.contract import invalid_input
from twinloop.errors import InvalidInput
from twinloop.loop import (
    IMPROVEMENTS,
    STAGE_OUTPUTS,
    ImprovementSpec,
    StageContext,
    StageResult,
    StageUnavailable,
    cancel_improvement,
    run_improvement,
    start_improvement,
)
from twinloop.loop.stages import default_stages
from twinloop.loop.triggers import auto_trigger
from twinloop.store import SqliteStore, Store

SEED = {
    "experimentId": "exp-123",
    "winner": "model-v2",
    "loser": "model-v3",
    "metrics": {
        "accuracy": {"winner": 0.92, "loser": 0.78, "percentChange": -15.2},
        "latency": {"winner": 100, "loser": 250, "percentChange": 150},
    },
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = SqliteStore(tmp_path / "loop.sqlite3")
    analyze_failure(SEED, store=store)
    return store


def start(store: Store, family: str = "lead-scoring") -> str:
    spec = ImprovementSpec(experiment_id="exp-123", family=family, seed=7)
    return start_improvement(store, spec)[0].id


def test_a_run_goes_through_every_stage_to_promotion(store: Store) -> None:
    """Five stages, one output each, timings and evidence recorded, champion moved once."""
    ident = start(store)
    done = run_improvement(store, ident, loop_stages.STAGES)
    assert (done.stage, done.status) == ("promoted", "done")
    assert [r.stage for r in done.records] == [
        "analyzed", "planned", "candidates", "championship", "canary"
    ]  # fmt: skip
    assert all(r.status == "done" and r.duration_seconds is not None for r in done.records)
    assert len(store.query(STAGE_OUTPUTS)) == 5
    analyzed = store.get(STAGE_OUTPUTS, f"{ident}.analyzed").doc
    assert analyzed["evidence"][0] == {
        "kind": "analyses",
        "id": "exp-123",
        "note": "the failure analysis",
    }
    assert len(store.history(loop_stages.ALIASES, "lead-scoring.champion")) == 1


def test_a_finished_improvement_is_not_run_again(store: Store) -> None:
    """Running a decided improvement again writes nothing."""
    ident = start(store)
    first = run_improvement(store, ident, loop_stages.STAGES)
    again = run_improvement(store, ident, loop_stages.STAGES)
    assert again == first
    assert store.get(IMPROVEMENTS, ident).version == store.get(IMPROVEMENTS, ident).version


SUMMARY = {
    "experimentId": "exp-summary",
    "variants": [{"name": "A", "control": True}, {"name": "B"}],
    "metrics": {
        "conversion": {"variants": {"A": {"n": 10_000, "successes": 1_200},
                                    "B": {"n": 10_050, "successes": 1_100}}},
        "latency_ms": {"variants": {"A": {"n": 10_000, "mean": 100.0, "std": 30.0},
                                    "B": {"n": 10_050, "mean": 131.0, "std": 35.0}}},
    },
}  # fmt: skip


def test_this_build_plans_then_stalls_on_the_missing_piece(store: Store) -> None:
    """Default stages: analysis, the strategy's plan, then candidates reports the gap (here:
    the experiment's family is not in the registry, so no agent can start)."""
    analyze_failure(SUMMARY, store=store)
    ident = start_improvement(store, ImprovementSpec(experiment_id="exp-summary"))[0].id
    stalled = run_improvement(store, ident, default_stages())
    assert (stalled.stage, stalled.status) == ("planned", "stalled")
    planned = store.get(STAGE_OUTPUTS, f"{ident}.planned").doc
    assert planned["evidence"][0]["kind"] == "plans" and store.find("plans", "exp-summary")
    assert planned["outcome"]["chosen"] in {"ml_pipeline", "performance", "business"}
    record = stalled.record("candidates")
    assert record is not None and record.status == "unavailable"
    assert "cannot start" in (record.reason or "") and "not found" in (record.reason or "")


def test_a_point_form_loss_is_abandoned_with_the_plans_reason(store: Store) -> None:
    """Point values prove nothing: the plan is empty and the improvement says why."""
    ended = run_improvement(store, start(store), default_stages())
    assert (ended.stage, ended.status) == ("abandoned", "done")
    assert "not significant (decision: not_tested)" in (ended.reason or "")


def test_a_stalled_run_resumes_once_the_piece_is_wired(store: Store) -> None:
    """Stalled at candidates, then wired: earlier stages are not re-run, the run finishes."""
    ident = start(store)
    partial = {k: v for k, v in loop_stages.STAGES.items() if k != "candidates"}
    assert run_improvement(store, ident, partial).stage == "planned"
    planned_before = store.get(STAGE_OUTPUTS, f"{ident}.planned")
    done = run_improvement(store, ident, loop_stages.STAGES)
    assert done.stage == "promoted"
    assert store.get(STAGE_OUTPUTS, f"{ident}.planned") == planned_before
    assert done.record("candidates").attempts == 2  # type: ignore[union-attr]


def test_same_seed_same_decision_and_documents(tmp_path: Path) -> None:
    """Two stores, the same spec: the same outputs (but for timestamps) and version ids."""
    outcomes = []
    for name in ("a", "b"):
        with SqliteStore(tmp_path / f"{name}.sqlite3") as store:
            analyze_failure(SEED, store=store)
            ident = start(store)
            run_improvement(store, ident, loop_stages.STAGES)
            docs = [s.doc for s in store.query(STAGE_OUTPUTS, order="oldest")]
            outcomes.append([{k: v for k, v in d.items() if k != "finished_at"} for d in docs])
    assert outcomes[0] == outcomes[1]


def test_concurrent_triggers_create_one_improvement(store: Store) -> None:
    """Eight threads start the same experiment: one creates it, all get the same id."""
    results: list[tuple[str, bool]] = []
    spec = ImprovementSpec(experiment_id="exp-123")

    def trigger() -> None:
        improvement, created = start_improvement(store, spec)
        results.append((improvement.id, created))

    threads = [threading.Thread(target=trigger) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {ident for ident, _ in results} == {"imp-exp-123"}
    assert sum(created for _, created in results) == 1
    assert len(store.query(IMPROVEMENTS)) == 1


def test_cancel_mid_stage_moves_no_alias(store: Store) -> None:
    """Cancelled while candidates run: status cancelled, no output, championship never runs."""
    ident = start(store)

    def candidates_then_cancel(context: StageContext) -> StageResult:
        result = loop_stages.candidates(context)
        cancel_improvement(store, ident)
        return result

    stages = {**loop_stages.STAGES, "candidates": candidates_then_cancel}
    ended = run_improvement(store, ident, stages)
    assert (ended.stage, ended.status) == ("cancelled", "cancelled")
    assert store.find(STAGE_OUTPUTS, f"{ident}.candidates") is None
    assert store.query(loop_stages.ALIASES) == []
    assert run_improvement(store, ident, loop_stages.STAGES).stage == "cancelled"


def test_failed_gates_never_promote(store: Store) -> None:
    """A planted gate failure in the championship: abandoned, no alias moved."""
    ident = start(store, family="gates-fail")
    ended = run_improvement(store, ident, loop_stages.STAGES)
    assert (ended.stage, ended.status) == ("abandoned", "done")
    assert "gates failed" in (ended.reason or "")
    assert store.query(loop_stages.ALIASES) == []


def test_unavailable_is_a_status_not_a_crash(store: Store) -> None:
    """A stage raising StageUnavailable leaves the improvement stalled with its reason."""

    def nothing(context: StageContext) -> StageResult:
        raise StageUnavailable("canary", "no family is served")

    ident = start(store)
    stalled = run_improvement(store, ident, {**loop_stages.STAGES, "canary": nothing})
    assert (stalled.stage, stalled.status, stalled.reason) == (
        "championship", "stalled", "no family is served"
    )  # fmt: skip


def test_bad_spec_names_the_field_and_stores_nothing(store: Store) -> None:
    """A bad seed or an unknown experiment: InvalidInput naming the field, nothing written."""
    with pytest.raises(ValidationError) as caught:
        ImprovementSpec.model_validate({"experiment_id": "exp-123", "seed": -1})
    assert invalid_input(caught.value).field == "seed"
    with pytest.raises(InvalidInput, match="experiment_id: no stored analysis"):
        start_improvement(store, ImprovementSpec(experiment_id="nobody"))
    assert store.query(IMPROVEMENTS) == []


def test_auto_trigger_says_why_not(store: Store) -> None:
    """Off → none; a loss below FAILURE_THRESHOLD → none; above → started, once."""
    accuracy_only = {**SEED, "metrics": {"accuracy": SEED["metrics"]["accuracy"]}}  # type: ignore[index]
    analysis = analyze_failure(accuracy_only)
    assert analysis.impact.key_relative_loss == pytest.approx(0.152, abs=1e-3)
    off = auto_trigger(store, analysis, load_settings({}))
    assert (off.started, off.reason) == (False, "AUTO_IMPROVE is off")
    high = load_settings({"AUTO_IMPROVE": "true", "FAILURE_THRESHOLD": "0.5"})
    below = auto_trigger(store, analysis, high)
    assert not below.started and "does not exceed FAILURE_THRESHOLD 50.0%" in below.reason
    assert store.query(IMPROVEMENTS) == []
    on = load_settings({"AUTO_IMPROVE": "true"})
    first, second = auto_trigger(store, analysis, on), auto_trigger(store, analysis, on)
    assert first.started and first.created and second.started and not second.created
    assert first.improvement_id == second.improvement_id == "imp-exp-123"


def test_until_hands_off_to_the_job_which_resumes(store: Store) -> None:
    """The HTTP edge drives up to planned (waiting); the job's driver finishes the run."""
    ident = start(store)
    waiting = run_improvement(store, ident, loop_stages.STAGES, until="planned")
    assert (waiting.stage, waiting.status) == ("planned", "waiting")
    assert "candidates runs in the improvement job" in (waiting.reason or "")
    assert run_improvement(store, ident, loop_stages.STAGES).stage == "promoted"
