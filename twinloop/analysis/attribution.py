"""Loss attribution: each upstream cause's part of the key metric's loss, through a fitted graph.

A loser that is slower *and* less accurate loses revenue through both; "which part is whose"
has an answer once the metric chains are a fitted structural model. From per-unit rows (winner's
and loser's units pooled) every node of the chains through the key metric is regressed on its
parents in the chain graph (OLS, levels: with linear equations the mean of each node is the same
equation of its parents' means, so the decomposition below is exact for a linear truth). The
roots of the chains are the causes; moving root r from the winner's to the loser's mean moves
the key metric, and the **Shapley value** over the roots,

    phi_r = sum_{S ⊆ R \\ {r}} |S|! (|R|-|S|-1)! / |R|! · [F(S ∪ {r}) - F(S)],

with ``F(S)`` the key metric's mean with the roots in S at the loser's values and the others at
the winner's, does not depend on the order the causes are moved in. The contributions sum to
the modelled change; what the graph does not carry (a direct effect of the variant on a later
node, model error) is its own ``unexplained`` term, so all terms sum to the observed change.
Intervals: delta method over the fitted slopes (OLS covariance) and the roots' loser-minus-winner
effects (the statistics engine's standard errors), treated as independent; deterministic.

Without per-unit rows the split between several chains is not identifiable from the means
alone and the analyzer keeps its equal split (said in a note).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from scipy import stats

from twinloop.analysis.chains import MetricChain, node_of
from twinloop.analysis.decision import Decision
from twinloop.analysis.inputs import MetricInput
from twinloop.contract import FrozenModel
from twinloop.stats.rawdata import RawTable
from twinloop.stats.results import Interval, MetricComparison

FloatArray = NDArray[np.float64]
UNEXPLAINED = "unexplained"
_BLOCK = 1_000_000  # rows per block of the cross-products


class FittedLink(FrozenModel):
    """One edge of the chain graph as fitted on the units: child = a + slope · parent + …"""

    parent: str
    child: str
    slope: float
    stderr: float
    rows: int


class Contribution(FrozenModel):
    """One cause's part of the key metric's change (loser minus winner), with its interval."""

    cause: str = Field(description="the root metric moved, or 'unexplained'")
    chains: tuple[str, ...] = Field(description="ids of the root causes it stands for")
    winner_value: float | None
    loser_value: float | None
    contribution: float = Field(description="change of the key metric, in its units")
    interval: Interval | None
    share: float = Field(description="contribution / total change (the terms sum to 1)")


class LossAttribution(FrozenModel):
    """The key metric's change split over the upstream causes; the terms sum to the total."""

    key_metric: str
    method: Literal["shapley_fitted_graph"] = "shapley_fitted_graph"
    total: float = Field(description="loser mean minus winner mean of the key metric")
    links: tuple[FittedLink, ...]
    contributions: tuple[Contribution, ...]


def attribute_loss(
    chains: Sequence[MetricChain],
    decision: Decision,
    metrics: Mapping[str, MetricInput],
    raw: RawTable | None,
) -> LossAttribution | None:
    """The Shapley split of the key metric's change over the chains' roots (None when there is
    no per-unit data, no key metric, or no chain with a root upstream of it)."""
    key = decision.key_metric
    if raw is None or key is None or key not in metrics or key not in raw.metrics:
        return None
    key_node = node_of(metrics[key])
    paths: dict[str, list[str]] = {}
    for chain in chains:
        if not chain.reaches_key or chain.nodes[0] == key_node:
            continue
        names = [link.metric for link in chain.links[: chain.nodes.index(key_node) + 1]]
        names[-1] = key
        if all(n in raw.metrics for n in names):
            paths["chain:" + ">".join(chain.nodes)] = names
    if not paths:
        return None
    parents: dict[str, list[str]] = {}
    for names in paths.values():
        for parent, child in itertools.pairwise(names):
            if parent not in parents.setdefault(child, []):
                parents[child].append(parent)
    roots = list(dict.fromkeys(names[0] for names in paths.values()))
    comparisons = {c.metric: c for c in decision.comparisons}
    effects = {r: _effect(comparisons.get(r)) for r in [*roots, key]}
    known = {r: e for r, e in effects.items() if e is not None}
    if len(known) < len(effects) or known[key][0] == 0.0:
        return None  # nothing to split, or a cause without an estimated effect
    units = _units(raw, decision)
    fits = {child: _ols(raw, units, child, ps) for child, ps in parents.items()}
    return _decompose(key, paths, roots, parents, fits, comparisons, known)


