"""Edge strengths of a metric graph: fitted from a KPI history, or declared / prior elasticities.

For a metric Y with parents P the structural equation is ``f_Y(Y) = a + sum_p b_p g_p(P) + e``,
``f = log`` for metrics that are strictly positive (then ``b`` is an elasticity) and the identity
otherwise. With a history, Y is regressed on *all* its parents at once (OLS; declared strengths
are moved to the left-hand side first): conditioning on every parent is what keeps a common
cause of two parents from leaking into the estimate. Declared and prior strengths are
elasticities and are converted to the edge's scale at the baseline (first-order exact).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.replication.findings import Finding
from twinloop.replication.history import KpiHistory
from twinloop.replication.whatif.graph import CausalEdge

FloatArray = NDArray[np.float64]
Scale = Literal["elasticity", "semi_elasticity", "log_slope", "slope"]
Source = Literal["history", "declared", "prior"]


class EdgeStrength(FrozenModel):
    """One edge as used: its strength in the edge's scale, where it came from, its elasticity."""

    parent: str
    child: str
    strength: float
    stderr: float
    scale: Scale
    elasticity: float | None = Field(
        description="The same effect as an elasticity at the baseline (None where undefined)."
    )
    source: Source
    rows: int | None = Field(default=None, description="History rows used by the fit.")
    lag: int = Field(default=0, description="Steps by which the child trails the parent.")


@dataclass(frozen=True)
class NodeModel:
    parents: tuple[str, ...]
    coef: FloatArray  # strengths in the edge scales, parents order
    cov: FloatArray
    edges: tuple[EdgeStrength, ...]


def choose_scales(
    base: Mapping[str, float],
    history: KpiHistory | None,
    transform: Literal["auto", "log", "linear"],
    nodes: set[str],
) -> dict[str, bool]:
    """Which metrics are modelled on the log scale."""
    log = {}
    for name, value in base.items():
        hist = None
        if history is not None and name in history.metrics:
            vals = history.metrics[name]
            hist = vals[np.isfinite(vals)]
        positive = value > 0 and (hist is None or bool(np.all(hist > 0)))
        if transform == "log" and name in nodes and not positive:
            where = f"base_metrics.{name}" if value <= 0 else f"history.{name}"
            raise InvalidInput(where, "the log scale needs strictly positive values")
        log[name] = transform != "linear" and positive
    return log


def node_model(
    node: str,
    edges: list[CausalEdge],
    base: Mapping[str, float],
    log: Mapping[str, bool],
    history: KpiHistory | None,
    fit_on: Literal["levels", "differences"],
    source: Literal["declared", "default"],
    findings: list[Finding],
) -> NodeModel:
    fixed = [e for e in edges if e.strength is not None and source == "declared"]
    free = [e for e in edges if e not in fixed]
    needed = [node] + [e.parent for e in edges]
    fittable = history is not None and all(n in history.metrics for n in needed)
    if free and fittable and history is not None:
        return _fit(node, fixed, free, base, log, history, fit_on)
    unknown = [e for e in free if e.strength is None]
    if unknown:
        e = unknown[0]
        if history is None:
            raise InvalidInput(
                "history",
                f"edge {e.parent} -> {node} has no strength: declare one or give a "
                "history to estimate it from",
            )
        missing = next(n for n in needed if n not in history.metrics)
        raise InvalidInput(
            f"history.{missing}", f"no such column; needed to estimate {e.parent} -> {node}"
        )
    if free:
        findings.append(
            Finding(
                code="prior_strength",
                field=f"graph.{node}",
                message=f"{node}: prior elasticities used for "
                f"{', '.join(e.parent for e in free)} "
                "(give a history with these columns to fit them)",
            )
        )
    coef, sd, out = [], [], []
    for e in edges:
        scale, factor = _conversion(e.parent, node, base, log)
        strength = float(e.strength or 0.0)
        coef.append(strength * factor)
        sd.append((e.stderr or 0.0) * abs(factor))
        out.append(
            EdgeStrength(
                parent=e.parent,
                child=node,
                strength=coef[-1],
                stderr=sd[-1],
                scale=scale,
                elasticity=strength,
                source="declared" if source == "declared" else "prior",
                lag=e.lag,
            )
        )
    return NodeModel(
        tuple(e.parent for e in edges), np.array(coef), np.diag(np.square(sd)), tuple(out)
    )


