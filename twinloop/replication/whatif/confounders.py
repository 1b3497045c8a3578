"""Observed common causes: history columns that confound a default graph's fitted edges.

With no graph declared, a column of the history that moves both a cause and its effect (traffic
raises latency and, directly, conversion) is a confounder the default graph may not route
through the effect: regressing conversion on latency alone then credits latency with traffic's
effect, and the what-if is worse than no model. For each fitted equation ``Y ~ parents`` every
other history column Z is tested: Z is correlated with a parent X (Pearson) and Z predicts Y
beyond the parents (t-test of Z in ``Y ~ parents + Z``), both at ``ALPHA`` Bonferroni-corrected
over the candidates. Data alone cannot tell a common cause from a mediator (X -> Z -> Y), so:

* Z in the default graph and not downstream of X or Y there: a common cause by the graph;
  it is **adjusted for** (an edge Z -> Y when Z has a base value, else a covariate of the fit),
  finding ``confounder_adjusted``;
* Z not in the graph: finding ``possible_confounder`` naming Z and the edge X -> Y at risk (declare
  a graph with Z to adjust for it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from twinloop.replication.findings import Finding
from twinloop.replication.history import KpiHistory
from twinloop.replication.whatif.graph import CausalEdge, CausalGraph

ALPHA = 0.01


@dataclass(frozen=True)
class Adjustment:
    """The graph with common causes added as parents, and covariates per node."""

    graph: CausalGraph
    covariates: dict[str, tuple[str, ...]]
    findings: list[Finding]


def adjust_for_common_causes(
    graph: CausalGraph,
    full: CausalGraph,
    base: Mapping[str, float],
    history: KpiHistory,
    intervened: Collection[str],
) -> Adjustment:
    """Find observed common causes of each fitted edge (see the module docstring)."""
    edges = list(graph.edges)
    covariates: dict[str, tuple[str, ...]] = {}
    findings: list[Finding] = []
    known = set(full.nodes)
    for node in graph.nodes:
        parents = graph.parents(node)
        if node in intervened or not parents or any(e.lag for e in parents):
            continue
        names = [node] + [e.parent for e in parents]
        if not all(n in history.metrics for n in names):
            continue
        downstream = _descendants(full, names) | _descendants(graph, names)
        candidates = [z for z in history.metrics if z not in names and z not in downstream]
        extra: list[str] = []
        for z in candidates:
            tested = _confounds(history, node, [e.parent for e in parents], z, len(candidates))
            if tested is None:
                continue
            parent, r, t = tested
            what = (
                f"{z} correlates with {parent} (r = {r:+.2f}) and moves {node} beyond its "
                f"graph parents (t = {t:+.1f})"
            )
            if z in known:
                if z in base:
                    edges.append(CausalEdge(parent=z, child=node))
                    how = f"added the edge {z} -> {node}"
                else:
                    extra.append(z)
                    how = f"{z} is held fixed in the fit of {node}"
                findings.append(
                    Finding(
                        code="confounder_adjusted",
                        field=f"history.{z}",
                        message=f"{what}: a common cause by the default graph; {how} so "
                        f"{parent} -> {node} is not confounded",
                    )
                )
            else:
                findings.append(
                    Finding(
                        code="possible_confounder",
                        field=f"history.{z}",
                        message=f"{what}: the edge {parent} -> {node} may be confounded; {z} "
                        "is not in the default graph, so it was not adjusted for (declare a "
                        "graph with it if it is a common cause)",
                    )
                )
        if extra:
            covariates[node] = tuple(extra)
    return Adjustment(CausalGraph(edges=tuple(edges)), covariates, findings)


def _confounds(
    history: KpiHistory, node: str, parents: list[str], z: str, tests: int
) -> tuple[str, float, float] | None:
    """(the parent Z correlates with most, r, t of Z) when Z passes both tests, else None."""
    cols = np.column_stack([history.metrics[n] for n in [node, *parents, z]])
    cols = cols[np.isfinite(cols).all(axis=1)]
    rows = cols.shape[0]
    k = len(parents)
    if rows < k + 5 or np.ptp(cols[:, -1]) == 0:
        return None
    alpha = ALPHA / max(tests, 1)
    best: tuple[str, float] | None = None
    for j, parent in enumerate(parents):
        if np.ptp(cols[:, 1 + j]) == 0:
            continue
        r, p = stats.pearsonr(cols[:, 1 + j], cols[:, -1])
        if p < alpha and (best is None or abs(r) > abs(best[1])):
            best = (parent, float(r))
    if best is None:
        return None
    design = np.column_stack([np.ones(rows), cols[:, 1:]])
    beta, *_ = np.linalg.lstsq(design, cols[:, 0], rcond=None)
    resid = cols[:, 0] - design @ beta
    dof = rows - design.shape[1]
    sigma2 = float(resid @ resid) / dof
    se = float(np.sqrt(sigma2 * np.linalg.pinv(design.T @ design)[-1, -1]))
    if se == 0:
        return None
    t = float(beta[-1]) / se
    if 2.0 * stats.t.sf(abs(t), dof) >= alpha:
        return None
    return best[0], best[1], t


def _descendants(graph: CausalGraph, sources: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(sources)
    while stack:
        node = stack.pop()
        for e in graph.edges:
            if e.parent == node and e.child not in seen:
                seen.add(e.child)
                stack.append(e.child)
    return seen
