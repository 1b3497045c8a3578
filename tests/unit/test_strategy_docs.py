"""The `twinloop plan` example of docs/strategy.md runs and prints its stored output.

Measured compute (CPU seconds of this machine's sandbox runs) differs between runs; those figures
are masked, everything else — ranks, uplifts, intervals, money, ROI, rows — must match.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from cluster.cli import main

DOCS = Path(__file__).resolve().parents[2] / "docs"
MEASURED = [
    (
        re.compile(r"compute [\d,.]+ CPU-s \([\d,.]+ measured \+ (\d+) trials × [\d.]+ s\)"),
        r"compute # CPU-s (# measured + \1 trials × # s)",
    ),
    (re.compile(r"at [\d.]+ CPU-s each"), "at # CPU-s each"),
    (re.compile(r"~[\d,]+ s;"), "~# s;"),
]


def masked(text: str) -> str:
    for pattern, replacement in MEASURED:
        text = pattern.sub(replacement, text)
    return text


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    monkeypatch.delenv("TWINLOOP_CONFIG", raising=False)


def test_plan_example_prints_its_stored_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """make_units.py, `twinloop analyze` (stored), then `twinloop plan twin-ab` = the .out file."""
    units = tmp_path / "twin-ab.parquet"
    runpy.run_path(str(DOCS / "examples" / "analyzer" / "make_units.py"), run_name="x")["main"](
        units
    )
    args = [
        "analyze",
        str(units),
        "--control",
        "model-v2",
        "--dimensions",
        "segment,channel",
        "--value-per-conversion",
        "900",
    ]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["plan", "twin-ab"]) == 0
    expected = (DOCS / "examples" / "strategy" / "twin-ab-plan.out").read_text()
    assert masked(capsys.readouterr().out) == masked(expected)
    assert expected.rstrip() in (DOCS / "strategy.md").read_text()


def test_plan_of_an_unknown_analysis_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The documented error line."""
    assert main(["plan", "nope"]) == 2
    assert capsys.readouterr().err == "twinloop plan: error: analysis 'nope' not found\n"
