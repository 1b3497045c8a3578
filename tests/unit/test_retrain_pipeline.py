"""Retraining a family after a failure: the run is kept, the winner registered with lineage."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cluster.cli import main
from twinloop.analysis.analyzer import FailureAnalysis, analyze_failure
from twinloop.config import load_settings
from twinloop.improve.data import twin_data
from twinloop.improve.intentfit import fit_intent
from twinloop.improve.pipeline import KIND, RetrainRequest, RetrainRun, retrain
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.search import DataSource
from twinloop.improve.space import localized_segments
from twinloop.improve.trainer import train_model
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import truth_tables
from twinloop.sim.lifecycle import simulate
from twinloop.sim.spec import SimulationSpec
from twinloop.store import SqliteStore

FAMILY = "lead-scoring"


@pytest.fixture(scope="module")
def analysis() -> FailureAnalysis:
    """A lost A/B test in the twin: a champion trained without enterprise rows vs a sound model."""
    env = environment("sales")
    flawed = train_model(
        LOGISTIC,
        Recipe(name="champion", segment_weights={"enterprise": 0.0}),
        twin_data(env, 8_000, 1),
        0,
    )
    sound = train_model(LOGISTIC, Recipe(name="previous"), twin_data(env, 3_000, 2), 0)
    units = simulate(
        SimulationSpec(
            environment=env.model_copy(update={"initial_customers": 20_000}),
            models=[sound, flawed],
            allocation=[0.5, 0.5],
            days=14,
            seed=5,
            record_units=True,
        )
    ).units
    variants = [
        {"name": "previous", "control": True, "allocation": 0.5},
        {"name": "champion", "allocation": 0.5},
    ]
    return analyze_failure(
        {"experimentId": "lost-enterprise", "variants": variants, "environment": "sales"},
        raw_table=units,
    )


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    monkeypatch.delenv("TWINLOOP_CONFIG", raising=False)
    store = SqliteStore(tmp_path / "twinloop.sqlite3")
    reg = Registry(store, settings=load_settings())
    reg.create_family(ModelFamily(name=FAMILY, primary_kpi="profit", trainer=LOGISTIC))
    env = environment("sales")
    champion = train_model(
        LOGISTIC, Recipe(segment_weights={"enterprise": 0.0}), twin_data(env, 8_000, 1), 0
    )
    v1 = reg.register(FAMILY, champion)
    reg.move_alias(FAMILY, "champion", v1.id)
    return reg


def test_analysis_localizes_the_segment_the_champion_never_saw(analysis: FailureAnalysis) -> None:
    """The analyzer's segment root cause becomes the search space's weight range."""
    assert localized_segments(analysis, environment("sales"))[:1] == ["enterprise"]


def test_retrain_registers_a_confirmed_candidate_with_lineage(
    registry: Registry, analysis: FailureAnalysis
) -> None:
    """v2's lineage names v1, the recipe, the data fingerprint and the analysis; the run is kept."""
    request = RetrainRequest(family=FAMILY, samples=3, seed=2, data=DataSource(rows=4_000))
    run = retrain(registry, registry.store, request, analysis)
    assert run.result.confirmation is not None and run.result.confirmation.confirmed
    assert run.registered == "v2"
    v2 = registry.version(FAMILY, "v2")
    assert v2.lineage.parent == "v1" and v2.lineage.analysis_id == "lost-enterprise"
    assert v2.lineage.recipe["trainer"] == LOGISTIC
    assert v2.lineage.training_data == twin_data(environment("sales"), 4_000, 0).fingerprint
    assert v2.evidence[0].id == run.id and "confirmed on fresh seeds" in v2.evidence[0].summary
    kept = registry.store.get_model(KIND, run.id, RetrainRun)
    assert kept.registered == "v2" and len(kept.result.trials) == 3


