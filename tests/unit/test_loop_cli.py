"""``twinloop improve`` and ``twinloop preflight``: one line per stage, one line per error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.cli import main
from twinloop.analysis.analyzer import analyze_failure
from twinloop.loop import IMPROVEMENTS
from twinloop.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    monkeypatch.delenv("TWINLOOP_CONFIG", raising=False)
    with SqliteStore(tmp_path / "twinloop.sqlite3") as store:
        result = json.loads((ROOT / "docs/examples/analyzer/summary.json").read_text())
        analyze_failure(result, store=store)
    return tmp_path


def test_start_resume_show_cancel(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Planned, then the gap (the family is not registered, so the performance agent cannot
    start); a second start resumes; cancel ends it."""
    assert main(["improve", "start", "--experiment", "exp-200", "--seed", "7"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "imp-exp-200: started" and out[-1] == "state: planned (stalled)"
    assert "candidates unavailable — the performance agent cannot start" in out[-2]
    assert "model family 'exp-200' not found" in out[-2]
    assert main(["improve", "start", "--experiment", "exp-200"]) == 0
    assert capsys.readouterr().out.startswith("imp-exp-200: resumed")
    assert main(["improve", "show", "imp-exp-200"]) == 0
    assert '"status": "stalled"' in capsys.readouterr().out
    assert main(["improve", "cancel", "imp-exp-200"]) == 0
    assert capsys.readouterr().out == "imp-exp-200: cancelled — cancelled after planned\n"


def test_bad_input_is_one_line_and_stores_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An experiment never analysed, a negative seed: exit 2, the field named, nothing kept."""
    assert main(["improve", "start", "--experiment", "exp-999"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "twinloop improve: error: experiment_id: no stored analysis of 'exp-999'; "
        "analyse the A/B test first\n"
    )
    assert main(["improve", "start", "--experiment", "exp-200", "--seed", "-1"]) == 2
    assert capsys.readouterr().err.startswith("twinloop improve: error: seed: ")
    with SqliteStore(data_dir / "twinloop.sqlite3") as store:
        assert store.query(IMPROVEMENTS) == []


def test_preflight_prints_the_kept_prediction(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The docs' pre-flight spec: a positive predicted effect inside its interval."""
    assert main(["preflight", "--spec", str(ROOT / "docs/examples/loop/preflight.json")]) == 0
    out = capsys.readouterr().out
    assert '"challenger": "model-v4"' in out and '"kpi": "revenue"' in out
