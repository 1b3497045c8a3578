"""The greedy likelihood search over the cuboid lattice that picks the explaining elements.

An element ``e`` is the hypothesis "the leaves of ``e`` moved together": their deviation scores
scatter around a common shift ``delta`` with a spread ``tau`` (the ripple effect, allowed to be
uneven), ``d_i ~ N(delta, s_i² + tau²)``, against the null ``d_i ~ N(0, s_i²)``. Its evidence
is the log-likelihood ratio, maximised over ``delta`` in closed form and over a small grid of
``tau``; it needs only five sums per element, which one sparse product over the lattice yields
for every element at once. Normal leaves inside an element cost evidence (each pays the Occam
factor ``-½ log(1 + tau²/s²)`` and pulls ``delta`` toward 0), so a parent holding a single
anomalous child scores below that child, and a child missing anomalous siblings scores below
their parent — the generalised potential score of HotSpot/Squeeze, as a likelihood.

Naming an element costs ``log(#cuboids in its layer) + log(#elements in its cuboid) +
log(1/significance)`` nats (its description length plus the false-alarm price). Elements are
picked greedily by evidence minus cost, the picked element's leaves leaving the pool, until
nothing pays for its name. One correction keeps the greedy honest: a parent that holds several
anomalous children *and* a normal majority beats each child alone, since it takes all their
evidence in one step. So before a pick is committed, the same search is run on its descendants;
if they together gain more, and the part of the parent they leave out is normal and holds most
of its (informative) leaves, the best descendant replaces the parent and is checked the same
way. A parent most of whose leaves moved stays the description even where the rest did not:
the majority rule of RiskLoc's risk score, and what an operator would name.
"""

from __future__ import annotations

import math

import numpy as np

from twinloop.analysis.localizer.cuboids import Lattice
from twinloop.analysis.localizer.evidence import TRIM_Z, LeafEvidence
from twinloop.analysis.localizer.leaves import FloatArray, IntArray
from twinloop.analysis.localizer.models import LocalizerSettings

#: Within-element spreads of the deviation score tried for every element (0 = exact ripple).
TAU_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
_PER_TAU = 4

Pick = tuple[int, float, float]  # (element, evidence in nats, evidence minus price)


def leaf_stats(ev: LeafEvidence) -> FloatArray:
    """Per-leaf sufficient statistics: ``d²/2s²``, then per tau ``-½log(1+tau²/s²), w, wd, wd²``
    with ``w = 1/(s² + tau²)``; rows of uninformative leaves are zero."""
    stats = np.zeros((ev.d.shape[0], 1 + _PER_TAU * len(TAU_GRID)))
    ok = ev.informative
    d, s2 = ev.d[ok], ev.s2[ok]
    stats[ok, 0] = d**2 / (2.0 * s2)
    for t, tau in enumerate(TAU_GRID):
        w = 1.0 / (s2 + tau**2)
        col = 1 + _PER_TAU * t
        stats[ok, col] = -0.5 * np.log1p(tau**2 / s2)
        stats[ok, col + 1] = w
        stats[ok, col + 2] = w * d
        stats[ok, col + 3] = w * d**2
    return stats


def element_llr(sums: FloatArray, direction: str = "both") -> tuple[FloatArray, FloatArray]:
    """Log-likelihood ratio of elements from their summed leaf statistics (rows), maximised
    over shift and spread (never below 0), and the maximising shift. ``direction`` keeps
    only drops (down) or rises (up)."""
    m = sums.shape[0]
    per_tau = sums[:, 1:].reshape(m, len(TAU_GRID), _PER_TAU)
    occam, w, wd, wd2 = (per_tau[:, :, i] for i in range(_PER_TAU))
    has = w > 0
    delta = np.zeros_like(w)
    np.divide(wd, w, out=delta, where=has)
    llr = np.where(has, occam + sums[:, :1] - 0.5 * (wd2 - delta * wd), 0.0)
    if direction == "down":
        llr = np.where(delta < 0, llr, 0.0)
    elif direction == "up":
        llr = np.where(delta > 0, llr, 0.0)
    pick = np.argmax(llr, axis=1)
    rows = np.arange(m)
    return np.maximum(llr[rows, pick], 0.0), delta[rows, pick]


