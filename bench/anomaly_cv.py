"""Model selection for the anomaly detector by leave-one-category-out cross-validation on NAB.

Run: ``nice -n 10 .venv/bin/python -m bench.anomaly_cv [--data DIR] [--cache DIR]``.

Protocol (pre-declared in ``docs/anomalies.md``, fixed before the run):

* The candidate grid is ``DETECTOR_GRID`` × ``SCORING_GRID`` below: one set of parameters for
  every series of the corpus, no per-series or per-category knob.
* Folds are NAB's categories (``realTweets``, ``realAWSCloudwatch``, …): each category in turn
  is held out, θ (NAB rule 8, standard profile) is chosen on the other categories, and the
  held-out series are scored at that θ. Their raw scores are summed over all folds and
  normalised over all windows: the **CV score** of a candidate (every series scored by a θ
  that never saw it or its category).
* The default is the candidate with the best CV score (ties → the current default). Because
  picking the best of many candidates by their CV score is itself optimistic, the whole
  procedure is also **nested**: in each fold the candidate *and* θ are chosen on the other
  categories only, and the held-out category is scored with them. The nested figure is the
  honest estimate of the score on series the detector has never seen.

Detector runs are cached per series (``--cache``): the score is a fixed function of the two
evidence channels the detector records per point (``AnomalyDetector.evidence``), so the
scoring knobs (context floor and weight, cooldown, learning ramp) are applied here in numpy
without re-running the detector; only ``history`` and ``neighbours`` need a run each.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.anomaly import DEFAULT_DATA
from bench.nab import PROFILE_NAMES, PROFILES, NabProfile, _threshold_events, normalized_score
from bench.nab_corpus import NabFile, load_corpus
from twinloop.replication.anomaly.detector import AnomalyDetector
from twinloop.replication.anomaly.models import AnomalySettings

FloatArray = npt.NDArray[np.float64]
OFF = 1e9  # a context floor no surprise reaches: the context channel switched off
# Knobs that change what the detector computes (one run over the corpus each).
DETECTOR_GRID = {"history": (1000, 2000, 4000, 8000), "neighbours": (3, 5, 10)}
# Knobs applied to the recorded evidence (no re-run).
SCORING_GRID = {
    "surprise_floor": (5.0, 7.0, 9.0, OFF),
    "score_scale": (0.01, 0.02, 0.04),
    "cooldown": (30, 60, 120),
    "learning": (375, 750, 1500),
}
DEFAULT = AnomalySettings()


@dataclass(frozen=True)
class Candidate:
    """One point of the grid: every knob the protocol may choose."""

    history: int
    neighbours: int
    surprise_floor: float
    score_scale: float
    cooldown: int
    learning: int

    def label(self) -> str:
        floor = "off" if self.surprise_floor >= OFF else f"{self.surprise_floor:g}"
        return (
            f"history={self.history} neighbours={self.neighbours} floor={floor} "
            f"scale={self.score_scale:g} cooldown={self.cooldown} learning={self.learning}"
        )


def category(key: str) -> str:
    return key.split("/", 1)[0]


def evidence(nab_file: NabFile, history: int, neighbours: int, cache: Path) -> FloatArray:
    """(n, 2) novelty and context surprise per point, from the cache or one detector run."""
    settings = AnomalySettings(
        history=history, neighbours=neighbours, timestamp_order="row_order"
    )
    digest = hashlib.sha256(
        (settings.model_dump_json() + nab_file.key).encode()
    ).hexdigest()[:16]
    path = cache / f"{digest}.npy"
    if path.is_file():
        cached: FloatArray = np.load(path)
        return cached
    detector = AnomalyDetector(settings)
    out = np.empty((len(nab_file.series), 2))
    stamps = nab_file.series.timestamps.tolist()
    for i, (t, v) in enumerate(zip(stamps, nab_file.series.values.tolist(), strict=True)):
        detector.update(t, v)
        out[i] = detector.evidence
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def scores_from(ev: FloatArray, c: Candidate) -> FloatArray:
    """The detector's score stream for candidate ``c`` (the formula of ``AnomalyDetector``)."""
    n = ev.shape[0]
    context = c.score_scale * np.maximum(0.0, ev[:, 1] - c.surprise_floor)
    ramp = np.minimum(1.0, np.arange(n) / c.learning)
    raw = np.maximum(ev[:, 0], context) * ramp
    if c.cooldown:
        padded = np.r_[np.full(c.cooldown, -np.inf), raw]
        windows = np.lib.stride_tricks.sliding_window_view(padded[:-1], c.cooldown)
        previous = windows.max(axis=1)
        previous[0] = -np.inf  # nothing seen yet: the first point keeps its raw value
        out = np.where(raw > previous, raw, 0.0)
    else:
        out = raw
    scores: FloatArray = out / (out + c.score_scale)
    return scores


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


