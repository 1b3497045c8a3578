"""The loop's candidates stage on the real retraining pipeline: once, and adopted on a re-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import analyze_failure
from twinloop.config import load_settings
from twinloop.improve.data import twin_data
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.trainer import train_model
from twinloop.loop import STAGE_OUTPUTS, ImprovementSpec, run_improvement, start_improvement
from twinloop.loop.stages import default_stages
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.spec import SimulationSpec
from twinloop.store import SqliteStore

FAMILY = "lead-scoring"


def test_a_segment_blind_champion_is_retrained_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planned as ml_pipeline, retrained to v2; the next stage (championship) is not wired,
    and running again adopts the kept run: no second version."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    store = SqliteStore(tmp_path / "twinloop.sqlite3")
    registry = Registry(store, settings=load_settings())
    registry.create_family(ModelFamily(name=FAMILY, primary_kpi="profit", trainer=LOGISTIC))
    env = environment("sales")
    blind = train_model(
        LOGISTIC,
        Recipe(name="champion", segment_weights={"enterprise": 0.0}),
        twin_data(env, 8_000, 1),
        0,
    )
    sound = train_model(LOGISTIC, Recipe(name="previous"), twin_data(env, 3_000, 2), 0)
    registry.move_alias(FAMILY, "champion", registry.register(FAMILY, blind).id)
    units = simulate(
        SimulationSpec(
            environment=env.model_copy(update={"initial_customers": 20_000}),
            models=[sound, blind], allocation=[0.5, 0.5], days=14, seed=5, record_units=True,
        )
    ).units  # fmt: skip
    variants = [{"name": "previous", "control": True}, {"name": "champion"}]
    analysis = analyze_failure(
        {"experimentId": "lost-enterprise", "variants": variants, "environment": "sales"},
        raw_table=units,
    )
    store.put(ANALYSES, analysis.experiment_id, analysis.model_dump(mode="json"))
    spec = ImprovementSpec(experiment_id="lost-enterprise", family=FAMILY, seed=2)
    ident = start_improvement(store, spec)[0].id
    stalled = run_improvement(store, ident, default_stages())
    planned = store.get(STAGE_OUTPUTS, f"{ident}.planned").doc["outcome"]
    assert planned["chosen"] == "ml_pipeline", planned
    assert (stalled.stage, stalled.status) == ("candidates", "stalled"), stalled.reason
    outcome = store.get(STAGE_OUTPUTS, f"{ident}.candidates").doc["outcome"]
    assert outcome["registered"] == "v2" and outcome["champion"] == "v1"
    assert "twinloop.championship" in (stalled.reason or "")
    run_improvement(store, ident, default_stages())
    assert [v.id for v in registry.versions(FAMILY)] == ["v1", "v2"]
