"""The Numenta Anomaly Benchmark (NAB v1.1) scorer: windows, scaled sigmoid, profiles, threshold.

Written from the rule description in ``../shared/benchmarks/anomaly/README.md`` and checked
against NAB's published per-file scores (``bench/nab_conformance.py``). Everything here is
counted in rows, never in wall-clock time, because NAB counts in rows.

The corpus threshold search is exact and vectorised: the corpus raw score is a step function of
the threshold θ, so we sort every row's score once, turn "this row becomes a detection" into a
change of the raw score, and read the raw score at every distinct score value off one cumulative
sum (O(n log n) for the whole corpus instead of O(n) per candidate θ).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput

ProfileName = Literal["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
NO_DETECTION_THRESHOLD = 1.1  # NAB's "detect nothing" candidate: above every score in [0, 1]

FloatArray = npt.NDArray[np.float64]
Window = tuple[int, int]  # (first row, last row), both inclusive


class NabProfile(FrozenModel):
    """One NAB application profile: the weights of a true positive, false positive, miss."""

    name: ProfileName
    a_tp: float = Field(gt=0)
    a_fp: float = Field(gt=0)
    a_fn: float = Field(gt=0)


PROFILES: dict[ProfileName, NabProfile] = {
    "standard": NabProfile(name="standard", a_tp=1.0, a_fp=0.11, a_fn=1.0),
    "reward_low_FP_rate": NabProfile(name="reward_low_FP_rate", a_tp=1.0, a_fp=0.22, a_fn=1.0),
    "reward_low_FN_rate": NabProfile(name="reward_low_FN_rate", a_tp=1.0, a_fp=0.11, a_fn=2.0),
}


class NabFileScore(FrozenModel):
    """One file scored at one threshold: NAB's raw score and its diagnostic row counts."""

    raw: float
    tp_rows: int = Field(ge=0)
    fp_rows: int = Field(ge=0)
    fn_rows: int = Field(ge=0)
    tn_rows: int = Field(ge=0)
    windows_hit: int = Field(ge=0)
    n_windows: int = Field(ge=0)


class NabThresholdResult(FrozenModel):
    """The corpus-optimal threshold for one profile and the scores it gives."""

    profile: ProfileName
    threshold: float
    raw: float
    normalized: float
    n_windows: int = Field(ge=0)


def scaled_sigmoid(y: float) -> float:
    """NAB's σ(y) = 2 / (1 + e^{5y}) − 1, clamped to −1 beyond y = 3."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_rows(n_rows: int) -> int:
    """Rows ignored at the start of a file: min(floor(0.15 N), 750)."""
    return min(math.floor(0.15 * n_rows), 750)


def _check_windows(n_rows: int, windows: Sequence[Window], field: str) -> None:
    previous_end = -1
    for k, (start, end) in enumerate(windows):
        if not 0 <= start <= end < n_rows:
            raise InvalidInput(
                f"{field}[{k}]", f"({start}, {end}) is not inside rows 0..{n_rows - 1}"
            )
        if start <= previous_end:
            raise InvalidInput(
                f"{field}[{k}]", f"({start}, {end}) overlaps or precedes window {k - 1}"
            )
        previous_end = end


def _sigmoid_array(y: FloatArray) -> FloatArray:
    """Vectorised ``scaled_sigmoid`` (the clamp keeps ``exp`` from overflowing)."""
    clipped = np.minimum(y, 3.0)
    out: FloatArray = np.where(y > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * clipped)) - 1.0)
    return out


def row_values(
    n_rows: int, windows: Sequence[Window], profile: NabProfile
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """What each row would be worth as a detection, and the window it lies in (−1 if none).

    Rows inside probation are worth 0 and belong to no window; they never count.
    """
    _check_windows(n_rows, windows, "windows")
    values = np.full(n_rows, -profile.a_fp, dtype=np.float64)
    window_of = np.full(n_rows, -1, dtype=np.int64)
    rows = np.arange(n_rows, dtype=np.float64)
    sig_m1 = scaled_sigmoid(-1.0)
    for k, (start, end) in enumerate(windows):
        width = end - start + 1
        inside = slice(start, end + 1)
        values[inside] = profile.a_tp * _sigmoid_array(-(end - rows[inside] + 1) / width) / sig_m1
        window_of[inside] = k
        # Until the next window starts, a false positive is judged against this window only.
        stop = windows[k + 1][0] if k + 1 < len(windows) else n_rows
        after = slice(end + 1, stop)
        if width > 1:
            values[after] = profile.a_fp * _sigmoid_array((rows[after] - end) / (width - 1))
    probation = probation_rows(n_rows)
    values[:probation] = 0.0
    window_of[:probation] = -1
    return values, window_of


def score_file(
    scores: npt.ArrayLike, windows: Sequence[Window], threshold: float, profile: NabProfile
) -> NabFileScore:
    """Score one file's anomaly-score stream at threshold θ (detection iff score ≥ θ)."""
    a = np.asarray(scores, dtype=np.float64)
    n_rows = a.shape[0]
    values, window_of = row_values(n_rows, windows, profile)
    probation = probation_rows(n_rows)
    counted = np.arange(n_rows) >= probation
    detected = (a >= threshold) & counted
    inside = window_of >= 0
    raw = 0.0
    hit = 0
    for k in range(len(windows)):
        rows = np.flatnonzero(detected & (window_of == k))
        if rows.size:
            raw += float(values[rows[0]])  # earliest detection = the largest value in a window
            hit += 1
        else:
            raw -= profile.a_fn
    raw += float(values[detected & ~inside].sum())
    return NabFileScore(
        raw=raw,
        tp_rows=int((detected & inside).sum()),
        fp_rows=int((detected & ~inside).sum()),
        fn_rows=int((~detected & inside & counted).sum()),
        tn_rows=int((~detected & ~inside & counted).sum()),
        windows_hit=hit,
        n_windows=len(windows),
    )


