"""The NAB scorer against NAB's own published numbers (scorer_conformance) and its stated rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from bench.nab import (
    NO_DETECTION_THRESHOLD,
    PROFILES,
    normalized_score,
    optimize_threshold,
    probation_rows,
    row_values,
    scaled_sigmoid,
    score_file,
)
from bench.nab_corpus import NabFile, load_corpus
from twinloop.errors import InvalidInput

CONFORMANCE = Path("benchmarks/anomaly/scorer_conformance")


@pytest.fixture
def conformance(shared_dir: Path) -> tuple[dict[str, NabFile], list[dict], Path]:
    """The five conformance series with their windows, the expected cases and their folder."""
    root = shared_dir / "benchmarks" / "anomaly"
    cases = json.loads((root / CONFORMANCE.name / "expected.json").read_text())["cases"]
    keys = sorted({case["data_file"] for case in cases})
    files = {f.key: f for f in load_corpus(root, keys)}
    return files, cases, root / CONFORMANCE.name


def _scores(folder: Path, name: str) -> np.ndarray:
    return pacsv.read_csv(folder / name).column("anomaly_score").to_numpy()


def test_every_conformance_case_matches_nab(conformance) -> None:
    """All 30 published (detector, file, profile) raw scores and row counts are reproduced."""
    files, cases, folder = conformance
    assert len(cases) == 30
    for case in cases:
        f = files[case["data_file"]]
        result = score_file(
            _scores(folder, case["scores_file"]),
            f.windows,
            case["threshold"],
            PROFILES[case["profile"]],
        )
        expected = case["expected_rows"]
        assert result.raw == pytest.approx(case["expected_raw_score"], abs=1e-9), case
        assert (result.tp_rows, result.tn_rows, result.fp_rows, result.fn_rows) == (
            expected["TP"],
            expected["TN"],
            expected["FP"],
            expected["FN"],
        ), case


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


def test_threshold_search_equals_brute_force(conformance) -> None:
    """The sorted-events θ search gives the corpus raw of trying every candidate θ one by one."""
    files, _, folder = conformance
    corpus = [
        (_scores(folder, f"numenta__{key.replace('/', '__')}"), f.windows)
        for key, f in sorted(files.items())
    ]
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
