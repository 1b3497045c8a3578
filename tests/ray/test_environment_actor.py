"""One business universe in one Ray actor: reset, step, run, snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from actors.environment import EnvironmentActor
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.spec import SimulationSpec

pytestmark = pytest.mark.ray


def test_actor_runs_the_same_universe_as_the_local_engine(ray_session: Any) -> None:
    """An actor's run equals the in-process run of the same spec and seed."""
    spec = SimulationSpec(environment=environment("sales", initial_customers=3000), days=8, seed=5)
    actor = EnvironmentActor.remote(spec)
    remote = ray_session.get(actor.run.remote())
    assert remote.kpis.equals(simulate(spec).kpis)
    ray_session.kill(actor)


def test_actor_steps_snapshots_and_resets(ray_session: Any) -> None:
    """step advances a tick, snapshot reports it, reset(seed) starts over identically."""
    spec = SimulationSpec(environment=environment("sales", initial_customers=1000), days=5, seed=9)
    actor = EnvironmentActor.remote(spec)
    first = ray_session.get(actor.step.remote())
    ray_session.get(actor.step.remote())
    snap = ray_session.get(actor.snapshot.remote())
    assert snap["step"] == 2 and snap["seed"] == 9 and snap["node_id"]
    ray_session.get(actor.reset.remote(9))
    again = ray_session.get(actor.step.remote())
    assert again == first
    ray_session.kill(actor)
