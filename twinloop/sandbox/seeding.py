"""Replicate seeding: replicate i's seed is child i of ``SeedSequence(seed)``, whoever runs it.

A child of ``SeedSequence(seed).spawn(n)`` is fixed by its index alone (its spawn key is
``(i,)``), so replicate i gets the same seed whether 10 or 10 000 replicates are planned, on one
worker or on fifty, in any completion order; early stopping can add replicates without changing
the earlier ones. Seeds are turned into plain ints below 2⁶³ because that is what a
``SimulationSpec`` takes and what travels well as JSON.
"""

from __future__ import annotations

import numpy as np

# Stream numbers of the second key element: stream 0 is the replicate's common seed (every
# model in a replicate sees it); a head-to-head without common random numbers gives the
# challenger stream 1 so that its universes are independent of the baseline's.
COMMON_STREAM = 0
INDEPENDENT_STREAM = 1
# The bootstrap's resampling generator: a key of another length than any replicate key.
_BOOTSTRAP_KEY = (0, 0, 1)


def _to_int(seq: np.random.SeedSequence) -> int:
    """A 63-bit int seed from a SeedSequence (the top 63 bits of its first 64-bit word)."""
    return int(seq.generate_state(1, np.uint64)[0]) >> 1


def replicate_seeds(seed: int, n: int) -> list[int]:
    """The seeds of replicates 0 … n-1: ``SeedSequence(seed).spawn(n)`` turned into ints."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [_to_int(child) for child in np.random.SeedSequence(seed).spawn(n)]


def replicate_seed(seed: int, index: int, stream: int = COMMON_STREAM) -> int:
    """Replicate ``index``'s seed; equals ``replicate_seeds(seed, n)[index]`` for stream 0."""
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    key = (index,) if stream == COMMON_STREAM else (index, stream)
    return _to_int(np.random.SeedSequence(seed, spawn_key=key))


def bootstrap_rng(seed: int) -> np.random.Generator:
    """The generator of bootstrap resamples: seeded from the run, independent of replicates."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=_BOOTSTRAP_KEY))
