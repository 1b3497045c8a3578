"""`twinloop simulate` and `twinloop demo` as a user types them: output, JSON, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cluster.cli import main


def twinloop(*args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cluster.cli", *args], capture_output=True, text=True, timeout=120
    )


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same CLI in-process (fast): exit code, stdout, stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_simulate_prints_a_summary_and_writes_parquet(tmp_path: Path) -> None:
    """A small run prints the twin, the throughput and the model's KPIs, and writes KPIs."""
    out = tmp_path / "kpis.parquet"
    done = twinloop(
        "simulate",
        "--domain",
        "sales",
        "--customers",
        "2000",
        "--days",
        "5",
        "--seed",
        "1",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "twin sales-b2b (sales), 5 days, seed 1" in done.stdout
    assert "customer-days/s" in done.stdout and "conversions" in done.stdout
    assert pq.read_table(out).num_rows == 5


def test_simulate_json_is_the_summary_model(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the SimulationSummary with its seed."""
    code, out, _ = run_main(
        capsys, "simulate", "--customers", "1000", "--days", "3", "--seed", "4", "--json"
    )
    data = json.loads(out)
    assert code == 0
    assert data["seed"] == 4 and data["steps"] == 3 and data["variants"][0]["variant"] == "model"


def test_bad_input_exits_non_zero_with_one_readable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown domain, bad model JSON, missing out folder: exit 2 and one stderr line."""
    bad_model = tmp_path / "m.json"
    bad_model.write_text('{"accuracy": 1.5}')
    cases = [
        (["simulate", "--domain", "retail"], "domain: unknown domain"),
        (["simulate", "--model", str(bad_model)], "model.accuracy"),
        (["simulate", "--days", "-3"], "days"),
        (["simulate", "--out", str(tmp_path / "no" / "k.parquet")], "out: folder"),
    ]
    for args, message in cases:
        code, _, err = run_main(capsys, *args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], err
