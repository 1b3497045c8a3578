"""The statistics examples in docs/ run and print exactly their stored output."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "stats"


@pytest.mark.parametrize("name", ["compare_example", "rawdata_example"])
def test_example_output_is_unchanged(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/examples/stats/<name>.py prints <name>.out (run in-process: no interpreter start)."""
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    assert capsys.readouterr().out == (EXAMPLES / f"{name}.out").read_text()