class GreedySearch:
    """One search over one lattice: the leaves still unexplained and the elements set aside."""

    def __init__(self, ev: LeafEvidence, lattice: Lattice, settings: LocalizerSettings) -> None:
        self.lattice = lattice
        self.settings = settings
        self.stats = leaf_stats(ev)
        self.price = lattice.cost + math.log(1.0 / settings.significance)
        self.weight = ev.informative.astype(np.float64)  # 1 while a leaf is unexplained
        # Per-element sums over the unexplained leaves, kept up to date by subtracting the
        # leaves each pick explains (a column slice), not by re-multiplying the whole lattice.
        self.by_leaf = lattice.members.tocsc()
        self.sums = np.asarray(lattice.members @ (self.stats * self.weight[:, None]))
        self.active = np.asarray(lattice.members @ self.weight).ravel()
        self.taken = np.zeros(lattice.size, dtype=bool)
        self.sizes = np.asarray(lattice.members.sum(axis=1)).ravel()
        # Leaves within TRIM_Z noise sds of their forecast: normal-looking on their own.
        self.calm = (ev.informative & (ev.d**2 < TRIM_Z**2 * ev.s2)).astype(np.float64)

    def run(self) -> list[Pick]:
        """Pick elements until none pays for its name or ``max_elements`` are picked."""
        picks: list[Pick] = []
        while len(picks) < self.settings.max_elements and self.weight.any():
            pick = self._best(None)
            if pick is None:
                break
            while (child := self._better_descendant(pick)) is not None:
                self.taken[pick[0]] = True  # set aside: its descendants explain it better
                pick = child
            self._commit(pick)
            picks.append(pick)
        return picks

    def _scores(self, rows: IntArray | None) -> tuple[FloatArray, FloatArray]:
        sums = self.sums if rows is None else self.sums[rows]
        llr, _ = element_llr(sums, self.settings.direction)
        taken = self.taken if rows is None else self.taken[rows]
        price = self.price if rows is None else self.price[rows]
        active = self.active if rows is None else self.active[rows]
        # An element with no unexplained leaf left has nothing to say, whatever rounding
        # the running sums carry.
        return llr, np.where(taken | (active < 0.5), -np.inf, llr - price)

    def _best(self, rows: IntArray | None) -> Pick | None:
        llr, gain = self._scores(rows)
        if gain.size == 0:
            return None
        i = int(np.argmax(gain))
        if not gain[i] > 0:
            return None
        element = i if rows is None else int(rows[i])
        return element, float(llr[i]), float(gain[i])

    def _commit(self, pick: Pick) -> None:
        leaves = self.lattice.leaves_of(pick[0])
        leaves = leaves[self.weight[leaves] > 0]
        self.taken[pick[0]] = True
        if leaves.size:
            gone = self.by_leaf[:, leaves]
            self.sums -= np.asarray(gone @ self.stats[leaves])
            self.active -= np.asarray(gone.sum(axis=1)).ravel()
            self.weight[leaves] = 0.0

    def _descendants(self, element: int) -> IntArray:
        """Elements whose leaves are a strict subset of ``element``'s."""
        inside = np.zeros(self.lattice.members.shape[1])
        inside[self.lattice.leaves_of(element)] = 1.0
        counts = self.lattice.members @ inside
        # A strict subset: elements of other cuboids can share the very same leaves.
        size = self.sizes[element]
        return np.flatnonzero((np.abs(counts - self.sizes) < 0.5) & (self.sizes < size - 0.5))

    def _better_descendant(self, pick: Pick) -> Pick | None:
        """The descendant to pick instead of ``pick``, or None when the parent should stand."""
        element, _, gain = pick
        leaves = self.lattice.leaves_of(element)
        unexplained = self.weight[leaves]
        if float((unexplained * self.calm[leaves]).sum()) <= 0.5 * float(unexplained.sum()):
            # Most of the parent's leaves are anomalous by themselves: no normal majority can
            # be left out, so the parent stands (and the look-ahead is skipped).
            return None
        rows = self._descendants(element)
        if rows.size == 0:
            return None
        saved = (self.weight.copy(), self.sums.copy(), self.active.copy(), self.taken.copy())
        inner: list[Pick] = []
        while len(inner) < self.settings.max_elements:
            found = self._best(rows)
            if found is None:
                break
            while (child := self._better_descendant(found)) is not None:
                self.taken[found[0]] = True
                found = child
            inner.append(found)
            self._commit(found)
        inside = np.zeros_like(self.weight)
        inside[leaves] = saved[0][leaves]
        rest = inside * self.weight  # the parent's leaves its descendants left out
        self.weight, self.sums, self.active, self.taken = saved
        if not inner or sum(g for _, _, g in inner) <= gain:
            return None
        if float(rest.sum()) <= 0.5 * float(inside.sum()):
            return None  # most of the parent moved: it stays the description
        if not self._is_normal(rest, float(self.price[element])):
            return None  # the rest moved too, by another amount: uneven, not separate
        return inner[0]

    def _is_normal(self, leaves: FloatArray, price: float) -> bool:
        """Whether ``leaves`` (weights) hold no anomaly worth ``price`` nats."""
        if not leaves.any():
            return False
        sums = (self.stats * leaves[:, None]).sum(axis=0, keepdims=True)
        llr, _ = element_llr(sums)
        return bool(llr[0] <= price)


def search(ev: LeafEvidence, lattice: Lattice, settings: LocalizerSettings) -> list[Pick]:
    """The picked elements, in order: ``(element, evidence, evidence minus price)``."""
    return GreedySearch(ev, lattice, settings).run()


__all__ = ["TAU_GRID", "GreedySearch", "Pick", "element_llr", "leaf_stats", "search"]
