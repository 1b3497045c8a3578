"""Nested leave-one-category-out CV of whole selection procedures for the anomaly detector.

Run: ``nice -n 15 .venv/bin/python -m bench.anomaly_nested [--data DIR] [--cache DIR]``.

``bench.anomaly_cv`` picks the default as the best of 756 candidates by CV score; with 7 NAB
categories that choice overfits (its nested estimate is below its CV score). This bench scores
*procedures* — a candidate grid and a rule that picks one candidate from training series — by
a proper nested CV: for each held-out category, the rule sees only the other six (inner
scores are themselves leave-one-category-out over those six, θ by NAB's rule 8 on the
training series), its pick (the first of its ranking that passes the conformance check) is
scored on the held-out category at the θ chosen on the six, and the held-out raw scores of
the seven folds are summed and normalised. That figure estimates the score on series the
procedure has never seen; the procedure with the best one is adopted.

Procedures (pre-declared; grids are subsets of ``bench.anomaly_cv``'s):

* grid — ``full`` (756), ``coarse`` (context weight 0.01/0.02 × usual level none/q0.99 over
  1000 × cooldown 60/120, history 4000, neighbours 5, learning 1500: 8) or a single setting
  (``chosen``, today's default; ``previous``): a singleton's nested score is its CV score;
* rule — ``train`` (in-sample score on the six, today's nested rule), ``cv`` (inner CV sum),
  ``worst`` (the worst inner fold, raw per window), ``median`` (the median inner fold),
  ``worst_cv`` (``worst``, its ties broken by the inner CV sum).

Ties: every rule breaks ties in favour of today's default. Under ``worst`` that decides the
pick: a candidate without false positives on ``artificialNoAnomaly`` and without a negative
category has worst 0.0, and 194–667 of the 756 tie there in six of the seven folds, so the
rule returns the incumbent — whose nested score is then its own CV score, although it was
chosen (in an earlier round) on all seven categories. ``worst_cv`` is the same rule with a
tie-break that does not know the incumbent.

Exactness: a file's θ events with score 0 (most points, after the cooldown) are merged into
one event; θ = 0 events are tied anyway, so every θ and raw score is unchanged.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from bench.anomaly_cv import (
    PREVIOUS,
    Candidate,
    Conformance,
    FloatArray,
    candidate_of,
    candidate_streams,
    corpus_arguments,
    grid_runs,
)
from bench.nab import PROFILE_NAMES, PROFILES, NabProfile, _threshold_events, normalized_score
from bench.nab_corpus import NabFile, load_corpus
from bench.nab_folds import Events, best_threshold, category, raw_at
from twinloop.replication.anomaly.models import AnomalySettings

CHOSEN = candidate_of(AnomalySettings())


def coarse(c: Candidate) -> bool:
    """The coarse grid: only the knobs that moved the CV score by more than a point."""
    return (
        c.history == 4000
        and c.neighbours == 5
        and c.learning == 1500
        and c.surprise_floor == 7.0
        and (c.usual_quantile, c.usual_window) in ((None, 4000), (0.99, 1000))
    )


GRIDS: dict[str, Callable[[Candidate], bool]] = {
    "full": lambda c: True,
    "coarse": coarse,
    "chosen": lambda c: c == CHOSEN,
    "previous": lambda c: c == PREVIOUS,
}


def compressed(scores: FloatArray, f: NabFile, profile: NabProfile) -> Events:
    """The file's θ events with every score-0 event merged into one (exact, see above)."""
    s, d = _threshold_events(scores, f.windows, profile)
    zero = s <= 0.0
    if zero.any():
        s = np.r_[s[~zero], 0.0]
        d = np.r_[d[~zero], d[zero].sum()]
    return Events(s, d, len(f.windows))


