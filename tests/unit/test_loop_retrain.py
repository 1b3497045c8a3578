"""The whole loop on a real case: a segment-blind champion retrained, championed, canaried.

A champion trained blind to the enterprise segment loses in the twin; the loop analyses, plans
(``ml_pipeline``), retrains and registers ``v2``, holds the championship (confirmation on fresh
seeds) and runs the canary on twin traffic, which promotes ``v2`` to champion. Running it again
moves nothing and registers nothing. The qa agent gates every registered candidate: ``v2``
passes its edge-case scenarios. A retrained ONNX candidate planted to break on cold-start
customers wins on ordinary traffic and is still vetoed; the stage then retrains with cold-start
rows: a trainer whose bug those rows cure gets a repaired ``v3`` promoted, one whose bug they
cannot cure is vetoed again (abandoned with the qa reason, alias untouched). With a family gate
that cannot pass (a required external result nobody reported) the championship refuses and the
improvement is abandoned, alias untouched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.loop_family import plant
from twinloop.championship.hold import KIND as DECISIONS
from twinloop.config import load_settings
from twinloop.improve.pipeline import KIND as RUNS
from twinloop.improve.pipeline import RetrainRun
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.loop import STAGE_OUTPUTS, ImprovementSpec, run_improvement, start_improvement
from twinloop.loop.kpis import loop_kpis
from twinloop.loop.machine import StageContext, StageFn, StageResult
from twinloop.loop.model import Stage
from twinloop.loop.stages import default_stages
from twinloop.registry.models import Gates
from twinloop.registry.registry import Registry
from twinloop.store import SqliteStore

FAMILY = "lead-scoring"


def planted(
    tmp_path: Path, gates: Gates, trainer: str = LOGISTIC
) -> tuple[SqliteStore, Registry, str]:
    """A family whose champion is blind to enterprise, and the analysis of the A/B test it lost;
    ``trainer`` is the family's (what the loop retrains with)."""
    store = SqliteStore(tmp_path / "twinloop.sqlite3")
    registry = Registry(store, settings=load_settings())
    plant(store, registry, FAMILY, "lost-enterprise", gates=gates, trainer=trainer)
    spec = ImprovementSpec(experiment_id="lost-enterprise", family=FAMILY, seed=2)
    return store, registry, start_improvement(store, spec)[0].id


def started(store: SqliteStore, registry: Registry, family: str, experiment: str) -> str:
    """Plant ``experiment``'s lost test for ``family`` and start its improvement (seed 2)."""
    plant(store, registry, family, experiment)
    spec = ImprovementSpec(experiment_id=experiment, family=family, seed=2)
    return start_improvement(store, spec)[0].id


def outcome(store: SqliteStore, ident: str, stage: str) -> dict[str, object]:
    doc: dict[str, object] = store.get(STAGE_OUTPUTS, f"{ident}.{stage}").doc["outcome"]
    return doc


