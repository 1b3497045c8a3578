"""The NAB scorer against its stated rules (NAB's published numbers: bench/nab_conformance.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.anomaly_cv import PREVIOUS
from bench.anomaly_nested import CHOSEN, Folds, compressed, criterion, nested_raw, ranking
from bench.nab import (
    NO_DETECTION_THRESHOLD,
    PROFILES,
    _threshold_events,
    normalized_score,
    optimize_threshold,
    probation_rows,
    row_values,
    scaled_sigmoid,
    score_file,
)
from bench.nab_corpus import NabFile, load_corpus
from bench.nab_folds import Events, best_threshold, raw_at
from twinloop.errors import InvalidInput

DETECTOR_SEEDS = 3  # generated detectors per series: noisy scores with a bump near each window


@pytest.fixture
def corpus(bench_data: Path) -> list[tuple[np.ndarray, tuple[tuple[int, int], ...]]]:
    """(scores, windows) for the generated NAB-layout series, three made-up detectors each.

    NAB's own published conformance numbers are checked by ``bench/nab_conformance.py`` on the
    NAB corpus (AGPL, kept out of the repository); here the scorer meets its written rules.
    """
    files = load_corpus(bench_data / "anomaly")
    out = []
    for k, f in enumerate(files):
        n = len(f.series)
        for seed in range(DETECTOR_SEEDS):
            rng = np.random.default_rng([k, seed])
            scores = rng.beta(1, 6, n)
            for start, end in f.windows:
                scores[rng.integers(start - (end - start), end + 1)] = rng.uniform(0.7, 1.0)
            out.append((scores.round(6), f.windows))
    return out


def _rows(scores: np.ndarray, windows, theta: float) -> tuple[int, int, int, int]:
    """TP, TN, FP, FN rows counted plainly: rows after the probation, detected iff ≥ θ."""
    counted = np.arange(scores.size) >= probation_rows(scores.size)
    inside = np.zeros(scores.size, dtype=bool)
    for start, end in windows:
        inside[start : end + 1] = True
    det = (scores >= theta) & counted
    return (
        int((det & inside).sum()),
        int((~det & ~inside & counted).sum()),
        int((det & ~inside).sum()),
        int((~det & inside & counted).sum()),
    )


def test_every_case_matches_the_plain_rules(corpus) -> None:
    """Raw score and row counts of score_file equal NAB's rules written out, at several θ."""
    cases = 0
    for scores, windows in corpus:
        for profile in PROFILES.values():
            values, window_of = row_values(scores.size, windows, profile)
            for theta in (0.3, 0.5, 0.69, 0.9):
                got = score_file(scores, windows, theta, profile)
                expected = _raw_at(theta, scores, values, window_of, len(windows), profile.a_fn)
                assert got.raw == pytest.approx(expected, abs=1e-9)
                assert (got.tp_rows, got.tn_rows, got.fp_rows, got.fn_rows) == _rows(
                    scores, windows, theta
                )
                cases += 1
    assert cases == 3 * DETECTOR_SEEDS * 3 * 4


def _raw_at(
    theta: float,
    scores: np.ndarray,
    values: np.ndarray,
    window_of: np.ndarray,
    n_windows: int,
    a_fn: float,
) -> float:
    """Rule 5 written out plainly: earliest detection per window, every detection outside."""
    counted = np.arange(scores.size) >= probation_rows(scores.size)
    detected = (scores >= theta) & counted
    raw = float(values[detected & (window_of < 0)].sum())
    for k in range(n_windows):
        rows = np.flatnonzero(detected & (window_of == k))
        raw += float(values[rows[0]]) if rows.size else -a_fn
    return raw


def test_threshold_search_equals_brute_force(corpus) -> None:
    """The sorted-events θ search gives the corpus raw of trying every candidate θ one by one."""
    candidates = sorted({float(v) for s, _ in corpus for v in s} | {NO_DETECTION_THRESHOLD})
    for profile in PROFILES.values():
        best = optimize_threshold(corpus, profile)
        tables = [(s, *row_values(s.size, w, profile), len(w)) for s, w in corpus]
        raws = {
            theta: sum(_raw_at(theta, *t, profile.a_fn) for t in tables)
            for theta in candidates[-300:]  # the optimum of these files lies high
        }
        top = max(raws.values())
        assert best.threshold >= candidates[-300]
        assert best.raw == pytest.approx(top, abs=1e-9)
        assert best.threshold == max(t for t, r in raws.items() if r >= top - 1e-9)