def evaluate(
    files: list[NabFile], streams: list[FloatArray], profile: NabProfile
) -> Evaluation:
    events = []
    for f, s in zip(files, streams, strict=True):
        es, ed = _threshold_events(s, f.windows, profile)
        events.append(Events(es, ed, len(f.windows)))
    total_windows = sum(e.n_windows for e in events)
    theta = best_threshold(events, profile)
    in_sample = normalized_score(sum(raw_at(e, theta, profile) for e in events), total_windows, profile)
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


def candidates() -> list[Candidate]:
    grid = itertools.product(*DETECTOR_GRID.values(), *SCORING_GRID.values())
    return [Candidate(*values) for values in grid]


def default_candidate() -> Candidate:
    return Candidate(
        DEFAULT.history,
        DEFAULT.neighbours,
        DEFAULT.surprise_floor,
        DEFAULT.score_scale,
        DEFAULT.cooldown,
        DEFAULT.learning,
    )


def nested(results: dict[Candidate, Evaluation], n_windows: int, profile: NabProfile) -> tuple[float, dict[str, Candidate]]:
    """Candidate and θ chosen on the training categories of each fold, scored on the held-out one."""
    some = next(iter(results.values()))
    raw = 0.0
    chosen: dict[str, Candidate] = {}
    for cat in some.fold_train:
        best = max(results, key=lambda c: results[c].fold_train[cat])
        chosen[cat] = best
        raw += results[best].fold_raw[cat]
    return normalized_score(raw, n_windows, profile), chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.anomaly_cv", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/twinloop_nab_cv"))
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    files = load_corpus(args.data)
    n_windows = sum(len(f.windows) for f in files)
    start = time.perf_counter()
    runs: dict[tuple[int, int], list[FloatArray]] = {}
    for history, neighbours in itertools.product(*DETECTOR_GRID.values()):
        runs[history, neighbours] = [evidence(f, history, neighbours, args.cache) for f in files]
        print(f"evidence history={history} neighbours={neighbours}: "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    standard = PROFILES["standard"]
    results: dict[Candidate, Evaluation] = {}
    for c in candidates():
        streams = [scores_from(ev, c) for ev in runs[c.history, c.neighbours]]
        results[c] = evaluate(files, streams, standard)
    default = default_candidate()
    ranked = sorted(results, key=lambda c: (-results[c].cv, c != default))
    best = ranked[0]
    nested_score, chosen = nested(results, n_windows, standard)
    lines = [
        f"{len(results)} candidates, {len(files)} series, {n_windows} windows, "
        f"{len({category(f.key) for f in files})} folds (NAB categories); standard profile",
        "",
        "| candidate | in-sample | CV (leave one category out) |",
        "|---|---|---|",
    ]
    for c in ranked[: args.top]:
        mark = " (current default)" if c == default else ""
        lines.append(f"| {c.label()}{mark} | {results[c].in_sample:.1f} | {results[c].cv:.1f} |")
    if default in results and default not in ranked[: args.top]:
        rank = ranked.index(default) + 1
        lines.append(f"| {default.label()} (current default, rank {rank}) | "
                     f"{results[default].in_sample:.1f} | {results[default].cv:.1f} |")
    lines += ["", f"nested CV (candidate and θ chosen without the held-out category): {nested_score:.1f}"]
    for cat, c in chosen.items():
        lines.append(f"  fold {cat}: {c.label()}")
    lines += ["", f"best by CV: {best.label()}"]
    streams = [scores_from(ev, best) for ev in runs[best.history, best.neighbours]]
    for name in PROFILE_NAMES:
        e = evaluate(files, streams, PROFILES[name])
        lines.append(f"  {name}: in-sample {e.in_sample:.1f}, CV {e.cv:.1f}")
    d_streams = [scores_from(ev, default) for ev in runs[default.history, default.neighbours]]
    for name in PROFILE_NAMES:
        e = evaluate(files, d_streams, PROFILES[name])
        lines.append(f"  current default {name}: in-sample {e.in_sample:.1f}, CV {e.cv:.1f}")
    lines.append(f"\n{time.perf_counter() - start:.0f} s")
    print("\n".join(lines))
    json.dump(
        {c.label(): [results[c].in_sample, results[c].cv] for c in ranked},
        (args.cache / "results.json").open("w"),
        indent=0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
