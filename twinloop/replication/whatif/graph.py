"""Causal graphs of business metrics: declared or per-domain default DAGs, checked and projected.

A graph says which metric moves which (``latency -> satisfaction``); a what-if propagates an
intervention only along these edges, which is what makes it causal rather than correlational.
Edge ``strength`` values given here are **elasticities** (per cent change of the child per per
cent change of the parent, all else fixed); ``stderr`` is their uncertainty. The default graphs
carry priors: accounting identities (revenue = conversions × order value) with no uncertainty,
and behavioural links (accuracy -> satisfaction) with wide ones; a history replaces them.

When a graph names a metric the user did not supply, it is projected out: a mediator's parents
are joined to its children (strengths multiply along the path, parallel paths add), a root cause
with several children is dropped and reported as an unobserved confounder.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from twinloop.contract import FrozenModel, invalid_input
from twinloop.errors import InvalidInput
from twinloop.replication.findings import Finding

Domain = Literal["generic", "marketing", "sales", "customer_success", "analytics"]

# The simulator's KPI names (twinloop.sim.kpis) and common spellings of the default nodes.
ALIASES: dict[str, tuple[str, ...]] = {
    "accuracy": ("model_accuracy",),
    "latency": ("latency_p95_ms", "latency_p50_ms", "latency_ms"),
    "conversion": ("conversion_rate",),
    "calls": ("model_calls",),
    "traffic": ("interactions", "sessions", "visits"),
    "order_value": ("average_order_value", "aov"),
    "churn": ("churned", "churn_rate"),
}


class CausalEdge(FrozenModel):
    """``parent`` causes ``child``; an optional elasticity with its standard error."""

    parent: str = Field(min_length=1)
    child: str = Field(min_length=1)
    strength: float | None = Field(default=None, allow_inf_nan=False)
    stderr: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    lag: int = Field(
        default=0,
        ge=0,
        le=10_000,
        description="Steps by which the child responds: the fit pairs child[t] with "
        "parent[t - lag]; the what-if reports the sustained (long-run) effect.",
    )


class CausalGraph(FrozenModel):
    """A set of directed edges between metric names (acyclicity is checked by ``topological``).

    Edges may also be written ``"a -> b"``, ``"a -> b @ 2"`` (child responds 2 steps later) or
    ``["a", "b"]`` when the graph is read from JSON.
    """

    edges: tuple[CausalEdge, ...]

    @model_validator(mode="before")
    @classmethod
    def _short_edges(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("edges"), list | tuple):
            edges = []
            for edge in data["edges"]:
                if isinstance(edge, str) and "->" in edge:
                    parent, rest = (part.strip() for part in edge.split("->", 1))
                    child, _, lag = (part.strip() for part in rest.partition("@"))
                    short: dict[str, Any] = {"parent": parent, "child": child}
                    if lag:
                        short["lag"] = lag
                    edges.append(short)
                elif isinstance(edge, list | tuple) and len(edge) == 2:
                    edges.append({"parent": edge[0], "child": edge[1]})
                else:
                    edges.append(edge)
            data = {**data, "edges": edges}
        return data

    @property
    def nodes(self) -> list[str]:
        """Metric names in order of first appearance."""
        return list(dict.fromkeys(n for e in self.edges for n in (e.parent, e.child)))

    def parents(self, node: str) -> list[CausalEdge]:
        return [e for e in self.edges if e.child == node]


def graph_from_json(data: object, field: str = "graph") -> CausalGraph:
    """Validate a decoded JSON graph; shape errors become ``InvalidInput`` naming the field."""
    try:
        return CausalGraph.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data, field=field) from None


def topological(graph: CausalGraph, field: str = "graph") -> list[str]:
    """Nodes parents-first; a self-loop, a repeated edge or a cycle is ``InvalidInput``.

    Edges are added in declaration order, so the error names the edge that closes the cycle.
    """
    children: dict[str, list[str]] = {n: [] for n in graph.nodes}
    seen: set[tuple[str, str]] = set()
    for i, edge in enumerate(graph.edges):
        where = f"{field}.edges[{i}]"
        if edge.parent == edge.child:
            raise InvalidInput(where, f"edge {edge.parent!r} -> {edge.child!r} is a self-loop")
        if (edge.parent, edge.child) in seen:
            raise InvalidInput(where, f"edge {edge.parent!r} -> {edge.child!r} is repeated")
        path = _path(children, edge.child, edge.parent)
        if path is not None:
            cycle = " -> ".join([edge.parent, *path])
            raise InvalidInput(
                where, f"edge {edge.parent!r} -> {edge.child!r} closes the cycle {cycle}"
            )
        seen.add((edge.parent, edge.child))
        children[edge.parent].append(edge.child)
    indegree = {n: 0 for n in children}
    for kids in children.values():
        for kid in kids:
            indegree[kid] += 1
    ready = [n for n in children if indegree[n] == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for kid in children[node]:
            indegree[kid] -= 1
            if indegree[kid] == 0:
                ready.append(kid)
    return order


def _path(children: Mapping[str, list[str]], start: str, goal: str) -> list[str] | None:
    """A directed path start -> … -> goal (depth first), or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    visited: set[str] = set()
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        if node in visited:
            continue
        visited.add(node)
        stack.extend((kid, [*path, kid]) for kid in children.get(node, []))
    return None


