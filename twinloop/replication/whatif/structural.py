"""The fitted structural model: a metric graph with one equation per metric, and propagation.

``fit_structural`` turns a declared (or default) graph, the base metrics and an optional KPI
history into equations ``f(Y) = a + sum_p b_p g_p(P) + e``, parents first; ``propagate`` sets
some metrics to new values and moves every metric downstream by its equation. Propagation is
written in *shifts* from a reference point, ``f(Y') = f(Y) + sum_p b_p (g_p(P') - g_p(P))``,
which is the same equation with the noise ``e`` held at its value at the reference: the
interventional mean when the reference is the base metrics, and — because every equation has
additive noise on its scale — the exact counterfactual (abduction, then action, then
prediction) when the reference is one unit's observed values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from twinloop.errors import InvalidInput
from twinloop.replication.findings import Finding
from twinloop.replication.history import KpiHistory
from twinloop.replication.whatif.confounders import adjust_for_common_causes
from twinloop.replication.whatif.graph import (
    CausalGraph,
    Domain,
    default_graph,
    project,
    rename_aliases,
    topological,
)
from twinloop.replication.whatif.strengths import (
    EdgeStrength,
    FitInput,
    NodeModel,
    Transform,
    choose_scales,
    node_model,
)

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class StructuralModel:
    """Metrics parents-first, the equation of every non-root metric, and what was noticed."""

    source: Literal["declared", "default"]
    graph: CausalGraph
    order: list[str]
    models: dict[str, NodeModel]
    findings: list[Finding]

    @property
    def edges(self) -> list[EdgeStrength]:
        return [e for m in self.models.values() for e in m.edges]

    def descendants(self, sources: Collection[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(sources)
        while stack:
            node = stack.pop()
            for e in self.graph.edges:
                if e.parent == node and e.child not in seen:
                    seen.add(e.child)
                    stack.append(e.child)
        return seen - set(sources)


def fit_structural(
    base: Mapping[str, float],
    intervened: Collection[str],
    graph: CausalGraph | None,
    history: KpiHistory | None,
    *,
    domain: Domain = "generic",
    transform: Transform = "auto",
    fit_on: Literal["levels", "differences"] = "levels",
) -> StructuralModel:
    """Project the graph onto ``base``, adjust a default graph for observed common causes, and
    fit (or take from priors) every equation not cut by an intervention."""
    if history is not None:
        history.require_single_series()
    source: Literal["declared", "default"] = "declared" if graph is not None else "default"
    full = graph if graph is not None else rename_aliases(default_graph(domain), base)
    topological(full)
    g, findings = project(full, base)
    covariates: dict[str, tuple[str, ...]] = {}
    if history is None:
        # Priors and declared strengths are causal by assumption; confounding only biases fits.
        findings = [f for f in findings if f.code != "unobserved_confounder"]
    else:
        findings += [f for f in history.findings if f.code == "no_timestamp"]
    if history is not None and source == "default":
        adjusted = adjust_for_common_causes(g, full, base, history, intervened)
        g, covariates = adjusted.graph, adjusted.covariates
        done = {
            f.field.removeprefix("history.")
            for f in adjusted.findings
            if f.code == "confounder_adjusted"
        }
        findings = [
            f
            for f in findings
            if not (f.code == "unobserved_confounder" and f.field.removeprefix("graph.") in done)
        ]
        findings += adjusted.findings
    order = topological(g)
    in_graph = set(order)
    for name in base:
        if name not in in_graph:
            findings.append(
                Finding(
                    code="not_in_graph",
                    field=f"base_metrics.{name}",
                    message=f"{name} is not in the causal graph; nothing moves it or is "
                    "moved by it",
                )
            )
    order += [name for name in base if name not in in_graph]
    log = choose_scales(base, history, transform, in_graph)
    models: dict[str, NodeModel] = {}
    for node in order:
        edges = g.parents(node)
        if edges and node not in intervened:
            fit = None if history is None else FitInput(history, fit_on, covariates.get(node, ()))
            models[node] = node_model(node, edges, base, log, transform, fit, source, findings)
    return StructuralModel(source, g, order, models, findings)


def propagate(
    model: StructuralModel,
    reference: Mapping[str, float],
    targets: Mapping[str, float],
    coefs: Mapping[str, FloatArray] | None = None,
) -> dict[str, FloatArray]:
    """Every metric after setting ``targets``, parents first, noise held at the reference.

    ``coefs[node]`` is (draws × parents); by default the point strengths (one draw).
    """
    if coefs is None:
        coefs = {k: m.coef[None, :] for k, m in model.models.items()}
    draws = next((c.shape[0] for c in coefs.values()), 1)
    values: dict[str, FloatArray] = {}
    for node in model.order:
        ref = reference[node]
        if node in targets:
            values[node] = np.full(draws, targets[node])
        elif node in coefs:
            eq = model.models[node]
            total = np.zeros(draws)
            for i, parent in enumerate(eq.parents):
                p_ref, p_new = reference[parent], values[parent]
                step = np.log(p_new / p_ref) if eq.parent_log[i] else p_new - p_ref
                total = total + coefs[node][:, i] * step
            values[node] = ref * np.exp(total) if eq.child_log else ref + total
        else:
            values[node] = np.full(draws, ref)
    return values


def simulate(
    model: StructuralModel,
    reference: Mapping[str, float],
    targets: Mapping[str, float],
    draws: int,
    seed: int,
) -> tuple[dict[str, float], dict[str, FloatArray]]:
    """The point prediction and ``draws`` predictions under the strengths' uncertainty."""
    point = {k: float(v[0]) for k, v in propagate(model, reference, targets).items()}
    rng = np.random.default_rng(seed)
    drawn = {k: _normal_draws(rng, m.coef, m.cov, draws) for k, m in model.models.items()}
    return point, propagate(model, reference, targets, drawn)


def check_log_positive(model: StructuralModel, values: Mapping[str, float], field: str) -> None:
    """Values entering a log-scale term must be positive (an observed unit, a target)."""
    for eq in model.models.values():
        for parent, is_log in zip(eq.parents, eq.parent_log, strict=True):
            if is_log and values[parent] <= 0:
                raise InvalidInput(
                    f"{field}.{parent}",
                    f"is {values[parent]:g}; the fitted equations use log({parent}), "
                    "which needs a positive value",
                )


def _normal_draws(
    rng: np.random.Generator, mean: FloatArray, cov: FloatArray, size: int
) -> FloatArray:
    """The numbers of ``rng.multivariate_normal(mean, cov, size, method="eigh")``, without its
    per-call validity checks (a fitted covariance is symmetric PSD by construction)."""
    s, u = np.linalg.eigh(cov)
    z = rng.standard_normal((size, mean.shape[0]))
    out: FloatArray = mean + z @ (u * np.sqrt(np.abs(s))).T
    return out
