"""Metric chains: failures connected through the causal graph of metrics, with their evidence.

The graph (nodes are metric kinds; ``calls`` is a custom metric named like calls, requests or
interactions)::

    latency ──► satisfaction ──► conversion ──► revenue
    accuracy ──┘
    calls ──► cost

A chain is a maximal path of at least two failing nodes, e.g. latency → satisfaction →
conversion: the loser is slower, its users are less satisfied, fewer of them convert. A node
without any metric in the data is bridged (``via`` names it) so that latency → conversion is
still found when satisfaction was not measured. Each node's effect is real and adverse with
probability ``q = 1 - p_adj / 2`` (one-sided, after the correction across metrics; 0.5 for
untested point values), and a chain's confidence is the product of its nodes' ``q``: the
probability that every link of the story is a real loss, treating the tests as independent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import Field

from twinloop.analysis.failures import FailureType
from twinloop.analysis.inputs import MetricInput
from twinloop.contract import FrozenModel

EDGES: tuple[tuple[str, str], ...] = (
    ("latency", "satisfaction"),
    ("accuracy", "satisfaction"),
    ("satisfaction", "conversion"),
    ("conversion", "revenue"),
    ("calls", "cost"),
)
UNTESTED_PROBABILITY = 0.5
_CALL_WORDS = ("call", "request", "interaction", "query", "invocation")


class ChainLink(FrozenModel):
    """One node of a chain: the metric that stands for it and its observed effect."""

    node: str
    metric: str
    relative_loss: float | None
    p_value_adjusted: float | None
    probability: float = Field(description="P(the adverse effect is real)")
    via: tuple[str, ...] = Field(
        default=(), description="unmeasured nodes bridged between the previous node and this"
    )


class MetricChain(FrozenModel):
    """A path of failures through the metric graph, with its confidence."""

    nodes: tuple[str, ...]
    label: str
    links: tuple[ChainLink, ...]
    confidence: float
    reaches_key: bool = Field(description="the chain passes through the key metric's node")


def node_of(metric: MetricInput) -> str:
    """The graph node a metric stands for: its kind, or ``calls`` for call-count metrics."""
    if metric.kind != "custom":
        return metric.kind
    name = metric.name.lower()
    return "calls" if any(word in name for word in _CALL_WORDS) else "custom"


def probability(failure: FailureType) -> float:
    """``1 - p_adj / 2`` for a tested loss, 0.5 for untested point values."""
    if failure.p_value_adjusted is None:
        return UNTESTED_PROBABILITY
    return 1.0 - failure.p_value_adjusted / 2.0


def metric_chains(
    failures: Sequence[FailureType],
    metrics: Mapping[str, MetricInput],
    key_metric: str | None,
) -> list[MetricChain]:
    """Every maximal chain of failing nodes, most confident first."""
    observed = {node_of(m) for m in metrics.values()}
    links = _projected(observed)
    failing: dict[str, FailureType] = {}
    for failure in failures:
        meta = metrics.get(failure.metric)
        if meta is None:
            continue
        node = node_of(meta)
        current = failing.get(node)
        rank = (probability(failure), failure.relative_loss or 0.0)
        if current is None or rank > (probability(current), current.relative_loss or 0.0):
            failing[node] = failure
    key_node = (
        node_of(metrics[key_metric]) if key_metric is not None and key_metric in metrics else None
    )
    edges = {u: [(v, via) for v, via in links.get(u, []) if v in failing] for u in failing}
    has_parent = {v for u in failing for v, _ in edges[u]}
    chains: list[MetricChain] = []
    for start in sorted(failing):
        if start in has_parent:
            continue
        for path in _paths(start, edges):
            if len(path) >= 2:
                chains.append(_chain(path, failing, key_node))
    chains.sort(key=lambda c: (-c.confidence, -len(c.nodes), c.label))
    return chains


def _projected(observed: set[str]) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Edges between observed nodes, bridging unobserved ones (with the bridged names)."""
    children: dict[str, list[str]] = {}
    for parent, child in EDGES:
        children.setdefault(parent, []).append(child)
    out: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for start in observed:
        stack: list[tuple[str, tuple[str, ...]]] = [(c, ()) for c in children.get(start, [])]
        while stack:
            node, via = stack.pop()
            if node in observed:
                out.setdefault(start, []).append((node, via))
            else:
                stack.extend((c, (*via, node)) for c in children.get(node, []))
    return out


def _paths(
    start: str, edges: Mapping[str, list[tuple[str, tuple[str, ...]]]]
) -> list[list[tuple[str, tuple[str, ...]]]]:
    """Every maximal path from ``start`` (the graph is acyclic), as (node, via) steps."""
    paths: list[list[tuple[str, tuple[str, ...]]]] = []
    stack: list[list[tuple[str, tuple[str, ...]]]] = [[(start, ())]]
    while stack:
        path = stack.pop()
        nexts = edges.get(path[-1][0], [])
        if not nexts:
            paths.append(path)
        stack.extend([*path, step] for step in sorted(nexts, reverse=True))
    return paths


def _chain(
    path: Sequence[tuple[str, tuple[str, ...]]],
    failing: Mapping[str, FailureType],
    key_node: str | None,
) -> MetricChain:
    links = []
    confidence = 1.0
    for node, via in path:
        failure = failing[node]
        q = probability(failure)
        confidence *= q
        links.append(
            ChainLink(
                node=node,
                metric=failure.metric,
                relative_loss=failure.relative_loss,
                p_value_adjusted=failure.p_value_adjusted,
                probability=q,
                via=via,
            )
        )
    nodes = tuple(node for node, _ in path)
    return MetricChain(
        nodes=nodes,
        label=" → ".join(nodes),
        links=tuple(links),
        confidence=confidence,
        reaches_key=key_node in nodes,
    )