def _decompose(
    key: str,
    paths: Mapping[str, list[str]],
    roots: list[str],
    parents: Mapping[str, list[str]],
    fits: Mapping[str, tuple[FloatArray, FloatArray, int]],
    comparisons: Mapping[str, MetricComparison],
    effects: Mapping[str, tuple[float, float]],
) -> LossAttribution:
    order = _order(parents, roots)
    slots = [(child, j) for child in order if child in fits for j in range(len(parents[child]))]
    theta = np.array([fits[c][0][j] for c, j in slots] + [effects[r][0] for r in roots])
    cov = _covariance(order, fits, [effects[r][1] for r in roots], theta.size)
    winner = [comparisons[r].control.mean or 0.0 for r in roots]

    def shapley(vector: FloatArray) -> FloatArray:
        slopes = {slot: vector[n] for n, slot in enumerate(slots)}
        deltas = vector[len(slots) :]
        return _shapley(
            lambda moved: _key_change(key, order, parents, slopes, roots, deltas, moved),
            len(roots),
        )

    phi = shapley(theta)
    jac = _jacobian(shapley, theta)
    phi_cov = jac @ cov @ jac.T
    key_cmp = comparisons[key]
    total, total_se = effects[key]
    level = _level(key_cmp)
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    by_root = {r: tuple(cid for cid, names in paths.items() if names[0] == r) for r in roots}
    terms = []
    for j, r in enumerate(roots):
        sd = math.sqrt(max(phi_cov[j, j], 0.0))
        terms.append(
            Contribution(
                cause=r,
                chains=by_root[r],
                winner_value=winner[j],
                loser_value=comparisons[r].treatment.mean,
                contribution=float(phi[j]),
                interval=Interval(lower=phi[j] - z * sd, upper=phi[j] + z * sd, level=level),
                share=float(phi[j] / total),
            )
        )
    rest = total - float(phi.sum())
    rest_sd = math.sqrt(total_se**2 + max(float(phi_cov.sum()), 0.0))
    terms.append(
        Contribution(
            cause=UNEXPLAINED,
            chains=(),
            winner_value=None,
            loser_value=None,
            contribution=rest,
            interval=Interval(lower=rest - z * rest_sd, upper=rest + z * rest_sd, level=level),
            share=rest / total,
        )
    )
    links = tuple(
        FittedLink(
            parent=p,
            child=child,
            slope=float(fits[child][0][j]),
            stderr=float(math.sqrt(max(fits[child][1][j, j], 0.0))),
            rows=fits[child][2],
        )
        for child in order
        if child in fits
        for j, p in enumerate(parents[child])
    )
    return LossAttribution(key_metric=key, total=total, links=links, contributions=tuple(terms))


def _covariance(
    order: list[str],
    fits: Mapping[str, tuple[FloatArray, FloatArray, int]],
    root_se: list[float],
    size: int,
) -> FloatArray:
    """Block-diagonal: each equation's slope covariance, then the roots' effect variances."""
    cov = np.zeros((size, size))
    i = 0
    for child in order:
        if child in fits:
            k = fits[child][0].size
            cov[i : i + k, i : i + k] = fits[child][1]
            i += k
    for j, se in enumerate(root_se):
        cov[i + j, i + j] = se**2
    return cov


def _key_change(
    key: str,
    order: list[str],
    parents: Mapping[str, list[str]],
    slopes: Mapping[tuple[str, int], float],
    roots: list[str],
    deltas: FloatArray,
    moved: frozenset[int],
) -> float:
    """The key metric's mean change with the roots in ``moved`` at the loser's values.

    Written in changes from the winner's means: intercepts cancel in a linear model."""
    change = {r: (float(deltas[j]) if j in moved else 0.0) for j, r in enumerate(roots)}
    for child in order:
        if child in parents and child not in change:
            change[child] = sum(
                slopes[(child, j)] * change[p] for j, p in enumerate(parents[child])
            )
    return change[key]


