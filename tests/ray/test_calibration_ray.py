"""Calibration and simulation what-if on the Ray actor pool give the serial numbers exactly."""

from __future__ import annotations

from typing import Any

import pytest

from actors.calibration import RayEvaluator
from twinloop.replication.calibration.calibrate import calibrate
from twinloop.replication.calibration.models import CalibrationSettings
from twinloop.replication.history import history_from_table
from twinloop.replication.replicates import history_table
from twinloop.replication.whatif.simulated import SimWhatIfSettings, what_if_sim
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec

pytestmark = pytest.mark.ray

FAST = CalibrationSettings(sensitivity_grid=(0, 2, 4, 6), fit_replicates=1, eval_replicates=3)


def test_ray_evaluator_calibrates_identically_to_the_serial_one(ray_session: Any) -> None:
    """Every candidate twin runs on the pool; the result equals the in-process calibration."""
    env = environment("sales", initial_customers=1500)
    model = ModelProfile(accuracy=0.6, latency_p50_ms=250.0, latency_p95_ms=700.0)
    run = simulate(SimulationSpec(environment=env, models=[model], days=56, seed=11))
    history = history_from_table(history_table(run))
    serial = calibrate(history, FAST)
    with RayEvaluator(num_workers=2) as evaluator:
        on_ray = calibrate(history, FAST, evaluate=evaluator)
        assert evaluator.runs == serial.simulations
        what_if = what_if_sim(
            serial.environment,
            {"accuracy": 0.1},
            model=serial.model,
            settings=SimWhatIfSettings(days=10, replicates=4),
            evaluate=evaluator,
        )
    assert on_ray == serial
    assert what_if == what_if_sim(
        serial.environment,
        {"accuracy": 0.1},
        model=serial.model,
        settings=SimWhatIfSettings(days=10, replicates=4),
    )