def test_cli_retrain_prints_trials_and_names_a_bad_family(
    registry: Registry,
    analysis: FailureAnalysis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`twinloop retrain` prints the trial table; an unknown family is one line, exit 2."""
    path = tmp_path / "analysis.json"
    path.write_text(analysis.model_dump_json())
    args = [
        "retrain",
        "--family",
        FAMILY,
        "--analysis",
        str(path),
        "--samples",
        "2",
        "--rows",
        "3000",
    ]
    assert main([*args, "--no-register"]) == 0
    out = capsys.readouterr().out
    assert "r000" in out and "r001" in out and "confirmation on fresh seeds" in out
    assert main(["retrain", "--family", "nope", "--analysis", str(path)]) == 2
    assert (
        capsys.readouterr().err.strip() == "twinloop retrain: error: model family 'nope' not found"
    )


def test_fitted_decision_layer_recovers_a_hidden_truth() -> None:
    """Intent weights fitted from 6000 labelled rows are within 0.25 of the hidden production's."""
    env = environment("sales")
    hidden = env.model_copy(
        update={
            "segments": [
                s.model_copy(update={"truth_weights": [1.4, -1.0, 0.2, 0.3], "truth_bias": 0.5})
                if s.name == "smb"
                else s
                for s in env.segments
            ]
        }
    )
    fit = fit_intent(env, twin_data(hidden, 6_000, 3))
    (w_true, b_true), (w_fit, b_fit) = truth_tables(hidden), truth_tables(fit.environment)
    assert abs(w_fit - w_true).max() < 0.25 and abs(b_fit - b_true).max() < 0.25
    assert fit.l2 in (0.01, 0.1, 1.0, 10.0) and fit.rows == 6_000


def test_job_spec_errors_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m cluster.jobs.retrain`: an unknown or missing key is one line, exit 2."""
    from cluster.jobs.retrain import main as job

    spec = tmp_path / "retrain.json"
    spec.write_text('{"family": "lead-scoring", "analysis": "a1", "sample": 3}')
    assert job(["--spec", str(spec)]) == 2
    assert capsys.readouterr().err.startswith("retrain job: error: sample: unknown key")
    spec.write_text('{"analysis": "a1"}')
    assert job(["--spec", str(spec)]) == 2
    assert "family: required" in capsys.readouterr().err


def test_docs_example_prints_its_stored_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/retraining.md: setup_family.py, then `twinloop retrain` with the user's trainer."""
    import runpy

    examples = Path(__file__).resolve().parents[2] / "docs" / "examples" / "retrain"
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    monkeypatch.delenv("TWINLOOP_CONFIG", raising=False)
    monkeypatch.syspath_prepend(str(examples))
    runpy.run_path(str(examples / "setup_family.py"), run_name="__main__")
    assert capsys.readouterr().out == (examples / "setup_family.out").read_text()
    args = ["retrain", "--family", FAMILY, "--analysis", "lost-enterprise", "--samples", "6"]
    assert main(args) == 0
    assert capsys.readouterr().out == (examples / "retrain.out").read_text()


def test_http_retrain_answers_202_and_the_run_registers_v2(
    registry: Registry, analysis: FailureAnalysis, tmp_path: Path
) -> None:
    """POST /models/{family}/retrain: 202 with a run; the run ends with v2 registered."""
    from fastapi.testclient import TestClient

    from serve_apps.capabilities.twin import TwinService
    from serve_apps.clients import LocalClient
    from serve_apps.config import app_config
    from serve_apps.ingress import Edge, create_api
    from serve_apps.runs import RunBook
    from twinloop.analysis.analyzer import KIND as ANALYSES

    store = registry.store
    store.put_model(ANALYSES, analysis.experiment_id, analysis)
    config = app_config({"settings": {"data_dir": str(tmp_path)}})
    edge = Edge(
        config=config,
        runs=RunBook(store),
        capabilities={"twin": LocalClient(TwinService(config, store))},
    )
    with TestClient(create_api(edge)) as client:
        bad = client.post(f"/models/{FAMILY}/retrain", json={"analysisId": "nope!"})
        assert bad.status_code == 422 and bad.json()["field"] == "analysisId"
        body = {"analysisId": "lost-enterprise", "samples": 2, "rows": 3_000, "seed": 2}
        accepted = client.post(f"/models/{FAMILY}/retrain", json=body)
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["Location"]
        deadline = time.monotonic() + 120
        run = client.get(location).json()
        while run["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            run = client.get(location).json()
    assert run["status"] == "succeeded", run
    assert run["result"]["registered"] == "v2" and run["result"]["family"] == FAMILY
    assert registry.version(FAMILY, "v2").lineage.parent == "v1"