def normalized_score(raw: float, n_windows: int, profile: NabProfile) -> float:
    """100 · (raw − raw_null) / (raw_perfect − raw_null): null detector 0, perfect 100."""
    if n_windows <= 0:
        raise InvalidInput("n_windows", f"{n_windows} must be positive to normalise a score")
    null = -profile.a_fn * n_windows
    perfect = profile.a_tp * n_windows
    return 100.0 * (raw - null) / (perfect - null)


def _threshold_events(
    scores: FloatArray, windows: Sequence[Window], profile: NabProfile
) -> tuple[FloatArray, FloatArray]:
    """(score, Δraw) pairs: lowering θ to ``score`` changes the file's raw score by Δraw."""
    n_rows = scores.shape[0]
    values, window_of = row_values(n_rows, windows, profile)
    counted = np.arange(n_rows) >= probation_rows(n_rows)
    outside = counted & (window_of < 0)
    event_scores = [scores[outside]]
    event_deltas = [values[outside]]
    for k in range(len(windows)):
        rows = np.flatnonzero(window_of == k)
        if not rows.size:
            continue
        # Walk the window's rows from the highest score down; a row matters only when it is
        # worth more than every row already detected (it becomes the window's best detection).
        order = rows[np.argsort(-scores[rows], kind="stable")]
        best = np.maximum.accumulate(values[order])
        before = np.concatenate(([-profile.a_fn], best[:-1]))
        gain = best - before
        keep = gain > 0
        event_scores.append(scores[order][keep])
        event_deltas.append(gain[keep])
    return np.concatenate(event_scores), np.concatenate(event_deltas)


def optimize_threshold(
    files: Sequence[tuple[npt.ArrayLike, Sequence[Window]]], profile: NabProfile
) -> NabThresholdResult:
    """NAB's θ: the distinct score value (or 1.1) with the highest corpus raw; ties → higher θ."""
    if not files:
        raise InvalidInput("files", "at least one scored file is needed")
    all_scores: list[FloatArray] = []
    all_deltas: list[FloatArray] = []
    n_windows = 0
    for j, (scores, windows) in enumerate(files):
        a = np.asarray(scores, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise InvalidInput(f"files[{j}].scores", "every anomaly score must be finite")
        _check_windows(a.shape[0], windows, f"files[{j}].windows")
        event_scores, event_deltas = _threshold_events(a, windows, profile)
        all_scores.append(event_scores)
        all_deltas.append(event_deltas)
        n_windows += len(windows)
    base = -profile.a_fn * n_windows
    scores_cat = np.concatenate(all_scores)
    deltas_cat = np.concatenate(all_deltas)
    order = np.argsort(-scores_cat, kind="stable")
    sorted_scores = scores_cat[order]
    running = base + np.cumsum(deltas_cat[order])
    # The raw score at θ = s includes every event with score ≥ s: read it at the last event of
    # each run of equal scores.
    last_of_run = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    candidates = np.r_[NO_DETECTION_THRESHOLD, sorted_scores[last_of_run]]
    raws = np.r_[base, running[last_of_run]]
    # Equal raw scores reached along different sums differ in the last bits: a tie is a
    # difference below 1e-9, and among tied candidates the higher θ wins.
    tied = np.flatnonzero(raws >= raws.max() - 1e-9)
    best = int(tied[np.argmax(candidates[tied])])
    raw = float(raws[best])
    return NabThresholdResult(
        profile=profile.name,
        threshold=float(candidates[best]),
        raw=raw,
        normalized=normalized_score(raw, n_windows, profile) if n_windows else 0.0,
        n_windows=n_windows,
    )
