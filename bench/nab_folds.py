"""Leave-one-category-out scoring of score streams on a NAB corpus (θ by NAB's rule 8 per fold).

Each file's score stream becomes θ events once (``bench.nab._threshold_events``: lowering θ to
``scores[i]`` changes the file's raw score by ``deltas[i]``); a fold's θ and any file's raw score
at a θ are then sums over events, so one candidate's 7 folds cost a few sorts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.nab import NabProfile, _threshold_events, normalized_score
from bench.nab_corpus import NabFile

FloatArray = npt.NDArray[np.float64]


def category(key: str) -> str:
    return key.split("/", 1)[0]


@dataclass(frozen=True)
class Events:
    """A file's θ events (lowering θ to ``scores[i]`` changes its raw score by ``deltas[i]``)."""

    scores: FloatArray
    deltas: FloatArray
    n_windows: int


def best_threshold(events: list[Events], profile: NabProfile) -> float:
    """NAB rule 8 over the files' events (as ``optimize_threshold``): best raw, ties → higher θ."""
    n_windows = sum(e.n_windows for e in events)
    s = np.concatenate([e.scores for e in events])
    d = np.concatenate([e.deltas for e in events])
    order = np.argsort(-s, kind="stable")
    s, running = s[order], -profile.a_fn * n_windows + np.cumsum(d[order])
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    candidates = np.r_[1.1, s[last]]
    raws = np.r_[-profile.a_fn * n_windows, running[last]]
    tied = np.flatnonzero(raws >= raws.max() - 1e-9)
    return float(candidates[tied[np.argmax(candidates[tied])]])


def raw_at(e: Events, theta: float, profile: NabProfile) -> float:
    return float(-profile.a_fn * e.n_windows + e.deltas[e.scores >= theta].sum())


@dataclass(frozen=True)
class Evaluation:
    """A candidate's in-sample and cross-validated score, and its per-fold training scores."""

    in_sample: float
    cv: float
    fold_train: dict[str, float]  # normalised training score per held-out category
    fold_raw: dict[str, float]  # held-out raw score per category


def evaluate(files: list[NabFile], streams: list[FloatArray], profile: NabProfile) -> Evaluation:
    events = []
    for f, s in zip(files, streams, strict=True):
        es, ed = _threshold_events(s, f.windows, profile)
        events.append(Events(es, ed, len(f.windows)))
    total_windows = sum(e.n_windows for e in events)
    theta = best_threshold(events, profile)
    in_sample = normalized_score(
        sum(raw_at(e, theta, profile) for e in events), total_windows, profile
    )
    fold_train: dict[str, float] = {}
    fold_raw: dict[str, float] = {}
    for cat in sorted({category(f.key) for f in files}):
        train = [e for f, e in zip(files, events, strict=True) if category(f.key) != cat]
        held = [e for f, e in zip(files, events, strict=True) if category(f.key) == cat]
        theta = best_threshold(train, profile)
        train_windows = sum(e.n_windows for e in train)
        train_raw = sum(raw_at(e, theta, profile) for e in train)
        fold_train[cat] = normalized_score(train_raw, train_windows, profile)
        fold_raw[cat] = sum(raw_at(e, theta, profile) for e in held)
    cv = normalized_score(sum(fold_raw.values()), total_windows, profile)
    return Evaluation(in_sample, cv, fold_train, fold_raw)
