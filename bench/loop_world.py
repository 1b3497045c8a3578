"""One hidden-production scenario set up for the whole loop: its Store, family, twin and traffic.

The loop is given only what a user has (``bench/loop_replay.py`` builds the same inputs): the A/B
test's per-unit rows (champion against the model before it), production's KPI history and a
labelled sample. From them this module builds what the loop reads: the failure analysis in the
Store, the family whose environment is the twin *calibrated* to the KPI history with its decision
layer *fitted* on half the sample (a stored environment the registry resolves), and the champion
registered as ``v1``. The canary stage gets :func:`production_traffic` — outcomes of the two
versions in the hidden production, never the twin — through its ``traffic`` parameter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench.loop_replay import Budget, ab_units, business_twin
from bench.loop_scenarios import Scenario
from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import analyze_failure
from twinloop.improve.data import split
from twinloop.improve.intentfit import fit_intent
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.search import batch_seed
from twinloop.loop import ImprovementSpec, start_improvement
from twinloop.loop.canary_stage import WEIGHT, Outcomes, Traffic
from twinloop.registry.artifacts import ArtifactStore
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.replication.calibration.calibrate import ENVIRONMENTS
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.spec import SimulationSpec
from twinloop.store import SqliteStore

FAMILY = "bench"
TRAFFIC_STREAM = 31  # production canary traffic: never a seed of the replay or the twin
TRAFFIC_CUSTOMERS = 5_000  # production traffic: customers arriving per canary batch (60 s virtual)
TRAFFIC_DAYS = 14.0  # a unit's outcome: its revenue over this many days (latency acts via churn)


@dataclass(frozen=True)
class World:
    """The scenario as the loop sees it, ready to run."""

    store: SqliteStore
    registry: Registry
    improvement_id: str
    twin: BusinessEnvironment
    info: dict[str, Any]


def build_world(scenario: Scenario, budget: Budget, root: Path) -> World:
    """Store, twin, family, champion v1, the stored analysis, and the improvement started."""
    store = SqliteStore(root / "twinloop.sqlite3")
    registry = Registry(store, ArtifactStore(store, root, max_bytes=64 * 2**20))
    units = ab_units(scenario, budget)  # production's data: not the loop's work, not timed
    clock = time.perf_counter(), time.process_time()
    experiment = f"scenario-{scenario.index}"
    variants = [
        {"name": "previous", "control": True, "allocation": 0.5},
        {"name": "champion", "allocation": 0.5},
    ]
    analysis = analyze_failure(
        {"experimentId": experiment, "variants": variants, "environment": "sales"},
        raw_table=units,
    )
    store.put(ANALYSES, analysis.experiment_id, analysis.model_dump(mode="json"))
    analysis_time = time.perf_counter() - clock[0], time.process_time() - clock[1]
    clock = time.perf_counter(), time.process_time()
    fit_rows, _ = split(scenario.sample, 0.5, scenario.seed)
    business, info = business_twin(scenario, budget)
    twin = fit_intent(business, fit_rows, seed=scenario.seed).environment
    twin_time = time.perf_counter() - clock[0], time.process_time() - clock[1]
    env_id = f"twin-{scenario.index}"
    store.put(ENVIRONMENTS, env_id, twin.model_dump(mode="json"))
    registry.create_family(
        ModelFamily(name=FAMILY, primary_kpi="revenue", environment=env_id, trainer=LOGISTIC)
    )
    registry.move_alias(FAMILY, "champion", registry.register(FAMILY, scenario.champion).id)
    spec = ImprovementSpec(
        experiment_id=experiment, family=FAMILY, seed=scenario.seed % 2**62, trigger="manual"
    )
    improvement = start_improvement(store, spec)[0]
    info = {
        **info,
        "analysis_status": analysis.decision.status,
        "patterns": [p.code for p in analysis.patterns.patterns],
        "failure_types": sorted({f.type for f in analysis.failure_types}),
        "analysis_seconds": list(analysis_time),  # [wall, CPU]
        "twin_seconds": list(twin_time),  # incl. generating production's 90-day KPI history
    }
    return World(store, registry, improvement.id, twin, info)


def _split_units(units: pa.Table, names: list[str]) -> Outcomes:
    """Per version, its units' revenue and conversion (0/1) in this batch."""
    variant = units.column("variant").combine_chunks().indices.to_numpy()
    revenue = units.column("revenue").to_numpy()
    converted = units.column("converted").to_numpy().astype(np.float64)
    return {
        name: {"revenue": revenue[variant == i], "conversions": converted[variant == i]}
        for i, name in enumerate(names)
    }


def production_traffic(production: BusinessEnvironment) -> Traffic:
    """A canary traffic source whose outcomes come from the hidden production.

    Each batch is a fresh production cohort (its own seed) split champion / candidate at the
    canary's weight and run for TRAFFIC_DAYS through the full lifecycle — so a slow model's
    churn shows, unlike the twin's one-shot traffic — and its units' revenue is the outcome.
    """
    env = production.model_copy(update={"initial_customers": TRAFFIC_CUSTOMERS})

    def traffic(
        registry: Registry, family: str, champion: str, candidate: str, seed: int
    ) -> Iterator[Outcomes]:
        names = [champion, candidate]
        models = [registry.runnable(registry.version(family, v)) for v in names]
        batch = 0
        while True:
            run = simulate(
                SimulationSpec(
                    environment=env, models=models, allocation=[1 - WEIGHT, WEIGHT],
                    days=TRAFFIC_DAYS, seed=batch_seed(seed % 2**62, batch, TRAFFIC_STREAM),
                    record_units=True,
                )
            )  # fmt: skip
            assert run.units is not None  # record_units
            yield _split_units(run.units, names)
            batch += 1

    return traffic
