"""`twinloop analyze` and the analyze job as a user runs them: summary, JSON, Parquet with
flags, the stored analysis, the written file, and one-line errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cluster.cli import main
from cluster.jobs import analyze as job
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec
from twinloop.store import SqliteStore

SEED = {
    "experimentId": "exp-123",
    "winner": "model-v2",
    "loser": "model-v3",
    "metrics": {
        "accuracy": {"winner": 0.92, "loser": 0.78, "percentChange": -15.2},
        "latency": {"winner": 100, "loser": 250, "percentChange": 150},
        "satisfaction": {"winner": 0.85, "loser": 0.72, "percentChange": -15.3},
    },
}


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every command keeps its store in a fresh folder."""
    folder = tmp_path / "data"
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(folder))
    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    monkeypatch.delenv("TWINLOOP_CONFIG", raising=False)
    return folder


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def units_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Per-customer rows of a twin A/B test: model-v3 is blind on enterprise and slow."""
    good = ModelProfile(name="model-v2", accuracy=0.85, latency_p50_ms=100, latency_p95_ms=200)
    bad = ModelProfile(
        name="model-v3", accuracy=0.85, latency_p50_ms=400, latency_p95_ms=900,
        segment_overrides={"enterprise": {"accuracy": 0.4}},
    )  # fmt: skip
    env = environment("sales", initial_customers=8_000)
    result = simulate(SimulationSpec(environment=env, models=[good, bad], allocation=[0.5, 0.5],
                                     days=20, seed=2, record_units=True))  # fmt: skip
    assert result.units is not None
    path = tmp_path_factory.mktemp("units") / "twin-ab.parquet"
    pq.write_table(result.units, path)
    return path


def test_analyze_prints_the_summary_and_keeps_the_analysis(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data_dir: Path
) -> None:
    """The seed's JSON gives a readable summary; the analysis lands in the store."""
    path = tmp_path / "exp-123.json"
    path.write_text(json.dumps(SEED))
    code, out, err = run_main(capsys, "analyze", str(path))
    assert code == 0, err
    assert "model-v2 beats model-v3" in out and "no significance" in out
    assert "failure types:" in out and "latency → satisfaction" in out
    assert "top hypotheses" in out
    with SqliteStore(data_dir / "twinloop.sqlite3") as store:
        assert store.get_model("analyses", "exp-123", FailureAnalysis).decision.loser == "model-v3"


def test_analyze_json_is_the_failure_analysis(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--json prints the FailureAnalysis model; --no-store keeps nothing."""
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(SEED))
    code, out, _ = run_main(capsys, "analyze", str(path), "--json", "--no-store")
    assert code == 0
    analysis = FailureAnalysis.model_validate_json(out)
    assert analysis.decision.status == "not_tested"
    assert analysis.patterns.pattern_detection_rate is None


def test_analyze_parquet_with_flags_finds_the_segment(
    capsys: pytest.CaptureFixture[str], units_file: Path
) -> None:
    """Per-unit Parquet with the control, dimensions and primary metric given as flags."""
    code, out, err = run_main(
        capsys, "analyze", str(units_file), "--control", "model-v2", "--dimensions",
        "segment,channel", "--primary", "revenue", "--value-per-conversion", "900",
    )  # fmt: skip
    assert code == 0, err
    assert "experiment twin-ab (raw data): model-v2 beats model-v3 on revenue" in out
    assert "segment=enterprise" in out
    assert "per month:" in out


def test_the_job_writes_the_analysis_to_the_data_dir(
    units_file: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m cluster.jobs.analyze writes <data dir>/analyses/<id>.json and stores it."""
    code = job.main(["--input", str(units_file), "--control", "model-v2",
                     "--experiment-id", "job-1"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    written = data_dir / "analyses" / "job-1.json"
    analysis = FailureAnalysis.model_validate_json(written.read_text())
    assert analysis.experiment_id == "job-1" and analysis.decision.winner == "model-v2"
    assert "analysis written to" in capsys.readouterr().out
    with SqliteStore(data_dir / "twinloop.sqlite3") as store:
        assert store.find("analyses", "job-1") is not None


def test_bad_input_is_one_line_naming_the_field(
    capsys: pytest.CaptureFixture[str], units_file: Path, data_dir: Path
) -> None:
    """A wrong variant column: exit 2, one line on stderr naming raw.variant_column."""
    code, out, err = run_main(capsys, "analyze", str(units_file), "--variant-column", "arm")
    assert code == 2 and out == ""
    assert err.startswith("twinloop analyze: error: raw.variant_column: column 'arm' not found")
    assert len(err.strip().splitlines()) == 1
    assert job.main(["--input", str(units_file), "--variant-column", "arm"]) == 2
    assert not (data_dir / "analyses").exists()


def test_unknown_file_type_and_missing_file_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Neither JSON nor a table, or no file at all: InvalidInput on result."""
    other = tmp_path / "result.txt"
    other.write_text("{}")
    assert run_main(capsys, "analyze", str(other))[2].startswith(
        "twinloop analyze: error: result: result.txt: give a .json result"
    )
    assert "result: no such file" in run_main(capsys, "analyze", str(tmp_path / "x.json"))[2]
