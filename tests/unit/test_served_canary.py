"""The served-canary stage's driver against the canary's real core, in-process.

``CoreCanary`` is the :class:`~twinloop.loop.served_canary.CanaryApi` answered by the same
``CanaryManager`` the Canary deployment runs (the Serve reconfigure is the only thing left out),
so this checks the driver's logic — start, traffic from production, outcome batches, decision,
resume — without Serve; ``tests/ray/test_demo.py`` runs it over real HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinloop.canary.assignment import CanaryConfig
from twinloop.canary.manager import CanaryManager
from twinloop.canary.outcomes import OutcomeEvent
from twinloop.config import load_settings
from twinloop.errors import NotFound
from twinloop.improve.data import twin_data
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.trainer import train_model
from twinloop.loop.served_canary import Production, drive, result
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sim.domains import environment
from twinloop.sim.models import OnnxModel, PredictorModel, load_predictor
from twinloop.store import SqliteStore

FAMILY = "scoring"


class CoreCanary:
    """The canary API answered by the canary's core on the Store."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.applied: list[CanaryConfig] = []
        self.manager = CanaryManager(registry, self.applied.append)

    def start(self, family: str, version: str, weight: float, min_units: int) -> dict[str, Any]:
        record = self.manager.start(family, version, weight, {"min_units": min_units})
        return record.model_dump(mode="json")

    def state(self, family: str) -> dict[str, Any] | None:
        try:
            record = self.manager.record(family)
        except NotFound:
            return None
        verdict, decision = self.manager.verdict(record), self.manager.decision(record)
        return {
            "status": record.status,
            "config": record.config.model_dump(mode="json"),
            "verdict": None if verdict is None else verdict.model_dump(mode="json"),
            "decision": None if decision is None else decision.model_dump(mode="json"),
        }

    def predict(
        self, family: str, units: list[tuple[str, list[list[float]]]]
    ) -> list[tuple[str, list[float]]]:
        import numpy as np

        config = self.manager.record(family).config
        out = []
        for unit, rows in units:
            version = config.version(unit)
            spec = self.registry.runnable(self.registry.version(family, version))
            assert isinstance(spec, PredictorModel | OnnxModel)
            out.append((version, load_predictor(spec).predict(np.asarray(rows)).tolist()))
        return out

    def outcomes(self, family: str, batch_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        core = [
            OutcomeEvent(unit_id=e["unitId"], metrics=e["metrics"], timestamp=e["timestamp"],
                         version=e["version"])
            for e in events
        ]  # fmt: skip
        return self.manager.record_outcomes(family, core, batch_id).model_dump(mode="json")

    def rollback(self, family: str) -> dict[str, Any]:
        return self.manager.rollback(family).model_dump(mode="json")


def test_production_promotes_the_fixed_model_once_and_a_rerun_adopts_it(tmp_path: Path) -> None:
    """A champion blind to enterprise vs a sound candidate: production's outcomes promote the
    candidate (the trace's last interval above 0), the champion alias moves by the monitor's
    decision, and driving again adopts the decision without new traffic."""
    store = SqliteStore(tmp_path / "twinloop.sqlite3")
    registry = Registry(store, settings=load_settings(data_dir=tmp_path))
    registry.create_family(ModelFamily(name=FAMILY, primary_kpi="revenue", trainer=LOGISTIC))
    env = environment("sales")
    blind = Recipe(name="blind", segment_weights={"enterprise": 0.0})
    for recipe in (blind, Recipe(name="sound")):
        registry.register(FAMILY, train_model(LOGISTIC, recipe, twin_data(env, 6_000, 1), 0))
    registry.move_alias(FAMILY, "champion", "v1")
    api = CoreCanary(registry)
    production = Production(environment=env, seed=11, units_per_batch=60, rows_per_unit=200)
    decision, trace = drive(api, FAMILY, "v2", production)
    assert decision["action"] == "promote" and decision["by"] == "monitor", decision["reason"]
    assert trace and trace[-1].lower is not None and trace[-1].lower > 0
    assert [p.units for p in trace] == sorted(p.units for p in trace)
    assert registry.alias(FAMILY, "champion").version == "v2"
    stage = result(registry, FAMILY, "v1", "v2", decision, trace)
    assert stage.decision == "promoted" and stage.outcome["alias_moved"] is True
    assert stage.outcome["measured_effect"] > 0
    batches = len(store.query("canary_stats"))
    again, none = drive(api, FAMILY, "v2", production)
    assert again["action"] == "promote" and none == []
    assert len(store.query("canary_stats")) == batches
    assert [s.version for s in registry.alias_history(FAMILY, "champion")] == ["v1", "v2"]
