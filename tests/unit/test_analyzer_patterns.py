"""Failure patterns across tests: signatures in the Store, similar analyses found and counted,
recurring patterns named, the Pattern Detection Rate, and re-analysis keeping history."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from twinloop.analysis.analyzer import FailureAnalysis, analyze_failure
from twinloop.analysis.patterns import Pattern, similarity
from twinloop.analysis.settings import AnalyzerSettings
from twinloop.store import SqliteStore, Store

SETTINGS = AnalyzerSettings()
SEED: dict[str, Any] = {
    "experimentId": "exp-123",
    "winner": "model-v2",
    "loser": "model-v3",
    "metrics": {
        "accuracy": {"winner": 0.92, "loser": 0.78, "percentChange": -15.2},
        "latency": {"winner": 100, "loser": 250, "percentChange": 150},
        "satisfaction": {"winner": 0.85, "loser": 0.72, "percentChange": -15.3},
    },
}
COST: dict[str, Any] = {
    "experimentId": "exp-cost",
    "winner": "cheap",
    "loser": "pricey",
    "metrics": {"cost_per_request": {"winner": 0.01, "loser": 0.03}},
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "patterns.sqlite3")


def _similar_to_seed(experiment_id: str) -> dict[str, Any]:
    data = copy.deepcopy(SEED)
    data["experimentId"] = experiment_id
    data["metrics"]["latency"] = {"winner": 90, "loser": 240}
    data["metrics"]["accuracy"] = {"winner": 0.91, "loser": 0.80}
    return data


def test_a_second_similar_analysis_matches_the_first(store: Store) -> None:
    """The second slow, less accurate model is matched to the first and its patterns recur."""
    first = analyze_failure(SEED, store=store, settings=SETTINGS)
    assert first.patterns.similar_count == 0 and first.patterns.pattern_detection_rate == 0.0
    second = analyze_failure(_similar_to_seed("exp-124"), store=store, settings=SETTINGS)
    report = second.patterns
    assert report.similar_count == 1
    assert report.similar[0].experiment_id == "exp-123"
    assert report.similar[0].similarity >= SETTINGS.similarity_threshold
    latency = next(p for p in report.patterns if p.code == "latency_chain")
    assert latency.recurring and latency.occurrences == 2
    assert latency.other_experiments == ("exp-123",)
    assert report.pattern_detection_rate == pytest.approx(0.5)  # 1 of 2 analyses recognised
    stored = store.get_model("patterns", "latency_chain", Pattern)
    assert stored.experiments == ("exp-123", "exp-124") and stored.count == 2


def test_a_different_failure_does_not_match(store: Store) -> None:
    """A cost failure is not similar to a slow, inaccurate model; only the shared habit of
    reporting point values without significance recurs."""
    analyze_failure(SEED, store=store, settings=SETTINGS)
    other = analyze_failure(COST, store=store, settings=SETTINGS)
    assert other.patterns.similar_count == 0
    assert [p.code for p in other.patterns.patterns][:1] == ["cost_blowup"]
    assert [p.code for p in other.patterns.patterns if p.recurring] == ["untested_loss"]


def test_reanalysing_replaces_the_current_and_keeps_history(store: Store) -> None:
    """Same experimentId twice: the store holds the new analysis with the old in history, and
    the experiment is counted once in its patterns."""
    analyze_failure(SEED, store=store, settings=SETTINGS)
    changed = _similar_to_seed("exp-123")
    second = analyze_failure(changed, store=store, settings=SETTINGS)
    assert second.patterns.similar_count == 0  # it is not similar to itself
    current = store.get_model("analyses", "exp-123", FailureAnalysis)
    assert current == second
    history = store.history("analyses", "exp-123")
    assert [h.version for h in history] == [1, 2]
    old = history[0].to_model(FailureAnalysis)
    assert old.decision.comparisons[1].treatment.mean == 250  # latency of the first analysis
    assert store.get_model("patterns", "latency_chain", Pattern).experiments == ("exp-123",)


def test_reanalysis_moves_the_experiment_out_of_patterns_it_no_longer_shows(store: Store) -> None:
    """When a re-analysis loses a pattern, the pattern document forgets the experiment."""
    analyze_failure(SEED, store=store, settings=SETTINGS)
    cured = copy.deepcopy(SEED)
    cured["metrics"]["latency"] = {"winner": 100, "loser": 100}
    analyze_failure(cured, store=store, settings=SETTINGS)
    assert store.get_model("patterns", "latency_chain", Pattern).experiments == ()


def test_without_a_store_patterns_say_so() -> None:
    """No store: the signature is computed, nothing is compared, the rate is unknown."""
    analysis = analyze_failure(SEED, settings=SETTINGS)
    assert analysis.patterns.signature["failure:latency"] == 1.0
    assert analysis.patterns.pattern_detection_rate is None
    assert "no store" in analysis.patterns.notes[0]


def test_similarity_is_a_weighted_jaccard_index() -> None:
    """Σ min / Σ max over the union of tokens."""
    a = {"failure:latency": 1.0, "chain:latency>satisfaction": 1.0, "segment:x=1": 0.5}
    b = {"failure:latency": 1.0, "segment:x=1": 0.5, "quality:srm": 0.5}
    assert similarity(a, b) == pytest.approx(1.5 / 3.0)
    assert similarity(a, a) == 1.0 and similarity(a, {}) == 0.0
