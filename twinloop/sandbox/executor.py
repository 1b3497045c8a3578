"""Executors run replicate tasks and hand results back as they finish, in any order.

The sandbox only needs ``map(fn, items)``: an iterator of ``(position, result)`` pairs in
completion order. The serial executor here makes the whole sandbox testable in-process; the Ray
actor pool (``actors/sandbox_pool.py``) implements the same protocol over a cluster. Because
reducers sort by replicate before anything order-sensitive and merge exact sufficient
statistics, the order in which an executor yields never changes a result — the serial executor
can shuffle its order to prove it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ExecutorStats:
    """What an executor did: where it ran and what it had to re-run (not part of results)."""

    executor: str
    workers: int
    nodes: list[str] = field(default_factory=list)
    retried: int = 0


class Executor(Protocol):
    """Runs ``fn`` over ``items``, yielding ``(position in items, result)`` as each finishes."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]: ...

    def stats(self) -> ExecutorStats: ...


class SerialExecutor:
    """Runs items one after another in this process.

    With ``order_seed`` the items run in a seeded random order instead of their given order —
    a stand-in for a cluster's arbitrary completion order in tests.
    """

    def __init__(self, order_seed: int | None = None) -> None:
        self.order_seed = order_seed

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        order = list(range(len(items)))
        if self.order_seed is not None:
            order = [int(i) for i in np.random.default_rng(self.order_seed).permutation(order)]
        for position in order:
            yield position, fn(items[position])

    def stats(self) -> ExecutorStats:
        return ExecutorStats(executor="serial", workers=1)


ProgressCallback = Callable[[int, int], None]
"""Called after each finished replicate with (replicates done, replicates planned so far)."""
