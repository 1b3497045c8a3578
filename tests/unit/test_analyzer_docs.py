"""The analyzer examples in docs/ run and print exactly their stored output."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from cluster.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "analyzer"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    monkeypatch.delenv("TWINLOOP_CONFIG", raising=False)


@pytest.mark.parametrize("name", ["exp-123", "summary"])
def test_json_examples_print_their_stored_output(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`twinloop analyze docs/examples/analyzer/<name>.json --no-store` prints <name>.out."""
    assert main(["analyze", str(EXAMPLES / f"{name}.json"), "--no-store"]) == 0
    assert capsys.readouterr().out == (EXAMPLES / f"{name}.out").read_text()


def test_twin_example_prints_its_stored_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """make_units.py writes the twin's rows; analysing them prints twin-ab.out."""
    units = tmp_path / "twin-ab.parquet"
    runpy.run_path(str(EXAMPLES / "make_units.py"), run_name="not_main")["main"](units)
    capsys.readouterr()
    args = ["analyze", str(units), "--control", "model-v2", "--dimensions", "segment,channel",
            "--value-per-conversion", "900", "--no-store"]  # fmt: skip
    assert main(args) == 0
    assert capsys.readouterr().out == (EXAMPLES / "twin-ab.out").read_text()
