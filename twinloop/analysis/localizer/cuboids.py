"""The lattice of cuboids (subsets of dimensions) and their elements, as one sparse matrix.

An *element* is a combination of values on a *cuboid* (a subset of the dimensions), e.g.
``{a=a3, c=c1}`` on cuboid ``(a, c)``; its leaves are those that agree on those values. All
elements of all searched cuboids are enumerated once and stored as a CSR indicator matrix
``G`` (elements × leaves), so the per-element sums of any per-leaf statistics are one sparse
product ``G @ X`` — the whole lattice is re-scored in a few milliseconds after each pick,
instead of one pandas group-by per cuboid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt
from scipy import sparse

from twinloop.analysis.localizer.leaves import IntArray, LeafTable

#: Above this many (leaf, cuboid) pairs the search stops adding deeper layers.
MAX_LATTICE_ENTRIES = 6_000_000


@dataclass(frozen=True)
class Lattice:
    """Every non-empty element of the searched cuboids, with its leaves and coding cost.

    ``cuboid_of[e]`` indexes ``cuboids``; row ``local[e]`` of ``cuboid_codes[cuboid_of[e]]``
    holds the element's value codes on the cuboid's dims; ``cost[e]`` is
    ``log(#cuboids in its layer) + log(#elements in its cuboid)`` nats — the description
    length of naming it among its peers.
    """

    cuboids: tuple[tuple[int, ...], ...]
    cuboid_of: IntArray
    local: IntArray
    cuboid_codes: tuple[IntArray, ...]
    layer: IntArray
    cost: npt.NDArray[np.float64]
    members: sparse.csr_matrix

    @property
    def size(self) -> int:
        return int(self.cuboid_of.shape[0])

    def codes_of(self, element: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(dims, value codes)`` of one element."""
        c = int(self.cuboid_of[element])
        row = self.cuboid_codes[c][int(self.local[element])]
        return self.cuboids[c], tuple(int(v) for v in row)

    def leaves_of(self, element: int) -> IntArray:
        """Leaf indices of one element."""
        start, stop = self.members.indptr[element], self.members.indptr[element + 1]
        return np.asarray(self.members.indices[start:stop], dtype=np.int64)


def searched_layers(n_leaves: int, n_dims: int, max_layer: int | None) -> int:
    """The deepest layer searched: ``max_layer`` (all dims by default), capped by lattice size."""
    deepest = n_dims if max_layer is None else min(max_layer, n_dims)
    entries = 0
    for layer in range(1, deepest + 1):
        entries += math.comb(n_dims, layer) * n_leaves
        if entries > MAX_LATTICE_ENTRIES and layer > 1:
            return layer - 1
    return deepest


def build_lattice(leaves: LeafTable, depth: int) -> Lattice:
    """Enumerate the elements of every cuboid of 1..``depth`` dims that has at least one leaf."""
    n = len(leaves)
    cards = leaves.cardinalities
    cuboids: list[tuple[int, ...]] = []
    rows: list[IntArray] = []
    cuboid_of: list[IntArray] = []
    local: list[IntArray] = []
    cuboid_codes: list[IntArray] = []
    layers: list[IntArray] = []
    costs: list[npt.NDArray[np.float64]] = []
    offset = 0
    for layer in range(1, depth + 1):
        layer_cuboids = list(combinations(range(len(cards)), layer))
        log_cuboids = math.log(len(layer_cuboids))
        for cuboid in layer_cuboids:
            digits, inverse = _group(leaves.codes, cuboid, cards)
            m = int(digits.shape[0])
            rows.append(inverse + offset)
            cuboid_of.append(np.full(m, len(cuboids), dtype=np.int64))
            local.append(np.arange(m, dtype=np.int64))
            cuboid_codes.append(digits)
            layers.append(np.full(m, layer, dtype=np.int64))
            costs.append(np.full(m, log_cuboids + math.log(m)))
            cuboids.append(cuboid)
            offset += m
    row = np.concatenate(rows)
    col = np.tile(np.arange(n, dtype=np.int64), len(cuboids))
    members = sparse.csr_matrix(
        (np.ones(row.shape[0], dtype=np.float64), (row, col)), shape=(offset, n)
    )
    members.sort_indices()
    return Lattice(
        cuboids=tuple(cuboids),
        cuboid_of=np.concatenate(cuboid_of),
        local=np.concatenate(local),
        cuboid_codes=tuple(cuboid_codes),
        layer=np.concatenate(layers),
        cost=np.concatenate(costs),
        members=members,
    )


def _group(
    codes: IntArray, cuboid: tuple[int, ...], cards: tuple[int, ...]
) -> tuple[IntArray, IntArray]:
    """Distinct value combinations on ``cuboid`` (rows) and each leaf's index among them."""
    if math.prod(cards[j] for j in cuboid) >= 2**62:
        # Too many combinations for one int64 key: fall back to a row-wise unique.
        uniq_rows, inverse = np.unique(codes[:, list(cuboid)], axis=0, return_inverse=True)
        return uniq_rows.astype(np.int64), inverse.ravel().astype(np.int64)
    key = np.zeros(codes.shape[0], dtype=np.int64)
    for j in cuboid:
        key = key * cards[j] + codes[:, j]
    uniq, inverse = np.unique(key, return_inverse=True)
    digits = np.empty((uniq.shape[0], len(cuboid)), dtype=np.int64)
    rest = uniq.copy()
    for pos in range(len(cuboid) - 1, -1, -1):
        card = cards[cuboid[pos]]
        digits[:, pos] = rest % card
        rest //= card
    return digits, inverse.ravel().astype(np.int64)
