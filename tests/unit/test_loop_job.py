"""The improvement job as a process: killed mid-candidates and resubmitted, the same decision."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import loop_stages

from twinloop.analysis.analyzer import analyze_failure
from twinloop.loop import IMPROVEMENTS, STAGE_OUTPUTS, Improvement
from twinloop.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
SEED = {
    "experimentId": "exp-kill",
    "winner": "model-v2",
    "loser": "model-v3",
    "metrics": {"accuracy": {"winner": 0.92, "loser": 0.78}},
}


def prepare(data_dir: Path) -> Path:
    """A data dir whose store holds the analysis, and the job's spec file."""
    data_dir.mkdir()
    with SqliteStore(data_dir / "twinloop.sqlite3") as store:
        analyze_failure(SEED, store=store)
    spec = data_dir / "spec.json"
    spec.write_text(json.dumps({"experimentId": "exp-kill", "family": "churn", "seed": 11}))
    return spec


def job(data_dir: Path, spec: Path, sleep: float) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINLOOP_")}
    env.update(
        TWINLOOP_DATA_DIR=str(data_dir),
        PYTHONPATH=f"{ROOT}{os.pathsep}{Path(__file__).parent}",
        LOOP_TEST_SLEEP=str(sleep),
    )
    command = [sys.executable, "-m", "cluster.jobs.improve", "--spec", str(spec)]
    command += ["--stages", "loop_stages:STAGES"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def in_candidates(data_dir: Path) -> bool:
    with SqliteStore(data_dir / "twinloop.sqlite3") as store:
        found = store.find_model(IMPROVEMENTS, "imp-exp-kill", Improvement)
        record = None if found is None else found.record("candidates")
        return bool(record and record.status == "running" and store.query(loop_stages.VERSIONS))


def outcome(data_dir: Path) -> dict[str, Any]:
    """What must not depend on the kill: outputs (not their times), versions, alias history."""
    with SqliteStore(data_dir / "twinloop.sqlite3") as store:
        outputs = [s.doc for s in store.query(STAGE_OUTPUTS, order="oldest")]
        return {
            "stage": store.get_model(IMPROVEMENTS, "imp-exp-kill", Improvement).stage,
            "outputs": [{k: v for k, v in o.items() if k != "finished_at"} for o in outputs],
            "versions": sorted(s.id for s in store.query(loop_stages.VERSIONS)),
            "version_writes": [s.version for s in store.query(loop_stages.VERSIONS)],
            "aliases": {
                s.id: [h.doc["version"] for h in store.history(loop_stages.ALIASES, s.id)]
                for s in store.query(loop_stages.ALIASES)
            },
        }


def test_a_killed_driver_resumes_to_the_same_decision(tmp_path: Path) -> None:
    """SIGKILL mid-candidates, resubmit: promoted, 3 versions written once, aliases moved once."""
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    spec = prepare(killed_dir)
    first = job(killed_dir, spec, sleep=0.5)
    deadline = time.monotonic() + 60
    while not in_candidates(killed_dir):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the job never reached the candidates stage"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    with SqliteStore(killed_dir / "twinloop.sqlite3") as store:
        assert store.find(STAGE_OUTPUTS, "imp-exp-kill.candidates") is None
    second = job(killed_dir, spec, sleep=0.0)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "imp-exp-kill: resumed" in out and out.strip().endswith("decision: promoted (done)")

    clean = job(clean_dir, prepare(clean_dir), sleep=0.0)
    assert clean.wait(timeout=120) == 0
    resumed, reference = outcome(killed_dir), outcome(clean_dir)
    assert resumed == reference
    assert resumed["version_writes"] == [1, 1, 1]
    assert all(len(moves) == 1 for moves in resumed["aliases"].values())


def test_a_bad_spec_exits_2_naming_the_field_and_stores_nothing(tmp_path: Path) -> None:
    """seed -1: one line naming ``seed``, exit status 2, no improvement written."""
    data_dir = tmp_path / "bad"
    spec = prepare(data_dir)
    spec.write_text(json.dumps({"experimentId": "exp-kill", "seed": -1}))
    proc = job(data_dir, spec, sleep=0.0)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().startswith("improve job: error: seed:")
    with SqliteStore(data_dir / "twinloop.sqlite3") as store:
        assert store.query(IMPROVEMENTS) == []
