"""Training data: labelled rows in the twin's predictor layout, from a user's Parquet or the twin.

A trainer sees one :class:`TrainingData`: the matrix a predictor receives in the twin
(``[x, one_hot(segment)]``, see ``twinloop.sim.groundtruth.predictor_features``), the 0/1 label,
each row's segment index and an optional row weight. Building it in that layout is what lets any
trained model enter the twin unchanged. A user's Parquet file is validated column by column
before anything trains, and every error names the column (``data.label``, ``data.segment`` …).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from twinloop.errors import InvalidInput
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.groundtruth import predictor_features, sample_customers

LABEL = "label"
SEGMENT = "segment"
WEIGHT = "weight"


@dataclass(frozen=True)
class TrainingData:
    """Labelled rows: predictor features (n × (d + S)), labels, segment indices, weights.

    Invariant: every array has n rows; ``features[:, :n_base]`` are the customer features and
    the rest is the one-hot of ``segment`` over ``segment_names``.
    """

    features: NDArray[np.float64]
    label: NDArray[np.int64]
    segment: NDArray[np.int64]
    weight: NDArray[np.float64] | None
    n_base: int
    segment_names: tuple[str, ...]
    fingerprint: str = ""

    @property
    def n(self) -> int:
        return int(self.label.size)

    @property
    def columns(self) -> list[str]:
        base = [f"x{i}" for i in range(self.n_base)]
        return base + [f"segment={s}" for s in self.segment_names]

    def sample_weight(self) -> NDArray[np.float64]:
        """The row weights, or ones."""
        return np.ones(self.n) if self.weight is None else self.weight

    def take(self, rows: NDArray[np.intp]) -> TrainingData:
        """The subset (or resample) ``rows``, in that order."""
        return replace(
            self,
            features=self.features[rows],
            label=self.label[rows],
            segment=self.segment[rows],
            weight=None if self.weight is None else self.weight[rows],
        )


def split(data: TrainingData, fraction: float, seed: int) -> tuple[TrainingData, TrainingData]:
    """Two disjoint parts (seeded, stratified by segment): ``fraction`` of the rows, the rest.

    The rows that fit the twin's decision layer must not be the rows a candidate trains on:
    a twin fitted on the training sample shares its noise, agrees with the candidate's
    mistakes and so favours it over the champion (measured in bench/loop_replay.py).
    """
    if not 0.0 < fraction < 1.0:
        raise InvalidInput("fraction", f"must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(41,)))
    first = np.zeros(data.n, dtype=bool)
    for s in range(len(data.segment_names)):
        rows = np.flatnonzero(data.segment == s)
        first[rng.permutation(rows)[: round(fraction * rows.size)]] = True
    parts = []
    for mask in (first, ~first):
        part = data.take(np.flatnonzero(mask))
        parts.append(replace(part, fingerprint=fingerprint(part.features, part.label)))
    return parts[0], parts[1]


def fingerprint(features: NDArray[np.float64], label: NDArray[np.int64]) -> str:
    """A short content hash of the rows: the lineage's training-data fingerprint."""
    digest = hashlib.sha256(np.ascontiguousarray(features).tobytes())
    digest.update(np.ascontiguousarray(label).tobytes())
    return digest.hexdigest()[:16]


def twin_data(env: BusinessEnvironment, rows: int, seed: int) -> TrainingData:
    """Rows generated from the twin's ground truth (its intent model), natural segment mix."""
    if rows < 10:
        raise InvalidInput("data.rows", f"must be >= 10, got {rows}")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    x, y, seg = sample_customers(env, rows, rng)
    return TrainingData(
        features=x,
        label=y,
        segment=seg,
        weight=None,
        n_base=env.n_features,
        segment_names=tuple(s.name for s in env.segments),
        fingerprint=fingerprint(x, y),
    )


def _column(table: pa.Table, name: str) -> NDArray[np.float64]:
    if name not in table.column_names:
        raise InvalidInput(f"data.{name}", f"missing column; have {table.column_names}")
    try:
        raw = table.column(name).to_numpy(zero_copy_only=False)
        values: NDArray[np.float64] = np.asarray(raw, dtype=np.float64)
    except (ValueError, TypeError, pa.ArrowException) as exc:
        raise InvalidInput(f"data.{name}", f"must be numeric: {exc}") from exc
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InvalidInput(f"data.{name}", f"row {int(bad[0])} is not a finite number")
    return values


def from_table(
    table: pa.Table, env: BusinessEnvironment, features: list[str] | None = None
) -> TrainingData:
    """Validate a labelled table (features, ``label``, ``segment``, optional ``weight``)."""
    names = features or [f"x{i}" for i in range(env.n_features)]
    if len(names) != env.n_features:
        raise InvalidInput(
            "data.features", f"{len(names)} feature columns, the environment has {env.n_features}"
        )
    if table.num_rows < 10:
        raise InvalidInput("data", f"needs at least 10 rows, got {table.num_rows}")
    x = np.column_stack([_column(table, n) for n in names])
    label = _column(table, LABEL)
    bad = np.flatnonzero((label != 0) & (label != 1))
    if bad.size:
        raise InvalidInput(f"data.{LABEL}", f"must be 0 or 1; row {int(bad[0])} is {label[bad[0]]}")
    if SEGMENT not in table.column_names:
        raise InvalidInput(f"data.{SEGMENT}", f"missing column; have {table.column_names}")
    seg_names = [str(s) for s in table.column(SEGMENT).to_pylist()]
    known = {s.name: i for i, s in enumerate(env.segments)}
    unknown = next((i for i, s in enumerate(seg_names) if s not in known), None)
    if unknown is not None:
        raise InvalidInput(
            f"data.{SEGMENT}",
            f"row {unknown} has unknown segment {seg_names[unknown]!r}; known {list(known)}",
        )
    segment = np.array([known[s] for s in seg_names], dtype=np.int64)
    weight = None
    if WEIGHT in table.column_names:
        weight = _column(table, WEIGHT)
        if (weight < 0).any() or weight.sum() <= 0:
            raise InvalidInput(f"data.{WEIGHT}", "weights must be >= 0 with a positive sum")
    y = label.astype(np.int64)
    full = predictor_features(env, x, segment)
    return TrainingData(
        features=full,
        label=y,
        segment=segment,
        weight=weight,
        n_base=env.n_features,
        segment_names=tuple(known),
        fingerprint=fingerprint(full, y),
    )


def read_parquet(
    path: Path, env: BusinessEnvironment, features: list[str] | None = None
) -> TrainingData:
    """Read and validate a user's labelled Parquet file."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput("data.path", f"cannot read {str(path)!r} as Parquet: {exc}") from exc
    return from_table(table, env, features)


def to_table(data: TrainingData) -> pa.Table:
    """The rows back as a labelled table (the Parquet layout :func:`from_table` reads)."""
    columns: dict[str, object] = {f"x{i}": data.features[:, i] for i in range(data.n_base)}
    columns[SEGMENT] = [data.segment_names[s] for s in data.segment]
    columns[LABEL] = data.label
    if data.weight is not None:
        columns[WEIGHT] = data.weight
    return pa.table(columns)


__all__ = [
    "TrainingData",
    "from_table",
    "read_parquet",
    "to_table",
    "twin_data",
]
