"""A NAB corpus on disk: its series, label windows as row indices, and scoring a detector on it.

Layout (NAB's own, as in ``../shared/benchmarks/anomaly``): ``data/<category>/<file>.csv`` and
``labels/combined_windows.json`` mapping ``"<category>/<file>.csv"`` to ``[[start, end], ...]``
timestamp strings, both ends inclusive.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.nab import (
    PROFILE_NAMES,
    PROFILES,
    NabFileScore,
    NabThresholdResult,
    ProfileName,
    Window,
    optimize_threshold,
    score_file,
)
from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput, NotFound
from twinloop.replication.anomaly.series import Series, read_series_csv


@dataclass(frozen=True)
class NabFile:
    """One labelled series: its NAB key (``category/file.csv``), data and windows (row indices)."""

    key: str
    series: Series
    windows: tuple[Window, ...]


class NabCorpusResult(FrozenModel):
    """A detector scored on a corpus: per profile the optimal θ, and per file the raw scores."""

    thresholds: dict[ProfileName, NabThresholdResult]
    per_file: dict[ProfileName, dict[str, NabFileScore]]


def _row_of(stamps: npt.NDArray[np.datetime64], text: str, key: str, first: bool) -> int:
    stamp = np.datetime64(text.split(".")[0].replace(" ", "T"), "s")
    rows = np.flatnonzero(stamps == stamp)
    if not rows.size:
        raise InvalidInput(
            f"labels.{key}", f"window boundary {text} is not a timestamp of the file"
        )
    return int(rows[0] if first else rows[-1])


def window_rows(series: Series, windows: Sequence[Sequence[str]], key: str) -> tuple[Window, ...]:
    """Label windows as inclusive row ranges (the first row at ``start``, last at ``end``)."""
    return tuple(
        (_row_of(series.timestamps, start, key, True), _row_of(series.timestamps, end, key, False))
        for start, end in windows
    )


def load_corpus(root: str | Path, keys: Sequence[str] | None = None) -> list[NabFile]:
    """Load every labelled series under ``root`` (or only ``keys``), sorted by key."""
    base = Path(root)
    labels_path = base / "labels" / "combined_windows.json"
    if not labels_path.is_file():
        raise NotFound("NAB labels", str(labels_path))
    labels: dict[str, list[list[str]]] = json.loads(labels_path.read_text())
    chosen = sorted(labels) if keys is None else list(keys)
    files = []
    for key in chosen:
        if key not in labels:
            raise NotFound("NAB series", key)
        series = read_series_csv(base / "data" / key)
        files.append(NabFile(key=key, series=series, windows=window_rows(series, labels[key], key)))
    return files


def score_corpus(
    files: Sequence[NabFile],
    scores: Sequence[npt.ArrayLike],
    profiles: Sequence[ProfileName] = PROFILE_NAMES,
) -> NabCorpusResult:
    """Optimise θ per profile over the whole corpus (NAB rule 8) and score each file at it."""
    if len(files) != len(scores):
        raise InvalidInput("scores", f"{len(scores)} score streams for {len(files)} files")
    arrays = [np.asarray(s, dtype=np.float64) for s in scores]
    for nab_file, array in zip(files, arrays, strict=True):
        if array.shape != (len(nab_file.series),):
            raise InvalidInput(
                f"scores.{nab_file.key}", f"{array.shape[0]} scores for {len(nab_file.series)} rows"
            )
    thresholds: dict[ProfileName, NabThresholdResult] = {}
    per_file: dict[ProfileName, dict[str, NabFileScore]] = {}
    for name in profiles:
        profile = PROFILES[name]
        best = optimize_threshold(
            [(a, f.windows) for f, a in zip(files, arrays, strict=True)], profile
        )
        thresholds[name] = best
        per_file[name] = {
            f.key: score_file(a, f.windows, best.threshold, profile)
            for f, a in zip(files, arrays, strict=True)
        }
    return NabCorpusResult(thresholds=thresholds, per_file=per_file)