def test_a_segment_blind_champion_is_replaced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """analysed → planned (ml_pipeline) → v2 registered → championship → canary → promoted;
    a second run changes nothing; the KPIs see one promoted improvement."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    store, registry, ident = planted(tmp_path, Gates())
    done = run_improvement(store, ident, default_stages())
    assert outcome(store, ident, "planned")["chosen"] == "ml_pipeline"
    cand = outcome(store, ident, "candidates")
    assert cand["registered"] == "v2" and cand["champion"] == "v1"
    qa = cand["qa"]
    assert isinstance(qa, dict) and qa["passed"] is True and qa["failed_scenario"] is None, qa
    assert (done.stage, done.status) == ("promoted", "done"), done.reason
    champ = outcome(store, ident, "championship")
    assert champ["verdict"] == "promote" and champ["winner"] == "v2", champ["reasons"]
    assert isinstance(champ["predicted_effect"], float) and champ["predicted_effect"] > 0
    canary = outcome(store, ident, "canary")
    assert canary["action"] == "promote" and canary["alias_moved"] is True, canary["reason"]
    assert isinstance(canary["measured_effect"], float) and canary["measured_effect"] > 0
    assert registry.alias(FAMILY, "champion").version == "v2"
    again = run_improvement(store, ident, default_stages())
    assert again.stage == "promoted"
    assert [v.id for v in registry.versions(FAMILY)] == ["v1", "v2"]
    assert [s.version for s in registry.alias_history(FAMILY, "champion")] == ["v1", "v2"]
    kpis = loop_kpis(store)
    assert kpis.improvement_rate == 1.0
    assert kpis.simulation_accuracy.pairs == 1
    assert kpis.simulation_accuracy.mean_absolute_error is not None


def test_the_loop_never_promotes_when_the_championship_gates_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A required external gate nobody reports (a security review) fails the confirmation:
    abandoned, alias unmoved (qa itself reports, and passes)."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    store, registry, ident = planted(tmp_path, Gates(required_external=["security_review"]))
    done = run_improvement(store, ident, default_stages())
    assert (done.stage, done.status) == ("abandoned", "done"), done.reason
    champ = outcome(store, ident, "championship")
    assert champ["verdict"] == "keep_champion" and champ["winner"] is None
    assert "security_review" in (done.reason or ""), done.reason
    assert store.find(STAGE_OUTPUTS, f"{ident}.canary") is None
    assert registry.alias(FAMILY, "champion").version == "v1"
    assert [s.version for s in registry.alias_history(FAMILY, "champion")] == ["v1"]


def test_a_candidate_that_breaks_on_cold_start_is_vetoed_by_qa(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The family retrains to ONNX with a cold-start bug in the graph: the candidate is confirmed
    on ordinary traffic, qa fails it on cold_start; the repair round (cold-start rows) cannot
    fix a bug in the graph, so its candidate fails too and the championship refuses: abandoned,
    alias unmoved."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    store, registry, ident = planted(tmp_path, Gates(), "tests.agent_doubles:cold_start_onnx")
    done = run_improvement(store, ident, default_stages())
    cand = outcome(store, ident, "candidates")
    vetoed = cand["vetoed"]
    assert isinstance(vetoed, dict) and vetoed["registered"] == "v2"
    assert vetoed["qa"]["failed_scenario"] == "cold_start"
    assert cand["registered"] == "v3" and cand["run_id"] != vetoed["run_id"]
    assert isinstance(cand["winner_config"], dict) and cand["winner_config"]["cold_start_share"] > 0
    assert registry.version(FAMILY, "v3").model.type == "onnx"
    qa = cand["qa"]
    assert isinstance(qa, dict) and qa["passed"] is False and qa["failed_scenario"] == "cold_start"
    assert (done.stage, done.status) == ("abandoned", "done"), done.reason
    assert "qa" in (done.reason or "") and "cold_start" in (done.reason or ""), done.reason
    champ = outcome(store, ident, "championship")
    assert champ["verdict"] == "keep_champion" and champ["winner"] is None
    assert store.find(STAGE_OUTPUTS, f"{ident}.canary") is None
    assert [s.version for s in registry.alias_history(FAMILY, "champion")] == ["v1"]
    assert registry.alias(FAMILY, "challenger").version is None


def test_a_qa_veto_on_cold_start_is_repaired_by_retraining_with_cold_start_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The family's trainer makes models that break on customers without history unless it was
    shown some: the first candidate is confirmed and vetoed by qa on cold_start; the stage
    retrains with cold-start rows searched, the repaired candidate passes qa and is promoted;
    a second run registers nothing more."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    trainer = "tests.agent_doubles:new_customers_unseen_onnx"
    store, registry, ident = planted(tmp_path, Gates(), trainer)
    done = run_improvement(store, ident, default_stages())
    cand = outcome(store, ident, "candidates")
    vetoed = cand["vetoed"]
    assert isinstance(vetoed, dict) and vetoed["registered"] == "v2"
    assert vetoed["qa"]["passed"] is False and vetoed["qa"]["failed_scenario"] == "cold_start"
    assert vetoed["winner_config"]["cold_start_share"] == 0.0
    warm = cand["warm_start"]
    assert cand["registered"] == "v3" and isinstance(warm, list) and warm[0] == "w000"
    qa = cand["qa"]
    assert isinstance(qa, dict) and qa["passed"] is True, qa
    config = cand["winner_config"]
    assert isinstance(config, dict) and 0.25 <= config["cold_start_share"] <= 1.0
    assert (done.stage, done.status) == ("promoted", "done"), done.reason
    assert registry.alias(FAMILY, "champion").version == "v3"
    lineage = registry.version(FAMILY, "v3").lineage
    assert lineage is not None and lineage.recipe["cold_start_share"] == config["cold_start_share"]
    again = run_improvement(store, ident, default_stages())
    assert again.stage == "promoted"
    assert [v.id for v in registry.versions(FAMILY)] == ["v1", "v2", "v3"]
    assert len(store.query(RUNS)) == 2


def test_a_third_family_starts_its_search_at_the_past_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two promoted improvements of one failure pattern in lead-scoring (its champion rolled
    back to the blind v1 in between), then a third family with the same failure: ml_pipeline is
    ranked first with its posterior 3/4, and the retraining run's first trial is the past
    winner's recipe (the learning's warm start), named ``w000``."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    store, registry, first = planted(tmp_path, Gates())
    assert run_improvement(store, first, default_stages()).stage == "promoted"
    registry.move_alias(FAMILY, "champion", "v1", expected="v2", by="user", reason="rollback")
    second = started(store, registry, FAMILY, "lost-enterprise-2")
    assert run_improvement(store, second, default_stages()).stage == "promoted"
    winners = [outcome(store, i, "candidates")["winner_config"] for i in (first, second)]
    third = started(store, registry, "lead-scoring-eu", "lost-enterprise-eu")
    done = run_improvement(store, third, default_stages())
    assert done.terminal, done.reason  # its own decision; the search is what is checked
    planned = outcome(store, third, "planned")
    rows = planned["actions"]
    assert isinstance(rows, list) and planned["chosen"] == "ml_pipeline"
    assert rows[0]["kind"] == "ml_pipeline"
    assert rows[0]["expected"] == pytest.approx(rows[0]["value"] * 0.75)  # Beta(3, 1) mean
    warm = planned["warm_start"]
    assert isinstance(warm, list) and warm and warm[0] in winners
    run = store.get_model(RUNS, str(outcome(store, third, "candidates")["run_id"]), RetrainRun)
    assert run.result.trials[0].recipe == Recipe.model_validate(warm[0]).model_copy(
        update={"name": "w000"}
    )
    assert [t.recipe.name for t in run.result.trials][: len(warm)] == [
        f"w{i:03d}" for i in range(len(warm))
    ]


class DriverKilled(Exception):
    """Stands for the driver process dying right after a stage's side effects."""


def test_a_driver_killed_after_the_championship_and_after_the_alias_move_resumes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the decision was stored, then after the champion alias moved (outputs not
    yet written): the restarts adopt the decision and move nothing twice."""
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    store, registry, ident = planted(tmp_path, Gates())
    real = default_stages()

    def dies_after(stage: Stage) -> dict[Stage, StageFn]:
        def killed(context: StageContext) -> StageResult:
            real[stage](context)
            raise DriverKilled(stage)

        return {**real, stage: killed}

    for stage in ("championship", "canary"):
        with pytest.raises(DriverKilled):
            run_improvement(store, ident, dies_after(stage))
    assert registry.alias(FAMILY, "champion").version == "v2"  # moved before the "crash"
    done = run_improvement(store, ident, real)
    assert (done.stage, done.status) == ("promoted", "done"), done.reason
    assert outcome(store, ident, "canary")["alias_moved"] is False
    assert [v.id for v in registry.versions(FAMILY)] == ["v1", "v2"]
    assert [s.version for s in registry.alias_history(FAMILY, "champion")] == ["v1", "v2"]
    assert len(store.query(DECISIONS)) == 1
