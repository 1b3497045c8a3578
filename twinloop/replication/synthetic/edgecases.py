"""Edge-case specifications and the transforms that inject them into generated rows.

Every edge case has one stated magnitude and reports what it measured on the output:

* cold start — the first ``fraction`` of rows start from nothing (a ramp from 0, zeros, or
  blanks), like a launch or new users without history;
* traffic surge — a volume column multiplied by ``factor`` over a window;
* segment-mix shift — the segment shares after ``start`` move by a total-variation distance
  ``magnitude`` (or to explicit ``weights``); rows are re-sampled conditionally on the segment;
* concept drift — from ``start`` on, the target column shifts by ``magnitude`` source standard
  deviations while every other column keeps its distribution, so P(y | x) moves and P(x) does
  not. The shift is measured as the OLS coefficient of the target on the drift indicator (or
  ramp, for gradual drift) in source-sd units and is enforced exactly: the sampling difference
  between the windows is absorbed, so the measured drift equals the requested one;
* missing values — exactly ``round(rate × rows)`` blanks per column, completely at random;
* extreme values — that many values per column placed ``factor`` IQRs beyond the quartiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.replication.synthetic.copula import Marginal

FloatArray = NDArray[np.float64]
VOLUME_NAMES = ("traffic", "sessions", "visits", "interactions", "arrivals", "requests")


class ColdStart(FrozenModel):
    kind: Literal["cold_start"] = "cold_start"
    fraction: float = Field(gt=0.0, le=1.0, description="Share of rows, from the first.")
    columns: tuple[str, ...] | None = Field(default=None, description="Default: all numbers.")
    fill: Literal["ramp", "zero", "null"] = "ramp"


class TrafficSurge(FrozenModel):
    kind: Literal["traffic_surge"] = "traffic_surge"
    factor: float = Field(gt=0.0, le=1000.0, description="Multiplier during the surge.")
    column: str | None = Field(default=None, description="Default: a traffic-like column.")
    start: float = Field(default=0.5, ge=0.0, lt=1.0)
    duration: float = Field(default=0.1, gt=0.0, le=1.0)


class SegmentMixShift(FrozenModel):
    kind: Literal["segment_shift"] = "segment_shift"
    magnitude: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Total-variation distance to move."
    )
    weights: dict[str, float] | None = None
    column: str | None = Field(default=None, description="Default: the first text column.")
    start: float = Field(default=0.5, ge=0.0, lt=1.0)


class ConceptDrift(FrozenModel):
    kind: Literal["drift"] = "drift"
    magnitude: float = Field(ge=-100.0, le=100.0, description="Shift in source sd units.")
    column: str | None = Field(
        default=None, description="Target; default: the last number column that is not 0/1."
    )
    start: float = Field(default=0.5, gt=0.0, lt=1.0)
    profile: Literal["sudden", "gradual"] = "sudden"


class MissingValues(FrozenModel):
    kind: Literal["missing"] = "missing"
    rate: float = Field(gt=0.0, lt=1.0)
    columns: tuple[str, ...] | None = None


class ExtremeValues(FrozenModel):
    kind: Literal["extreme"] = "extreme"
    rate: float = Field(gt=0.0, lt=1.0)
    columns: tuple[str, ...] | None = Field(default=None, description="Default: all numbers.")
    factor: float = Field(default=10.0, ge=3.0, le=1e6, description="IQRs beyond the quartile.")
    side: Literal["high", "low", "both"] = "both"


class EdgeCaseReport(FrozenModel):
    """What an edge case did: requested magnitude, measured magnitude, rows touched."""

    kind: str
    columns: list[str]
    requested: float
    measured: float
    rows_affected: int
    note: str


Case = ColdStart | TrafficSurge | SegmentMixShift | ConceptDrift | MissingValues | ExtremeValues


def apply_edge_case(
    case: Case,
    values: dict[str, FloatArray],
    marginals: dict[str, Marginal],
    rng: np.random.Generator,
    field: str,
) -> EdgeCaseReport:
    """Transform ``values`` in place (NaN = missing) and report the measured effect."""
    rows = next(iter(values.values())).size
    if isinstance(case, ColdStart):
        cols = _numeric(case.columns, marginals, field)
        k = max(1, round(case.fraction * rows))
        for c in cols:
            if case.fill == "ramp":
                values[c][:k] *= np.linspace(0.0, 1.0, k, endpoint=False)
            else:
                values[c][:k] = 0.0 if case.fill == "zero" else np.nan
            _round_back(values, marginals, c)
        return EdgeCaseReport(
            kind=case.kind,
            columns=cols,
            requested=case.fraction,
            measured=k / rows,
            rows_affected=k,
            note=f"share of rows starting from nothing ({case.fill})",
        )
    if isinstance(case, TrafficSurge):
        col = case.column or next((n for n in VOLUME_NAMES if n in marginals), None)
        if col is None:
            raise InvalidInput(f"{field}.column", "no traffic-like column found; name one")
        col = _numeric((col,), marginals, field)[0]
        first = int(case.start * rows)
        last = min(rows, first + max(1, round(case.duration * rows)))
        values[col][first:last] *= case.factor
        _round_back(values, marginals, col)
        inside = np.nanmean(values[col][first:last])
        outside = np.concatenate([values[col][:first], values[col][last:]])
        ratio = inside / np.nanmean(outside) if np.isfinite(outside).any() else float("nan")
        return EdgeCaseReport(
            kind=case.kind,
            columns=[col],
            requested=case.factor,
            measured=float(ratio),
            rows_affected=last - first,
            note="mean inside the surge window / mean outside it",
        )
    if isinstance(case, ConceptDrift):
        return _drift(case, values, marginals, field)
    if isinstance(case, MissingValues):
        cols = list(case.columns) if case.columns else list(values)
        _known(cols, marginals, field)
        k = round(case.rate * rows)
        for c in cols:
            values[c][rng.choice(rows, size=k, replace=False)] = np.nan
        return EdgeCaseReport(
            kind=case.kind,
            columns=cols,
            requested=case.rate,
            measured=k / rows,
            rows_affected=k,
            note="share of values blanked per column (completely at random)",
        )
    if isinstance(case, ExtremeValues):
        return _extremes(case, values, marginals, rng, field)
    raise InvalidInput(field, f"{case.kind} is applied by the generator itself")


def segment_targets(
    case: SegmentMixShift, categories: tuple[str, ...], source: FloatArray, field: str
) -> FloatArray:
    """Target segment shares: explicit weights, or ``magnitude`` moved to the rarest segment."""
    if case.weights is not None:
        unknown = [k for k in case.weights if k not in categories]
        if unknown:
            raise InvalidInput(
                f"{field}.weights.{unknown[0]}", f"unknown segment; known: {', '.join(categories)}"
            )
        w = np.array([max(case.weights.get(c, 0.0), 0.0) for c in categories])
        if w.sum() <= 0:
            raise InvalidInput(f"{field}.weights", "weights must have a positive sum")
        return np.asarray(w / w.sum(), dtype=np.float64)
    if case.magnitude is None:
        raise InvalidInput(field, "give a magnitude or weights")
    rarest = int(np.argmin(source))
    reach = 1.0 - float(source[rarest])
    if case.magnitude > reach + 1e-12:
        raise InvalidInput(
            f"{field}.magnitude",
            f"{case.magnitude:g} exceeds the largest possible shift {reach:.3g}",
        )
    point = np.zeros_like(source)
    point[rarest] = 1.0
    lam = case.magnitude / reach
    return np.asarray((1.0 - lam) * source + lam * point, dtype=np.float64)


def _drift(
    case: ConceptDrift,
    values: dict[str, FloatArray],
    marginals: dict[str, Marginal],
    field: str,
) -> EdgeCaseReport:
    numbers = [n for n, m in marginals.items() if m.kind in ("float", "int") and not _binary(m)]
    col = case.column or (numbers[-1] if numbers else None)
    if col is None:
        raise InvalidInput(f"{field}.column", "no (non-binary) number column to drift")
    col = _numeric((col,), marginals, field)[0]
    if _binary(marginals[col]):
        raise InvalidInput(
            f"{field}.column",
            f"{col!r} is a 0/1 flag; a mean shift in sd units needs a continuous or count target",
        )
    y = values[col]
    rows = y.size
    first = int(case.start * rows)
    t = np.arange(rows, dtype=np.float64)
    if case.profile == "sudden":
        r = (t >= first).astype(np.float64)
    else:
        r = np.clip((t - first) / max(rows - 1 - first, 1), 0.0, 1.0)
    sd = float(np.std(marginals[col].values))
    if sd == 0:
        raise InvalidInput(f"{field}.column", f"{col!r} is constant in the source; cannot drift")
    ok = np.isfinite(y)
    if np.ptp(r[ok]) == 0:
        raise InvalidInput(f"{field}.start", "no rows on one side of the drift point")
    raw = _slope(r[ok], y[ok])
    y += (case.magnitude * sd - raw) * r
    # Drifted values are no longer on the source's integer grid: emit the column as float.
    marginals[col] = dataclasses.replace(marginals[col], kind="float")
    measured = _slope(r[ok], y[ok]) / sd
    return EdgeCaseReport(
        kind=case.kind,
        columns=[col],
        requested=case.magnitude,
        measured=measured,
        rows_affected=int((r > 0).sum()),
        note=f"OLS shift of {col} on the {case.profile} drift indicator, in source sd "
        f"({sd:.4g}); other columns unchanged",
    )


def _extremes(
    case: ExtremeValues,
    values: dict[str, FloatArray],
    marginals: dict[str, Marginal],
    rng: np.random.Generator,
    field: str,
) -> EdgeCaseReport:
    cols = _numeric(case.columns, marginals, field)
    rows = next(iter(values.values())).size
    k = round(case.rate * rows)
    shares = []
    for c in cols:
        src = marginals[c].values
        q1, med, q3 = np.quantile(src, [0.25, 0.5, 0.75])
        spread = float(q3 - q1) or float(np.std(src)) or max(abs(float(med)), 1.0)
        side = case.side
        if side == "both" and src.min() >= 0:
            side = "high"  # a non-negative metric (a count, money) has no low outliers
        sign = (
            np.ones(k)
            if side == "high"
            else -np.ones(k)
            if side == "low"
            else (rng.choice([-1.0, 1.0], size=k))
        )
        base = np.where(sign > 0, q3, q1)
        idx = rng.choice(rows, size=k, replace=False)
        values[c][idx] = base + sign * case.factor * spread * (1.0 + rng.exponential(0.5, k))
        _round_back(values, marginals, c)
        out = values[c][np.isfinite(values[c])]
        far = (out > q3 + 3 * spread) | (out < q1 - 3 * spread)
        shares.append(float(far.mean()) if out.size else 0.0)
    return EdgeCaseReport(
        kind=case.kind,
        columns=cols,
        requested=case.rate,
        measured=float(np.mean(shares)),
        rows_affected=k,
        note="share of values beyond the far fences (3 IQR past the quartiles)",
    )


def _binary(marginal: Marginal) -> bool:
    return marginal.kind == "int" and bool(np.isin(marginal.values, (0.0, 1.0)).all())


def _slope(r: FloatArray, y: FloatArray) -> float:
    rc = r - r.mean()
    return float(rc @ (y - y.mean()) / (rc @ rc))


def _round_back(values: dict[str, FloatArray], marginals: Mapping[str, Marginal], c: str) -> None:
    if marginals[c].kind == "int":
        values[c] = np.rint(values[c])


def _known(cols: list[str], marginals: Mapping[str, Marginal], field: str) -> None:
    for c in cols:
        if c not in marginals:
            raise InvalidInput(
                f"{field}.columns", f"unknown column {c!r}; known: {', '.join(marginals)}"
            )


def _numeric(
    cols: tuple[str, ...] | None, marginals: Mapping[str, Marginal], field: str
) -> list[str]:
    chosen = list(cols) if cols else [n for n, m in marginals.items() if m.kind in ("float", "int")]
    _known(chosen, marginals, field)
    for c in chosen:
        if marginals[c].kind not in ("float", "int"):
            raise InvalidInput(f"{field}.columns", f"{c!r} is not a number column")
    if not chosen:
        raise InvalidInput(f"{field}.columns", "no number column to apply this to")
    return chosen