def _shapley(value: Callable[[frozenset[int]], float], k: int) -> FloatArray:
    """Exact Shapley values of ``k`` players (every subset; k is the number of chain roots)."""
    full = math.factorial(k)
    phi = np.zeros(k)
    cache: dict[frozenset[int], float] = {}

    def v(s: frozenset[int]) -> float:
        if s not in cache:
            cache[s] = value(s)
        return cache[s]

    for j in range(k):
        others = [i for i in range(k) if i != j]
        for size in range(k):
            weight = math.factorial(size) * math.factorial(k - size - 1) / full
            for subset in itertools.combinations(others, size):
                s = frozenset(subset)
                phi[j] += weight * (v(s | {j}) - v(s))
    return phi


def _jacobian(f: Callable[[FloatArray], FloatArray], x: FloatArray) -> FloatArray:
    """Central differences, step relative to each parameter's size."""
    base = f(x)
    jac = np.zeros((base.size, x.size))
    for i in range(x.size):
        h = 1e-6 * max(abs(float(x[i])), 1e-8)
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        jac[:, i] = (f(up) - f(down)) / (2.0 * h)
    return jac


def _order(parents: Mapping[str, list[str]], roots: list[str]) -> list[str]:
    """Nodes parents-first (the chain graph is acyclic)."""
    order = list(roots)
    pending = [c for c in parents if c not in order]
    while pending:
        ready = [c for c in pending if all(p in order for p in parents[c])]
        order += ready
        pending = [c for c in pending if c not in ready]
    return order


def _units(raw: RawTable, decision: Decision) -> NDArray[np.bool_] | None:
    """The winner's and the loser's rows (None: every row, the test has two variants)."""
    names = raw.variant.categories
    codes = [names.index(v) for v in (decision.winner, decision.loser) if v in names]
    if len(names) == len(codes):
        return None
    mask = np.zeros(raw.n_rows, dtype=bool)
    for code in codes:
        mask |= raw.variant.codes == code
    return mask


def _ols(
    raw: RawTable, units: NDArray[np.bool_] | None, child: str, parents: list[str]
) -> tuple[FloatArray, FloatArray, int]:
    """Slopes of child on its parents, their covariance, and the rows used.

    From centred cross-products accumulated over blocks of rows: ten million units never become
    one (rows × parents) design matrix."""
    names = [*parents, child]
    ok = np.ones(raw.n_rows, dtype=bool) if units is None else units.copy()
    for name in names:
        ok &= np.isfinite(raw.metrics[name])
    rows, k = int(np.count_nonzero(ok)), len(names)
    if rows <= k:
        return np.zeros(k - 1), np.zeros((k - 1, k - 1)), rows
    every = rows == ok.size
    first = np.flatnonzero(ok[: min(ok.size, _BLOCK)])[:1000]
    shift = np.array([raw.metrics[n][first].mean() if first.size else 0.0 for n in names])
    total = np.zeros((k + 1, k + 1))
    # Slices and a boolean mask per block (gathering by index was most of the cost); a column
    # of ones in front so one matrix product gives the sums too, columns contiguous.
    for start in range(0, ok.size, _BLOCK):
        part = slice(start, start + _BLOCK)
        keep = None if every else ok[part]
        size = (min(start + _BLOCK, ok.size) - start) if keep is None else int(keep.sum())
        block = np.ones((size, k + 1), order="F")
        for j, n in enumerate(names):
            column = raw.metrics[n][part]
            block[:, j + 1] = (column if keep is None else column[keep]) - shift[j]
        total += block.T @ block
    sums, cross = total[0, 1:], total[1:, 1:]
    mean = sums / rows
    centred = cross - rows * np.outer(mean, mean)
    sxx, sxy = centred[:-1, :-1], centred[:-1, -1]
    slopes = np.linalg.lstsq(sxx, sxy, rcond=None)[0]
    rss = max(float(centred[-1, -1] - slopes @ sxy), 0.0)
    cov = rss / (rows - k) * np.linalg.pinv(sxx)
    return slopes.astype(np.float64), cov.astype(np.float64), rows


def _effect(comparison: MetricComparison | None) -> tuple[float, float] | None:
    """The loser-minus-winner effect and its standard error (None when not estimated)."""
    if comparison is None or comparison.absolute is None:
        return None
    se = comparison.absolute.std_error
    return comparison.absolute.estimate, float(se) if se is not None else 0.0


def _level(comparison: MetricComparison) -> float:
    interval = comparison.absolute.interval if comparison.absolute is not None else None
    return interval.level if interval is not None else 0.95
