"""Edge strengths of a metric graph: fitted from a KPI history, or declared / prior elasticities.

For a metric Y with parents P the structural equation is ``f(Y) = a + sum_p b_p g_p(P) + e``.
Each equation has a *form*: ``log`` (log of every strictly positive metric, so ``b`` is an
elasticity) or ``linear`` (levels, ``b`` a slope). With a history and ``transform="auto"`` the
form is chosen per equation from the data: both are fitted by OLS on the same rows and compared
by the Gaussian likelihood of Y *on Y's own scale* (the log fit's likelihood carries the
Jacobian ``-sum log y``, so the two are comparable; both forms have the same number of
parameters, so this is also the AIC and BIC comparison). Vuong's test for non-nested models
decides: linear when it is significantly better (z < -1.96), else log — when the data cannot
tell them apart (a narrow range, little curvature) the elasticity, the convention of the priors,
stays. A linear truth fitted in logs, or the reverse, misstates an effect by the curvature
between base and changed values — 17 % for +50 ms of latency in the linear case that prompted
this — so a fixed default is wrong half the time. Y is regressed on *all* its parents at once
(declared strengths moved to the left-hand side first): conditioning on every parent keeps a
common cause of two parents from leaking into the estimate. Declared and prior strengths are
elasticities, converted to the edge's scale at the baseline (first-order exact).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.replication.findings import Finding
from twinloop.replication.history import ROW_ORDER, KpiHistory
from twinloop.replication.whatif.graph import CausalEdge

FloatArray = NDArray[np.float64]
Scale = Literal["elasticity", "semi_elasticity", "log_slope", "slope"]
Source = Literal["history", "declared", "prior"]
ChosenBy = Literal["likelihood", "transform", "elasticity"]
Transform = Literal["auto", "log", "linear"]
# Vuong's test at the 5% level (two-sided): closer than this, the forms are indistinguishable.
VUONG_Z = 1.959963984540054


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
    chosen_by: ChosenBy = Field(
        default="transform",
        description="likelihood: the equation's form (log or linear) was chosen from the data; "
        "transform: fixed by the setting; elasticity: a declared or prior elasticity.",
    )
    log_likelihood_ratio: float | None = Field(
        default=None,
        description="log L(log form) - log L(linear form) of the child's equation on the fit "
        "rows, both on the child's own scale (> 0 favours log).",
    )
    form_z: float | None = Field(
        default=None,
        description="Vuong's z of that ratio; |z| below the 97.5% normal quantile keeps log.",
    )


@dataclass(frozen=True)
class NodeModel:
    """One structural equation: parents, strengths and covariance, and the scale of each term."""

    parents: tuple[str, ...]
    coef: FloatArray  # strengths in the edge scales, parents order
    cov: FloatArray
    edges: tuple[EdgeStrength, ...]
    child_log: bool
    parent_log: tuple[bool, ...]
    intercept: float = math.nan  # fitted equations only: what abduction needs


@dataclass(frozen=True)
class FitInput:
    """What a fit needs besides the edges: the history, and how to read it."""

    history: KpiHistory
    fit_on: Literal["levels", "differences"]
    covariates: tuple[str, ...] = ()  # observed common causes adjusted for, not propagated


def choose_scales(
    base: Mapping[str, float],
    history: KpiHistory | None,
    transform: Transform,
    nodes: set[str],
) -> dict[str, bool]:
    """Which metrics may be modelled on the log scale (strictly positive in base and history)."""
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
    transform: Transform,
    fit: FitInput | None,
    source: Literal["declared", "default"],
    findings: list[Finding],
) -> NodeModel:
    """The node's equation: fitted (form chosen by likelihood under ``auto``) or from priors."""
    fixed = [e for e in edges if e.strength is not None and source == "declared"]
    free = [e for e in edges if e not in fixed]
    needed = [node] + [e.parent for e in edges]
    history = fit.history if fit is not None else None
    fittable = history is not None and all(n in history.metrics for n in needed)
    if free and fittable and fit is not None:
        logged = _fitted(node, fixed, free, base, log, fit)
        if transform != "auto" or not any(log[n] for n in needed):
            return logged[0]
        linear = _fitted(node, fixed, free, base, {n: False for n in log}, fit)
        ratio, z = _vuong(logged[1], linear[1])
        best = linear[0] if z < -VUONG_Z else logged[0]
        tagged = tuple(
            e.model_copy(
                update={"chosen_by": "likelihood", "log_likelihood_ratio": ratio, "form_z": z}
            )
            for e in best.edges
        )
        return replace(best, edges=tagged)
    return _prior_model(node, edges, free, base, log, history, source, findings)


def _prior_model(
    node: str,
    edges: list[CausalEdge],
    free: list[CausalEdge],
    base: Mapping[str, float],
    log: Mapping[str, bool],
    history: KpiHistory | None,
    source: Literal["declared", "default"],
    findings: list[Finding],
) -> NodeModel:
    """Declared or prior elasticities, converted to the edge scales at the baseline."""
    unknown = [e for e in free if e.strength is None]
    needed = [node] + [e.parent for e in edges]
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
                chosen_by="elasticity",
            )
        )
    return NodeModel(
        tuple(e.parent for e in edges),
        np.array(coef),
        np.diag(np.square(sd)),
        tuple(out),
        log[node],
        tuple(log[e.parent] for e in edges),
    )