def _edge(parent: str, child: str, strength: float, stderr: float) -> CausalEdge:
    return CausalEdge(parent=parent, child=child, strength=strength, stderr=stderr)


# Priors, as elasticities. Identities (stderr 0): conversions = traffic × conversion rate,
# revenue = conversions × order value, calls = traffic (one model call per interaction).
# Behavioural links carry a standard error of about half their size: they are guesses to be
# replaced by estimates from the user's history.
_GENERIC = (
    _edge("accuracy", "satisfaction", 0.5, 0.25),
    _edge("latency", "satisfaction", -0.15, 0.08),
    _edge("traffic", "latency", 0.1, 0.1),
    _edge("satisfaction", "conversion", 0.8, 0.4),
    _edge("satisfaction", "churn", -1.0, 0.5),
    _edge("traffic", "conversions", 1.0, 0.0),
    _edge("conversion", "conversions", 1.0, 0.0),
    _edge("conversions", "revenue", 1.0, 0.0),
    _edge("order_value", "revenue", 1.0, 0.0),
    _edge("traffic", "calls", 1.0, 0.0),
    _edge("calls", "cost", 1.0, 0.2),
)
_EXTRA: dict[Domain, tuple[CausalEdge, ...]] = {
    "generic": (),
    "analytics": (),
    # The model picks leads / audiences: a better pick converts more, not only via satisfaction.
    "sales": (_edge("accuracy", "conversion", 0.5, 0.3),),
    "marketing": (_edge("accuracy", "conversion", 0.5, 0.3),),
    # Churned customers stop paying.
    "customer_success": (_edge("churn", "revenue", -0.3, 0.2),),
}


def default_graph(domain: Domain = "generic") -> CausalGraph:
    """The built-in metric graph of a domain, with prior elasticities on every edge."""
    if domain not in _EXTRA:
        raise InvalidInput("settings.domain", f"unknown domain {domain!r}")
    return CausalGraph(edges=_GENERIC + _EXTRA[domain])


def rename_aliases(graph: CausalGraph, names: Iterable[str]) -> CausalGraph:
    """Rename default node names to the user's spelling (``model_accuracy`` for ``accuracy``)."""
    present = set(names)
    mapping = {}
    for canonical, spellings in ALIASES.items():
        if canonical not in present:
            found = next((s for s in spellings if s in present), None)
            if found is not None:
                mapping[canonical] = found
    return CausalGraph(
        edges=tuple(
            e.model_copy(
                update={
                    "parent": mapping.get(e.parent, e.parent),
                    "child": mapping.get(e.child, e.child),
                }
            )
            for e in graph.edges
        )
    )


def project(
    graph: CausalGraph, observed: Iterable[str], field: str = "graph"
) -> tuple[CausalGraph, list[Finding]]:
    """Remove unobserved nodes, keeping every directed path between observed ones."""
    keep = set(observed)
    edges: dict[tuple[str, str], CausalEdge] = {(e.parent, e.child): e for e in graph.edges}
    findings: list[Finding] = []
    for node in topological(graph, field):
        if node in keep:
            continue
        ins = [e for e in edges.values() if e.child == node]
        outs = [e for e in edges.values() if e.parent == node]
        for e in ins + outs:
            del edges[(e.parent, e.child)]
        if not ins and len(outs) > 1:
            findings.append(
                Finding(
                    code="unobserved_confounder",
                    field=f"{field}.{node}",
                    message=f"{node} drives {', '.join(e.child for e in outs)} but has no value; "
                    "estimates from history may carry its confounding",
                )
            )
        elif ins and outs:
            findings.append(
                Finding(
                    code="node_not_observed",
                    field=f"{field}.{node}",
                    message=f"{node} has no value; its paths were joined "
                    f"({', '.join(e.parent for e in ins)} -> {', '.join(e.child for e in outs)})",
                )
            )
        for a in ins:
            for b in outs:
                joined = _compose(a, b)
                key = (a.parent, b.child)
                edges[key] = _parallel(edges[key], joined) if key in edges else joined
    return CausalGraph(edges=tuple(edges.values())), findings


def _compose(a: CausalEdge, b: CausalEdge) -> CausalEdge:
    """a.parent -> b.child through a mediator: elasticities multiply (delta-method stderr)."""
    if a.strength is None or b.strength is None:
        return CausalEdge(parent=a.parent, child=b.child, lag=a.lag + b.lag)
    sa, sb = a.stderr or 0.0, b.stderr or 0.0
    return CausalEdge(
        parent=a.parent,
        child=b.child,
        strength=a.strength * b.strength,
        stderr=math.hypot(a.strength * sb, b.strength * sa),
        lag=a.lag + b.lag,
    )


def _parallel(a: CausalEdge, b: CausalEdge) -> CausalEdge:
    """Two paths between the same pair: their effects add (fitted at the shorter lag)."""
    lag = min(a.lag, b.lag)
    if a.strength is None or b.strength is None:
        return CausalEdge(parent=a.parent, child=a.child, lag=lag)
    return CausalEdge(
        parent=a.parent,
        child=a.child,
        strength=a.strength + b.strength,
        stderr=math.hypot(a.stderr or 0.0, b.stderr or 0.0),
        lag=lag,
    )
