"""The performance and business agents in the loop: a failure → their candidate → a decision.

A champion served slower than it needs to be loses an A/B test on latency; the loop analyses,
plans (``performance``), asks the performance agent, registers its serving configuration as
``v2`` and takes it through the championship to a decision. A champion deciding at a mis-set
threshold gets the business agent's per-segment thresholds registered as ``v2`` — the same
weights, new thresholds — and running the stage again registers nothing twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.loop_family import store_lost_test
from twinloop.config import load_settings
from twinloop.improve.data import twin_data
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.trainer import train_model
from twinloop.loop import STAGE_OUTPUTS, ImprovementSpec, run_improvement, start_improvement
from twinloop.loop.agent_candidates import agent_candidates
from twinloop.loop.machine import StageContext, StageResult, _outputs, stage_seed
from twinloop.loop.model import IMPROVEMENTS, Improvement
from twinloop.loop.planning import planned
from twinloop.loop.stages import default_stages
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sim.domains import environment
from twinloop.sim.models import ModelSpec, PredictorModel
from twinloop.store import SqliteStore

FAMILY = "lead-scoring"


def lost_test(
    tmp_path: Path, champion: ModelSpec, previous: ModelSpec, experiment: str
) -> tuple[SqliteStore, Registry, str]:
    """A family with ``champion`` (v1) and the analysis of the A/B test it lost to ``previous``."""
    champion = champion.model_copy(update={"name": "champion"})
    store = SqliteStore(tmp_path / "twinloop.sqlite3")
    registry = Registry(store, settings=load_settings())
    registry.create_family(ModelFamily(name=FAMILY, primary_kpi="revenue", trainer=LOGISTIC))
    registry.move_alias(FAMILY, "champion", registry.register(FAMILY, champion).id)
    store_lost_test(store, experiment, previous=previous, champion=champion)
    spec = ImprovementSpec(experiment_id=experiment, family=FAMILY, seed=3)
    return store, registry, start_improvement(store, spec)[0].id


def trained(threshold: float = 0.5) -> PredictorModel:
    model = train_model(
        LOGISTIC,
        Recipe(name="m", threshold=threshold),
        twin_data(environment("sales"), 6_000, 1),
        0,
    )
    assert isinstance(model, PredictorModel)
    return model


def outcome(store: SqliteStore, ident: str, stage: str) -> dict[str, object]:
    doc: dict[str, object] = store.get(STAGE_OUTPUTS, f"{ident}.{stage}").doc["outcome"]
    return doc


def test_a_slow_champion_gets_a_serving_configuration_judged_to_a_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """latency loss → plan chooses performance → v2 (the champion, served faster) registered →
    championship → a decision; a second run registers and moves nothing."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    model = trained()
    slow = model.model_copy(update={"latency_p50_ms": 600.0, "latency_p95_ms": 1_500.0})
    store, registry, ident = lost_test(tmp_path, slow, model, "slow-champion")
    done = run_improvement(store, ident, default_stages())
    assert outcome(store, ident, "planned")["chosen"] == "performance"
    cand = outcome(store, ident, "candidates")
    assert cand["agent"] == "performance" and cand["registered"] == "v2", cand
    v2 = registry.version(FAMILY, "v2")
    assert v2.model.latency_p95_ms < slow.latency_p95_ms
    assert v2.lineage.parent == "v1" and v2.lineage.improvement_id == ident
    assert v2.lineage.recipe["agent"] == "performance"
    assert done.stage in ("promoted", "rolled_back", "abandoned"), done.reason
    champ = outcome(store, ident, "championship")
    assert champ["champion"] == "v1" and champ["verdict"] in ("promote", "keep_champion")
    again = run_improvement(store, ident, default_stages())
    assert again.stage == done.stage
    assert [v.id for v in registry.versions(FAMILY)] == ["v1", "v2"]


def business_planned(context: StageContext) -> StageResult:
    """The real plan, with its business (decision threshold) action chosen."""
    result = planned(context)
    chosen = {**result.outcome, "chosen": "business", "action": "policy-threshold"}
    return result.model_copy(update={"outcome": chosen})


def test_a_mis_set_threshold_gets_the_business_agents_thresholds_registered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """threshold 0.15 loses → the business agent's per-segment thresholds become v2 (same
    weights); the stage run again (a driver that died before its output) registers nothing."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    sound = trained()
    store, registry, ident = lost_test(tmp_path, trained(0.15), sound, "low-threshold")
    stages = {**default_stages(), "planned": business_planned}
    current = store.get_model(IMPROVEMENTS, ident, Improvement)
    run_improvement(store, ident, stages, until="planned")
    current = store.get_model(IMPROVEMENTS, ident, Improvement)
    context = StageContext(
        store=store, improvement=current, stage="candidates", outputs=_outputs(store, current),
        seed=stage_seed(current.seed, "candidates"),
    )  # fmt: skip
    first = agent_candidates(context)  # the driver "dies" here: no output written
    assert first.outcome["registered"] == "v2", first.outcome
    run_improvement(store, ident, stages, until="candidates")
    cand = outcome(store, ident, "candidates")
    assert cand["agent"] == "business" and cand["registered"] == "v2"
    assert [v.id for v in registry.versions(FAMILY)] == ["v1", "v2"]
    v1, v2 = registry.version(FAMILY, "v1").model, registry.version(FAMILY, "v2").model
    assert isinstance(v1, PredictorModel) and isinstance(v2, PredictorModel)
    assert v2.params == v1.params  # the weights never change
    assert v2.segment_thresholds and v2.segment_thresholds != v1.segment_thresholds
    assert all(t > 0.15 for t in v2.segment_thresholds.values())
    lineage = registry.version(FAMILY, "v2").lineage
    assert (lineage.parent, lineage.improvement_id, lineage.analysis_id) == (
        "v1",
        ident,
        "low-threshold",
    )
    assert lineage.recipe["segment_thresholds"] == v2.segment_thresholds