def _series(history: KpiHistory, name: str, log: bool, lag: int = 0) -> FloatArray:
    """The metric on its scale, shifted ``lag`` rows later (a lagged parent)."""
    vals = np.asarray(history.metrics[name], dtype=np.float64)
    scaled = np.log(np.where(vals > 0, vals, np.nan)) if log else vals.copy()
    if lag:
        scaled = np.concatenate([np.full(min(lag, scaled.size), np.nan), scaled[:-lag]])
    return scaled


def _fitted(
    node: str,
    fixed: list[CausalEdge],
    free: list[CausalEdge],
    base: Mapping[str, float],
    log: Mapping[str, bool],
    fit: FitInput,
) -> tuple[NodeModel, FloatArray]:
    """OLS of the node on its free parents (declared strengths on the left-hand side) and each
    row's Gaussian log-likelihood of the node's value on its own scale."""
    history = fit.history
    lagged = next((e for e in free if e.lag), None)
    if lagged is not None and history.timestamp_column == ROW_ORDER:
        raise InvalidInput(
            "history.timestamp",
            f"the edge {lagged.parent} -> {node} @ {lagged.lag} needs a timestamp column; "
            "the history has none",
        )
    y = _series(history, node, log[node])
    raw_y = np.asarray(history.metrics[node], dtype=np.float64)
    fixed_coef = []
    for e in fixed:
        _, factor = _conversion(e.parent, node, base, log)
        fixed_coef.append(float(e.strength or 0.0) * factor)
        y = y - fixed_coef[-1] * _series(history, e.parent, log[e.parent], e.lag)
    columns = [_series(history, e.parent, log[e.parent], e.lag) for e in free]
    columns += [_series(history, z, False) for z in fit.covariates]
    x = np.column_stack(columns)
    if fit.fit_on == "differences":
        y, x, raw_y = np.diff(y), np.diff(x, axis=0), raw_y[1:]
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    beta, cov_full, rows, resid = _ols(node, free, y[ok], x[ok])
    sigma2 = float(resid @ resid) / rows
    loglik = -0.5 * (np.log(2.0 * math.pi * sigma2) + resid**2 / sigma2)
    if log[node]:
        loglik = loglik - np.log(raw_y[ok])  # the Jacobian of y -> log y
    edges = [*fixed, *free]
    k = len(edges)
    coef = np.concatenate([np.array(fixed_coef), beta[1 : 1 + len(free)]])
    cov = np.zeros((k, k))
    cov[len(fixed) :, len(fixed) :] = cov_full[1 : 1 + len(free), 1 : 1 + len(free)]
    for i, e in enumerate(fixed):
        _, factor = _conversion(e.parent, node, base, log)
        cov[i, i] = ((e.stderr or 0.0) * factor) ** 2
    out = []
    for i, e in enumerate(edges):
        is_fixed = i < len(fixed)
        scale, factor = _conversion(e.parent, node, base, log, strict=is_fixed)
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
    parents = tuple(e.parent for e in edges)
    model = NodeModel(
        parents,
        coef,
        cov,
        tuple(out),
        log[node],
        tuple(log[p] for p in parents),
        # The level equation's intercept, which abduction needs (not a drift or a lagged fit).
        float(beta[0])
        if fit.fit_on == "levels" and not fit.covariates and not any(e.lag for e in edges)
        else math.nan,
    )
    return model, loglik


def _vuong(log_form: FloatArray, linear_form: FloatArray) -> tuple[float, float]:
    """The log-likelihood ratio of the two forms and Vuong's z (non-nested, same parameters)."""
    d = log_form - linear_form
    ratio = float(d.sum())
    spread = float(d.std(ddof=1)) * math.sqrt(d.size)
    return ratio, ratio / spread if spread > 0 else 0.0


def _ols(
    node: str, free: Sequence[CausalEdge], y: FloatArray, x: FloatArray
) -> tuple[FloatArray, FloatArray, int, FloatArray]:
    """Coefficients (intercept first), their covariance, the rows used and the residuals."""
    rows, k = x.shape
    if rows < k + 3:
        raise InvalidInput(
            "history",
            f"{rows} complete rows to estimate {node} from "
            f"{', '.join(e.parent for e in free)}; need at least {k + 3}",
        )
    for j, e in enumerate(free):
        if np.ptp(x[:, j]) == 0:
            raise InvalidInput(
                f"history.{e.parent}", f"is constant; its effect on {node} cannot be estimated"
            )
    design = np.column_stack([np.ones(rows), x])
    beta: FloatArray = np.linalg.lstsq(design, y, rcond=None)[0].astype(np.float64)
    resid: FloatArray = y - design @ beta
    sigma2 = float(resid @ resid) / (rows - k - 1)
    cov: FloatArray = (sigma2 * np.linalg.pinv(design.T @ design)).astype(np.float64)
    return beta, cov, rows, resid


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