def _fit(
    node: str,
    fixed: list[CausalEdge],
    free: list[CausalEdge],
    base: Mapping[str, float],
    log: Mapping[str, bool],
    history: KpiHistory,
    fit_on: Literal["levels", "differences"],
) -> NodeModel:
    """OLS of the node on its free parents, declared strengths moved to the left-hand side."""

    def series(name: str, lag: int = 0) -> FloatArray:
        """The metric on its scale, shifted ``lag`` rows later (a lagged parent)."""
        vals = np.asarray(history.metrics[name], dtype=np.float64)
        scaled = np.log(np.where(vals > 0, vals, np.nan)) if log[name] else vals.copy()
        if lag:
            scaled = np.concatenate([np.full(min(lag, scaled.size), np.nan), scaled[:-lag]])
        return scaled

    y = series(node)
    fixed_coef = []
    for e in fixed:
        _, factor = _conversion(e.parent, node, base, log)
        fixed_coef.append(float(e.strength or 0.0) * factor)
        y = y - fixed_coef[-1] * series(e.parent, e.lag)
    x = np.column_stack([series(e.parent, e.lag) for e in free])
    if fit_on == "differences":
        y, x = np.diff(y), np.diff(x, axis=0)
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    rows = int(ok.sum())
    k = len(free)
    if rows < k + 3:
        raise InvalidInput(
            "history",
            f"{rows} complete rows to estimate {node} from "
            f"{', '.join(e.parent for e in free)}; need at least {k + 3}",
        )
    y, x = y[ok], x[ok]
    for j, e in enumerate(free):
        if np.ptp(x[:, j]) == 0:
            raise InvalidInput(
                f"history.{e.parent}", f"is constant; its effect on {node} cannot be estimated"
            )
    design = np.column_stack([np.ones(rows), x])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    sigma2 = float(resid @ resid) / (rows - k - 1)
    cov_full = sigma2 * np.linalg.pinv(design.T @ design)
    edges = [*fixed, *free]
    parents = tuple(e.parent for e in edges)
    coef = np.concatenate([np.array(fixed_coef), beta[1:]])
    cov = np.zeros((len(parents), len(parents)))
    cov[len(fixed) :, len(fixed) :] = cov_full[1:, 1:]
    for i, e in enumerate(fixed):
        _, factor = _conversion(e.parent, node, base, log)
        cov[i, i] = ((e.stderr or 0.0) * factor) ** 2
    out = []
    for i, e in enumerate(edges):
        scale, factor = _conversion(e.parent, node, base, log, strict=i < len(fixed))
        is_fixed = i < len(fixed)
        elasticity = float(coef[i] / factor) if factor and math.isfinite(factor) else None
        out.append(
            EdgeStrength(
                parent=e.parent,
                child=node,
                strength=float(coef[i]),
                stderr=float(np.sqrt(cov[i, i])),
                scale=scale,
                elasticity=elasticity,
                source="declared" if is_fixed else "history",
                rows=None if is_fixed else rows,
                lag=e.lag,
            )
        )
    return NodeModel(parents, coef, cov, tuple(out))


def _conversion(
    parent: str,
    child: str,
    base: Mapping[str, float],
    log: Mapping[str, bool],
    *,
    strict: bool = True,
) -> tuple[Scale, float]:
    """The edge's scale and the factor turning an elasticity into a strength on that scale.

    ``strict`` (converting a declared or prior elasticity): both baselines must be positive, as
    an elasticity around a zero or negative level has no meaning. Otherwise (reporting a fitted
    strength as an elasticity) the factor is NaN where it is undefined.
    """
    x0, y0 = base[parent], base[child]
    if log[child] and log[parent]:
        return "elasticity", 1.0
    if strict and (x0 <= 0 or y0 <= 0):
        bad = parent if x0 <= 0 else child
        raise InvalidInput(
            f"base_metrics.{bad}",
            f"is {base[bad]:g}; the elasticity of {parent} -> {child} needs positive "
            "baselines (give a history to fit this edge instead)",
        )
    if log[child]:
        return "semi_elasticity", 1.0 / x0 if x0 != 0 else math.nan
    if log[parent]:
        return "log_slope", y0
    return "slope", y0 / x0 if x0 != 0 else math.nan
