"""Design changes to the anomaly detector tried on top of the default, judged by nested CV.

Run: ``nice -n 15 .venv/bin/python -m bench.anomaly_designs [--data DIR] [--cache DIR]``.

Each design adds one thing to today's default (``AnomalySettings()``) and is computed from the
default's recorded evidence (``bench.anomaly_cv.evidence``) plus the raw series, in numpy,
causally (point t uses points 0..t only):

* ``shift`` — a level-shift channel: |median of the last w points − median of the L points
  before them|, turned into a tail probability against its own history (the detector's
  ``TailModel``), speaking beyond −log10 p = f with the context channel's weight 0.01;
* ``shift_r`` — the same shift in fractions of the range seen so far (the novelty channel's
  unit), times a weight;
* ``rate`` — the change over k points, as a tail probability (floor f, weight 0.01);
* ``factor`` — a longer suppression: a point scores only if it beats ``factor`` × the largest
  raw value of the cooldown (ARTime's long quiet period after a detection, without a θ);
* ``calibrated`` — every channel through its own running tail probability, the score
  ``0.01 · max(0, max(S_novelty, S_context) − f)`` (no usual level: the tail is the calibration);
* ``usual_nov`` — the usual level subtracted from the novelty channel only.

The list below is every design tried in this round, in the order tried (the second ``shift_r``
block was added after the first had been seen, so only a nested figure over the *whole* list
charges for that). Per design the bench prints its in-sample and leave-one-category-out CV
score (θ by NAB rule 8 per fold, as ``bench.anomaly_cv``); then, per selection rule, the nested
score of "pick one design from this list on six categories, score the seventh" — over the
whole list and over the second ``shift_r`` block with the default. No conformance check is run:
the designs are not in the detector (none was adopted).
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bench.anomaly_cv import FloatArray, corpus_arguments, evidence, usual_levels
from bench.anomaly_nested import Folds, compressed, criterion
from bench.nab import PROFILE_NAMES, PROFILES, normalized_score
from bench.nab_corpus import NabFile, load_corpus
from bench.nab_folds import Events, category, evaluate
from twinloop.replication.anomaly.models import AnomalySettings
from twinloop.replication.anomaly.streaming import TailModel

DEFAULT = AnomalySettings()


@dataclass(frozen=True)
class Design:
    """One addition to the default (all ``None``/neutral: the default itself)."""

    shift: tuple[int, int, float] | None = None  # (w, L, floor)
    rate: tuple[int, float] | None = None  # (k, floor)
    shift_r: tuple[int, int, float] | None = None  # (w, L, weight)
    factor: float = 1.0
    calibrated: float | None = None  # floor
    usual_nov: bool = False


def _designs() -> dict[str, Design]:
    out: dict[str, Design] = {"default": Design()}
    for w, floor in itertools.product((6, 24), (5.0, 7.0)):
        out[f"shift w{w} L288 f{floor:g}"] = Design(shift=(w, 288, floor))
    for k, floor in itertools.product((1, 6), (5.0, 7.0)):
        out[f"rate k{k} f{floor:g}"] = Design(rate=(k, floor))
    for factor in (1.25, 1.5, 2.0):
        out[f"factor {factor:g}"] = Design(factor=factor)
    out["usual_nov"] = Design(usual_nov=True)
    for floor in (2.0, 3.0, 4.0):
        out[f"calibrated f{floor:g}"] = Design(calibrated=floor)
    for w, length, weight in itertools.product((6, 24), (288, 1000), (0.05, 0.1, 0.2, 0.5, 1.0)):
        out[f"shift_r w{w} L{length} x{weight:g}"] = Design(shift_r=(w, length, weight))
    for w, length, weight in itertools.product((12, 24, 48), (1000, 2000), (0.02, 0.03, 0.05)):
        out.setdefault(f"shift_r w{w} L{length} x{weight:g}", Design(shift_r=(w, length, weight)))
    return out


DESIGNS = _designs()
SECOND_BLOCK = ["default"] + [
    f"shift_r w{w} L{length} x{weight:g}"
    for w, length, weight in itertools.product((12, 24, 48), (1000, 2000), (0.02, 0.03, 0.05))
]


def tail_surprise(stat: FloatArray) -> FloatArray:
    """−log10 p of each value against the values before it (the detector's ``TailModel``)."""
    tail = TailModel(DEFAULT.tail_history, 30, 100)
    out = np.empty(stat.size)
    for i, value in enumerate(stat.tolist()):
        out[i] = tail.surprise(value)
        tail.add(value)
    return out


def rolling_median(x: FloatArray, w: int) -> FloatArray:
    """Median of x[t-w+1..t] at t (NaN before w points)."""
    m = np.full(x.size, np.nan)
    if x.size >= w:
        m[w - 1 :] = np.median(sliding_window_view(x, w), axis=1)
    return m


def level_shift(x: FloatArray, w: int, length: int) -> FloatArray:
    """|median of the last w points − median of the ``length`` points before them| (0 early)."""
    base: FloatArray = np.r_[np.full(w, np.nan), rolling_median(x, length)[:-w]]
    shift: FloatArray = np.abs(rolling_median(x, w) - base)
    shift[np.isnan(shift)] = 0.0
    return shift


def seen_range(x: FloatArray) -> FloatArray:
    """Range of the values before t (NaN at t = 0)."""
    out: FloatArray = np.r_[np.nan, np.maximum.accumulate(x)[:-1] - np.minimum.accumulate(x)[:-1]]
    return out


class Channels:
    """Per series, the default's evidence and the extra channels (memoised)."""

    def __init__(self, files: list[NabFile], cache: Path) -> None:
        d = DEFAULT
        self.evs = [evidence(f, d.history, d.neighbours, cache) for f in files]
        self.xs = [np.asarray(f.series.values, dtype=np.float64) for f in files]
        self._memo: dict[tuple[object, ...], FloatArray] = {}

    def get(self, key: tuple[object, ...], make: Callable[[], FloatArray]) -> FloatArray:
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def raw(self, i: int, design: Design, ramp: FloatArray) -> FloatArray:
        """Raw evidence of series ``i`` after the usual level (the detector's order of steps)."""
        d, ev, x = DEFAULT, self.evs[i], self.xs[i]
        floor = d.surprise_floor if d.surprise_floor is not None else np.inf
        context = d.score_scale * np.maximum(0.0, ev[:, 1] - floor)
        if design.calibrated is not None:
            novelty = self.get(("nov", i), lambda: tail_surprise(ev[:, 0] * ramp))
            best = np.maximum(novelty, ev[:, 1])
            calibrated: FloatArray = d.score_scale * np.maximum(0.0, best - design.calibrated)
            return calibrated * ramp
        parts = [ev[:, 0], context]
        if design.shift is not None:
            w, length, f = design.shift
            s = self.get(("shift", i, w, length), lambda: tail_surprise(level_shift(x, w, length)))
            parts.append(d.score_scale * np.maximum(0.0, s - f))
        if design.rate is not None:
            k, f = design.rate
            change = np.r_[np.zeros(k), np.abs(x[k:] - x[:-k])]
            s = self.get(("rate", i, k), lambda: tail_surprise(change))
            parts.append(d.score_scale * np.maximum(0.0, s - f))
        if design.shift_r is not None:
            w, length, weight = design.shift_r
            with np.errstate(divide="ignore", invalid="ignore"):
                unit = level_shift(x, w, length) / seen_range(x)
            parts.append(weight * np.where(np.isfinite(unit), unit, 0.0))
        if design.usual_nov:
            novelty = ev[:, 0] * ramp
            usual = usual_levels(novelty, d.usual_window, [d.usual_quantile or 0.99])[:, 0]
            return np.maximum(np.maximum(0.0, novelty - usual), context * ramp)
        raw: FloatArray = np.max(parts, axis=0) * ramp
        usual = usual_levels(raw, d.usual_window, [d.usual_quantile or 0.99])[:, 0]
        return np.maximum(0.0, raw - usual)

    def scores(self, design: Design) -> list[FloatArray]:
        """The score stream of every series under ``design``."""
        d, out = DEFAULT, []
        for i, ev in enumerate(self.evs):
            n = ev.shape[0]
            ramp = np.minimum(1.0, np.arange(n) / d.learning)
            ramp[: d.warmup] = 0.0
            raw = self.raw(i, design, ramp)
            padded = np.r_[np.full(d.cooldown, -np.inf), raw]
            previous = sliding_window_view(padded[:-1], d.cooldown).max(axis=1)
            previous[0] = -np.inf
            kept = np.where(raw > design.factor * previous, raw, 0.0)
            out.append(kept / (kept + d.score_scale))
        return out


def nested_line(
    names: list[str], folds: dict[str, dict[str, Folds]], rule: str, cats: list[str]
) -> str:
    """Nested score of picking among ``names`` by ``rule``: ``worst`` breaks ties in favour of
    the default (as ``bench.anomaly_nested``), ``worst_cv`` by the inner CV score."""

    def key(name: str, train: list[str]) -> tuple[float, float, bool]:
        f = folds[name]["standard"]
        first = criterion("worst" if rule == "worst_cv" else rule, f, train)
        second = criterion("cv", f, train) if rule == "worst_cv" else 0.0
        return (first, second, name == "default")

    picks = {h: max(names, key=lambda n: key(n, [c for c in cats if c != h])) for h in cats}
    scores = []
    for p in PROFILE_NAMES:
        raw = sum(folds[picks[h]][p].held_raw([c for c in cats if c != h], h) for h in cats)
        n_windows = sum(folds["default"][p].windows(c) for c in cats)
        scores.append(normalized_score(raw, n_windows, PROFILES[p]))
    final = max(names, key=lambda n: key(n, cats))
    moved = sum(v != "default" for v in picks.values())
    return (
        f"| {len(names)} designs | {rule} | "
        + " / ".join(f"{v:.1f}" for v in scores)
        + f" | {moved}/7 | {final} |"
    )


def main(argv: list[str] | None = None) -> int:
    args = corpus_arguments("bench.anomaly_designs", __doc__, argv)
    start = time.perf_counter()
    files = load_corpus(args.data)
    channels = Channels(files, args.cache)
    cats = sorted({category(f.key) for f in files})
    folds: dict[str, dict[str, Folds]] = {}
    lines = [
        "| design | in-sample | CV | held-out raw per category (standard) |",
        "|---|---|---|---|",
    ]
    for name, design in DESIGNS.items():
        streams = channels.scores(design)
        e = [evaluate(files, streams, PROFILES[p]) for p in PROFILE_NAMES]
        lines.append(
            f"| {name} | "
            + " / ".join(f"{x.in_sample:.1f}" for x in e)
            + " | "
            + " / ".join(f"{x.cv:.1f}" for x in e)
            + " | "
            + " ".join(f"{v:+.2f}" for v in e[0].fold_raw.values())
            + " |"
        )
        print(lines[-1], f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        folds[name] = {}
        for p in PROFILE_NAMES:
            by_cat: dict[str, list[Events]] = {}
            for f, s in zip(files, streams, strict=True):
                by_cat.setdefault(category(f.key), []).append(compressed(s, f, PROFILES[p]))
            folds[name][p] = Folds(by_cat, PROFILES[p])
    lines += [
        "",
        "| grid | rule | nested CV (standard / low FP / low FN) | folds ≠ default | pick on all |",
        "|---|---|---|---|---|",
    ]
    for names in (list(DESIGNS), SECOND_BLOCK):
        for rule in ("worst", "worst_cv", "cv", "train"):
            lines.append(nested_line(names, folds, rule, cats))
    lines.append(f"\n{time.perf_counter() - start:.0f} s")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