class Folds:
    """A candidate's events per category, and the fold scores every rule needs (memoised)."""

    def __init__(self, events_by_cat: dict[str, list[Events]], profile: NabProfile) -> None:
        self.by_cat = events_by_cat
        self.profile = profile
        self._theta: dict[frozenset[str], float] = {}

    def events(self, cats: Sequence[str]) -> list[Events]:
        return [e for cat in cats for e in self.by_cat[cat]]

    def theta(self, train: Sequence[str]) -> float:
        key = frozenset(train)
        if key not in self._theta:
            self._theta[key] = best_threshold(self.events(sorted(key)), self.profile)
        return self._theta[key]

    def held_raw(self, train: Sequence[str], held: str) -> float:
        """Raw score of ``held`` at the θ rule 8 picks on ``train``."""
        theta = self.theta(train)
        return sum(raw_at(e, theta, self.profile) for e in self.by_cat[held])

    def inner(self, cats: Sequence[str]) -> dict[str, float]:
        """Leave-one-out over ``cats``: each one's raw score at θ from the others."""
        return {h: self.held_raw([c for c in cats if c != h], h) for h in cats}

    def windows(self, cat: str) -> int:
        return sum(e.n_windows for e in self.by_cat[cat])


def criterion(rule: str, folds: Folds, cats: Sequence[str]) -> float:
    """How good a candidate looks on the training categories ``cats`` (higher is better)."""
    p = folds.profile
    if rule == "train":
        theta = folds.theta(cats)
        return sum(raw_at(e, theta, p) for e in folds.events(cats))
    inner = folds.inner(cats)
    if rule == "cv":
        return sum(inner.values())
    # Per fold, raw per window (a fold without windows: its false-positive cost as is).
    per = [inner[c] / max(folds.windows(c), 1) for c in cats]
    return float(min(per)) if rule in ("worst", "worst_cv") else float(np.median(per))


def ranking(
    candidates: list[Candidate], folds: dict[Candidate, Folds], rule: str, train: Sequence[str]
) -> list[Candidate]:
    """``candidates`` best first by ``rule`` on ``train``; ``worst_cv`` breaks ties by the inner
    CV sum, then every rule breaks them toward today's default."""
    value = {c: criterion(rule, folds[c], train) for c in candidates}
    second = {
        c: criterion("cv", folds[c], train) if rule == "worst_cv" else 0.0 for c in candidates
    }
    return sorted(candidates, key=lambda c: (-value[c], -second[c], c != CHOSEN))


def pick(
    candidates: list[Candidate],
    folds: dict[Candidate, Folds],
    rule: str,
    train: Sequence[str],
    conformance: Conformance,
) -> Candidate:
    """The candidate ``rule`` ranks first on ``train`` among those that pass conformance."""
    if len(candidates) == 1:
        return candidates[0]
    return conformance.first(ranking(candidates, folds, rule, train))


def nested_raw(
    candidates: list[Candidate],
    folds: dict[Candidate, Folds],
    rule: str,
    cats: Sequence[str],
    conformance: Conformance,
) -> tuple[float, dict[str, Candidate]]:
    """Held-out raw summed over leave-one-out folds of ``cats``, the rule's pick per fold."""
    raw = 0.0
    picks: dict[str, Candidate] = {}
    for held in cats:
        train = [c for c in cats if c != held]
        picks[held] = pick(candidates, folds, rule, train, conformance)
        raw += folds[picks[held]].held_raw(train, held)
    return raw, picks


def meta_raw(
    candidates: list[Candidate],
    folds: dict[Candidate, Folds],
    rules: Sequence[str],
    cats: Sequence[str],
    conformance: Conformance,
) -> tuple[float, dict[str, str]]:
    """The rule itself chosen per fold by its nested score on the training categories."""
    raw = 0.0
    chosen: dict[str, str] = {}
    for held in cats:
        train = [c for c in cats if c != held]
        inner = {r: nested_raw(candidates, folds, r, train, conformance)[0] for r in rules}
        chosen[held] = max(rules, key=lambda r: inner[r])  # ties → the first rule listed
        best = pick(candidates, folds, chosen[held], train, conformance)
        raw += folds[best].held_raw(train, held)
    return raw, chosen


