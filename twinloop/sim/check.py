"""`check_environment`: a conformance check every environment (and domain preset) must pass.

Like Gymnasium's ``check_env``: it runs a short simulation and checks the contract — KPI columns
and ranges, determinism under a seed, ``reset`` semantics, and a pickle round trip — so a new
preset or a calibrated environment cannot silently break the sandbox built on top of it.
"""

from __future__ import annotations

import pickle

import numpy as np

from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.kpis import KPI_NAMES
from twinloop.sim.lifecycle import Simulation
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec


class ConformanceError(AssertionError):
    """An environment broke the simulator contract."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def check_environment(env: BusinessEnvironment, days: float = 5.0, seed: int = 7) -> None:
    """Raise ConformanceError at the first broken rule; return None when all hold."""
    small = env.model_copy(update={"initial_customers": min(env.initial_customers, 2_000)})
    models = [ModelProfile(name="a", accuracy=0.9), ModelProfile(name="b", accuracy=0.6)]
    spec = SimulationSpec(environment=small, models=models, days=days, seed=seed, record_units=True)
    first = Simulation(spec).run()
    table = first.kpis
    _expect(set(KPI_NAMES) <= set(table.column_names), f"missing KPI columns in {table.schema}")
    _expect(table.num_rows == spec.n_steps * 2, "one KPI row per step and variant")
    for name in ("active", "new", "churned", "interactions", "conversions", "revenue", "cost"):
        _expect(bool(np.all(table[name].to_numpy() >= 0)), f"{name} must be >= 0")
    for name in ("conversion_rate", "satisfaction", "model_accuracy"):
        values = table[name].to_numpy()
        _expect(bool(np.all((values >= 0) & (values <= 1))), f"{name} must lie in [0, 1]")
    second = Simulation(spec).run()
    _expect(first.kpis.equals(second.kpis), "same seed must give the identical KPI table")
    sim = Simulation(spec)
    sim.step()
    sim.reset(seed=seed)
    replay = sim.run()
    _expect(replay.kpis.equals(first.kpis), "reset(seed=s) must restart the same run")
    clone = pickle.loads(pickle.dumps(Simulation(spec)))
    _expect(clone.run().kpis.equals(first.kpis), "a pickled environment must run identically")
    units = first.units
    _expect(units is not None and units.num_rows > 0, "record_units must give per-customer rows")
