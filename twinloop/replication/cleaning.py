"""History cleaning: the checks and repairs between raw columns and a validated KPI history.

What cannot be used is refused with ``InvalidInput`` naming the column (infinities, a metric
with no values); the rest is repaired or reported as coded findings: rows sorted by time
(stably), duplicate (timestamp, segment) rows reduced to the last in file order, gaps and
irregular steps against the inferred step counted, missing values and constant metrics noted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from twinloop.errors import InvalidInput
from twinloop.replication.findings import Finding

TimeKind = Literal["datetime", "numeric"]
FloatArray = NDArray[np.float64]
TextArray = NDArray[np.object_]
# A step is irregular when it is off a whole multiple of the inferred step by more than this.
_IRREGULAR_TOLERANCE = 0.15


@dataclass(frozen=True)
class CleanRows:
    """Sorted, de-duplicated rows with the inferred step and every finding so far."""

    time: FloatArray
    metrics: Mapping[str, FloatArray]
    segments: Mapping[str, TextArray]
    step: float | None
    findings: tuple[Finding, ...]


def check_columns(
    time: FloatArray,
    metrics: dict[str, FloatArray],
    segments: dict[str, TextArray],
    ts_name: str,
    field: str,
) -> list[Finding]:
    """Refuse unusable metrics (InvalidInput); label missing segments; note unsorted time."""
    if not metrics:
        raise InvalidInput(f"{field}.metrics", "no metric columns besides the timestamp")
    findings: list[Finding] = []
    for name, vals in metrics.items():
        inf = np.flatnonzero(np.isinf(vals))
        if inf.size:
            raise InvalidInput(
                f"{field}.{name}",
                f"value {vals[inf[0]]} at row {int(inf[0])} is not finite "
                f"({inf.size} infinite values; use an empty cell for a missing value)",
            )
        if np.isnan(vals).all():
            raise InvalidInput(f"{field}.{name}", "has no values (all missing)")
    for name, labels in segments.items():
        missing = np.array([v is None for v in labels], dtype=bool)
        if missing.any():
            labels[missing] = "(missing)"
            findings.append(
                Finding(
                    code="missing_segment",
                    field=f"{field}.{name}",
                    count=int(missing.sum()),
                    message=f"{int(missing.sum())} rows have no {name}; labelled '(missing)'",
                )
            )
    descents = int(np.count_nonzero(np.diff(time) < 0))
    if descents:
        findings.append(
            Finding(
                code="timestamps_unsorted",
                field=f"{field}.{ts_name}",
                count=descents,
                message=f"timestamps step back {descents} times; rows were sorted by time (stable)",
            )
        )
    return findings


def clean_rows(
    time: FloatArray,
    kind: TimeKind,
    metrics: Mapping[str, FloatArray],
    segments: Mapping[str, TextArray],
    findings_in: tuple[Finding, ...],
    ts_name: str,
    field: str = "history",
) -> CleanRows:
    """Sort by time (stably), keep the last of duplicate rows, and note gaps and odd metrics."""
    findings = list(findings_in)
    n = time.size
    idx = np.arange(n)
    seg_key = np.zeros(n, dtype=np.int64)
    for labels in segments.values():
        _, codes = np.unique(labels.astype(str), return_inverse=True)
        seg_key = seg_key * (int(codes.max()) + 1) + codes
    order = np.lexsort((idx, seg_key, time))
    t_sorted, k_sorted = time[order], seg_key[order]
    last_of_run = np.ones(n, dtype=bool)
    last_of_run[:-1] = (t_sorted[1:] != t_sorted[:-1]) | (k_sorted[1:] != k_sorted[:-1])
    dropped = n - int(last_of_run.sum())
    if dropped:
        findings.append(
            Finding(
                code="duplicate_timestamps",
                field=f"{field}.{ts_name}",
                count=dropped,
                message=f"{dropped} rows repeat a timestamp{' and segment' if segments else ''}; "
                "the last row in file order was kept",
            )
        )
    kept = order[last_of_run]
    kept = kept[np.lexsort((kept, time[kept]))]
    time = time[kept]
    metrics = {k: v[kept] for k, v in metrics.items()}
    segments = {k: v[kept] for k, v in segments.items()}
    step = _step_findings(np.unique(time), kind, findings, f"{field}.{ts_name}")
    for name, vals in metrics.items():
        missing = int(np.isnan(vals).sum())
        if missing:
            findings.append(
                Finding(
                    code="missing_values",
                    field=f"{field}.{name}",
                    count=missing,
                    message=f"{missing} of {vals.size} values of {name} are missing",
                )
            )
        finite = vals[~np.isnan(vals)]
        if finite.size > 1 and np.all(finite == finite[0]):
            findings.append(
                Finding(
                    code="constant_metric",
                    field=f"{field}.{name}",
                    message=f"{name} is constant ({finite[0]:g}); it carries no relation to others",
                )
            )
    if time.size < 3:
        findings.append(
            Finding(
                code="too_short",
                field=field,
                count=int(time.size),
                message=f"only {time.size} rows; correlations and fits need more",
            )
        )
    return CleanRows(time, metrics, segments, step, tuple(findings))


def _step_findings(
    unique_times: FloatArray, kind: TimeKind, findings: list[Finding], field: str
) -> float | None:
    if unique_times.size < 2:
        return None
    diffs = np.diff(unique_times)
    step = float(np.median(diffs))
    ratio = diffs / step
    whole = np.rint(ratio)
    irregular = int(np.count_nonzero((np.abs(ratio - whole) > _IRREGULAR_TOLERANCE) | (whole < 1)))
    if irregular:
        findings.append(
            Finding(
                code="irregular_steps",
                field=field,
                count=irregular,
                message=f"{irregular} steps are not a whole multiple of the median step {step:g}",
            )
        )
    gaps = whole > 1
    if gaps.any():
        missing = int((whole[gaps] - 1).sum())
        first = int(np.flatnonzero(gaps)[0])
        findings.append(
            Finding(
                code="gaps",
                field=field,
                count=missing,
                message=f"{missing} steps are missing in {int(gaps.sum())} gaps; the first "
                f"after {time_label(unique_times[first], kind)}",
            )
        )
    return step


def time_label(t: float, kind: TimeKind) -> str:
    """A timestamp as ISO-8601 (datetime, to the microsecond) or a plain number (numeric)."""
    if kind == "numeric":
        return f"{t:g}"
    return str(np.datetime64(round(t * 1e6), "us")).removesuffix(".000000")