def all_folds(
    files: list[NabFile], runs: dict[tuple[int, int], list[FloatArray]]
) -> dict[str, dict[Candidate, Folds]]:
    """Per profile, every candidate's compressed θ events grouped by category."""
    out: dict[str, dict[Candidate, Folds]] = {name: {} for name in PROFILE_NAMES}
    for c, streams in candidate_streams(runs):
        for name in PROFILE_NAMES:
            by_cat: dict[str, list[Events]] = {}
            for f, s in zip(files, streams, strict=True):
                by_cat.setdefault(category(f.key), []).append(compressed(s, f, PROFILES[name]))
            out[name][c] = Folds(by_cat, PROFILES[name])
    return out


PROCEDURES = (
    ("full", "train"),
    ("full", "cv"),
    ("full", "worst"),
    ("full", "worst_cv"),
    ("full", "median"),
    ("coarse", "cv"),
    ("coarse", "worst"),
    ("coarse", "worst_cv"),
    ("coarse", "median"),
    ("chosen", "-"),
    ("previous", "-"),
)
RULES = ("train", "cv", "worst", "median", "worst_cv")


def in_sample(folds: Folds, cats: Sequence[str]) -> float:
    theta = folds.theta(cats)
    raw = sum(raw_at(e, theta, folds.profile) for e in folds.events(cats))
    return normalized_score(raw, sum(folds.windows(c) for c in cats), folds.profile)


def procedure_row(
    grid: str,
    rule: str,
    folds: dict[str, dict[Candidate, Folds]],
    conformance: Conformance,
) -> str:
    """A procedure's nested score per profile, and its pick on all categories with that
    pick's in-sample and CV scores. The candidate is always chosen on the standard profile
    (one setting ships); each profile then chooses its own θ on the training categories."""
    std = folds["standard"]
    candidates = [c for c in std if GRIDS[grid](c)]
    cats = sorted(next(iter(std.values())).by_cat)
    _, picks = nested_raw(candidates, std, rule, cats, conformance)
    final = pick(candidates, std, rule, cats, conformance)
    nested, fitted, cv = [], [], []
    for name in PROFILE_NAMES:
        f = folds[name]
        n_windows = sum(f[final].windows(c) for c in cats)
        raw = sum(f[picks[h]].held_raw([c for c in cats if c != h], h) for h in cats)
        nested.append(normalized_score(raw, n_windows, PROFILES[name]))
        fitted.append(in_sample(f[final], cats))
        cv.append(normalized_score(sum(f[final].inner(cats).values()), n_windows, PROFILES[name]))
    return (
        f"| {grid} ({len(candidates)}) | {rule} | "
        + " / ".join(f"{v:.1f}" for v in nested)
        + f" | {sum(p != CHOSEN for p in picks.values())}/7 | "
        + f"{'the default' if final == CHOSEN else final.label()} | "
        + " / ".join(f"{v:.1f}" for v in fitted)
        + " | "
        + " / ".join(f"{v:.1f}" for v in cv)
        + " |"
    )


def main(argv: list[str] | None = None) -> int:
    args = corpus_arguments("bench.anomaly_nested", __doc__, argv)
    start = time.perf_counter()
    files = load_corpus(args.data)
    runs = grid_runs(files, args.cache)
    print(f"evidence: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    conformance = Conformance(files, runs)
    folds = all_folds(files, runs)
    print(f"candidates: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    lines = [
        "standard / low FP / low FN; candidate chosen on the standard profile, θ per profile",
        "",
        "| grid (candidates) | rule | nested CV | fold picks ≠ default | pick on all "
        "categories | its in-sample | its CV |",
        "|---|---|---|---|---|---|---|",
    ]
    for grid, rule in PROCEDURES:
        if any(GRIDS[grid](c) for c in folds["standard"]):
            lines.append(procedure_row(grid, rule, folds, conformance))
            print(lines[-1], f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    std = folds["standard"]
    cats = sorted(next(iter(std.values())).by_cat)
    raw, rules = meta_raw(list(std), std, RULES, cats, conformance)
    n_windows = sum(next(iter(std.values())).windows(c) for c in cats)
    lines.append(
        "rule chosen per fold by its nested score on the other six (full grid, standard): "
        f"{normalized_score(raw, n_windows, PROFILES['standard']):.1f}; "
        + ", ".join(f"{c} {r}" for c, r in rules.items())
    )
    lines.append(f"\n{time.perf_counter() - start:.0f} s")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