def test_sigmoid_and_window_values_follow_the_readme() -> None:
    """σ(−1), σ(−0.5), σ(0), σ(1) and the worth of a window's first, middle and last rows."""
    assert scaled_sigmoid(-1.0) == pytest.approx(0.9866143, abs=1e-7)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.8482836, abs=1e-7)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.9866143, abs=1e-7)
    assert scaled_sigmoid(3.5) == -1.0
    values, window_of = row_values(2000, [(1000, 1099)], PROFILES["standard"])
    assert values[1000] == pytest.approx(1.0)
    assert values[1050] == pytest.approx(0.8598, abs=1e-4)  # y = -0.5
    assert values[1099] == pytest.approx(0.0253, abs=1e-4)
    assert values[900] == pytest.approx(-0.11)  # before any window: the full A_FP
    assert values[1100] > -0.01 and values[1099 + 3 * 99 + 1] == pytest.approx(-0.11)
    assert window_of[1050] == 0 and window_of[999] == -1
    assert probation_rows(2000) == 300 and probation_rows(10_000) == 750


def test_normalisation_puts_null_at_zero_and_perfect_at_hundred() -> None:
    """A detector that says nothing scores 0; one that hits every window first scores 100."""
    n, windows = 3000, [(1000, 1199), (2000, 2199)]
    null = np.zeros(n)
    perfect = np.zeros(n)
    perfect[[1000, 2000]] = 1.0
    for profile in PROFILES.values():
        best_null = optimize_threshold([(null, windows)], profile)
        best_perfect = optimize_threshold([(perfect, windows)], profile)
        assert best_null.normalized == pytest.approx(0.0)
        assert best_perfect.normalized == pytest.approx(100.0)
        assert normalized_score(-profile.a_fn * 2, 2, profile) == 0.0


def test_overlapping_windows_are_refused() -> None:
    """Windows must be sorted, disjoint and inside the file; the offending one is named."""
    with pytest.raises(InvalidInput, match=r"windows\[1\]"):
        score_file(np.zeros(100), [(10, 20), (15, 30)], 0.5, PROFILES["standard"])
    with pytest.raises(InvalidInput, match=r"windows\[0\]"):
        score_file(np.zeros(100), [(90, 120)], 0.5, PROFILES["standard"])


def test_merged_zero_events_keep_every_threshold_and_raw(corpus) -> None:
    """bench.anomaly_nested merges a file's score-0 θ events into one: θ and raw unchanged."""
    for profile in PROFILES.values():
        plain, merged = [], []
        for scores, windows in corpus:
            sparse = np.where(scores >= 0.5, scores, 0.0)  # a cooldown leaves most points at 0
            plain.append(Events(*_threshold_events(sparse, windows, profile), len(windows)))
            f = NabFile(key="c/f.csv", series=None, windows=windows)  # type: ignore[arg-type]
            merged.append(compressed(sparse, f, profile))
        assert sum(e.scores.size for e in merged) < sum(e.scores.size for e in plain) / 10
        theta = best_threshold(plain, profile)
        assert best_threshold(merged, profile) == theta
        for t in (theta, 0.0, 0.75):
            for p, m in zip(plain, merged, strict=True):
                assert raw_at(m, t, profile) == pytest.approx(raw_at(p, t, profile), abs=1e-9)


def _folds(raw_per_category: dict[str, float]) -> Folds:
    """One one-window file per category, detected at score 0.9 with the given raw score."""
    profile = PROFILES["standard"]
    return Folds(
        {
            cat: [Events(np.array([0.9]), np.array([raw + profile.a_fn]), 1)]
            for cat, raw in raw_per_category.items()
        },
        profile,
    )


def test_worst_category_rule_prefers_the_setting_that_works_everywhere() -> None:
    """A mean favours a setting lucky on two categories; the worst-category rule does not."""
    steady = _folds({"a": 0.2, "b": 0.2, "c": 0.2})
    lucky = _folds({"a": 1.0, "b": 1.0, "c": -1.0})
    cats = ["a", "b", "c"]
    assert criterion("cv", lucky, cats) > criterion("cv", steady, cats)
    assert criterion("worst", steady, cats) > criterion("worst", lucky, cats)
    # A single candidate: nested CV is its plain leave-one-category-out CV.
    raw, picks = nested_raw([CHOSEN], {CHOSEN: steady}, "worst", cats, None)  # type: ignore[arg-type]
    assert raw == pytest.approx(0.6)
    assert set(picks.values()) == {CHOSEN}


def test_worst_category_ties_go_to_the_default_unless_broken_by_inner_cv() -> None:
    """Two settings tie at worst category 0.0; ``worst`` returns the default, ``worst_cv`` the
    setting with the better inner CV (the tie-break that does not know the default)."""
    default = _folds({"none": 0.0, "b": 0.1, "c": 0.1})
    better = _folds({"none": 0.0, "b": 0.5, "c": 0.5})
    folds = {CHOSEN: default, PREVIOUS: better}
    cats = ["none", "b", "c"]
    assert criterion("worst", default, cats) == criterion("worst", better, cats) == 0.0
    assert criterion("cv", better, cats) > criterion("cv", default, cats)
    assert ranking([PREVIOUS, CHOSEN], folds, "worst", cats)[0] == CHOSEN
    assert ranking([CHOSEN, PREVIOUS], folds, "worst_cv", cats)[0] == PREVIOUS
