"""`twinloop sandbox …` and the sandbox job as a user runs them: output, JSON, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.cli import main
from cluster.commands.sandbox import KINDS
from cluster.jobs import sandbox as job
from twinloop.config import load_settings
from twinloop.sandbox import SandboxTestSpec, parse_sandbox_spec, run_test
from twinloop.sandbox.results import AbTestResult, SandboxTestResult
from twinloop.sandbox.runner import check_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sandbox"


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sandbox_test_prints_a_kpi_table(capsys: pytest.CaptureFixture[str]) -> None:
    """A serial test prints each KPI with its interval, primary KPIs starred."""
    code, out, _ = run_main(
        capsys,
        "sandbox",
        "test",
        "--domain",
        "sales",
        "--customers",
        "500",
        "--days",
        "5",
        "--replicates",
        "3",
        "--serial",
        "--no-progress",
    )
    assert code == 0
    assert "sandbox test: model 'model' in sales-b2b, 5 days, 3 replicates (seed 0)" in out
    assert "* conversion_rate" in out and "delta" in out and "fingerprint" in out


def test_json_output_is_the_result_model(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints a SandboxTestResult equal to the Python API's result for the same spec."""
    code, out, _ = run_main(
        capsys,
        "sandbox",
        "test",
        "--customers",
        "500",
        "--days",
        "5",
        "--replicates",
        "3",
        "--seed",
        "4",
        "--serial",
        "--json",
        "--no-progress",
    )
    assert code == 0
    printed = SandboxTestResult.model_validate_json(out)
    direct = run_test(SandboxTestSpec(customers=500, days=5, replicates=3, seed=4))
    assert printed.fingerprint() == direct.fingerprint()


def test_spec_file_and_flags_combine(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Flags override the spec file's fields; --out writes Parquet and a summary."""
    spec = json.loads((EXAMPLES / "ab_test.json").read_text())
    spec.update(customers=800, days=3)
    (tmp_path / "ab.json").write_text(json.dumps(spec))
    code, out, _ = run_main(
        capsys,
        "sandbox",
        "ab-test",
        "--spec",
        str(tmp_path / "ab.json"),
        "--replicates",
        "4",
        "--alpha",
        "0.1",
        "--serial",
        "--json",
        "--no-progress",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0
    result = AbTestResult.model_validate_json(out)
    assert result.replicates == 4 and result.alpha == 0.1 and result.spec.customers == 800
    (folder,) = (tmp_path / "out").iterdir()
    assert {p.name for p in folder.iterdir()} == {
        "replicates.parquet",
        "tests.parquet",
        "summary.json",
    }


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["test", "--domain", "mars"], "environment"),
        (["test", "--replicates", "0"], "replicates"),
        (
            ["ab-test", "--model", "{a}", "--model", "{b}", "--allocation", "0.7", "0.7"],
            "allocation",
        ),
        (["compare", "--model", "{a}"], "model"),
        (["grid", "--model", "{a}", "--rank-by", "happiness"], "rank_by"),
    ],
)
def test_bad_input_is_one_line_naming_the_field_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], field: str
) -> None:
    """Exit 2, one line on stderr naming the field, and no output folder."""
    (tmp_path / "a.json").write_text('{"name": "a"}')
    (tmp_path / "b.json").write_text('{"name": "b"}')
    argv = [a.format(a=tmp_path / "a.json", b=tmp_path / "b.json") for a in args]
    out_dir = tmp_path / "out"
    code, out, err = run_main(
        capsys, "sandbox", *argv, "--serial", "--no-progress", "--out", str(out_dir)
    )
    assert code == 2 and out == ""
    assert err.startswith(f"twinloop sandbox: error: {field}") and err.count("\n") == 1
    assert not out_dir.exists()


def test_job_refuses_a_bad_spec_before_touching_ray(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The Ray job validates first: exit 2, one line, nothing stored (Ray is never started)."""
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "kind": "compare",
                "baseline": {"name": "a"},
                "challenger": {
                    "type": "predictor",
                    "name": "b",
                    "import_path": "nowhere.mod:Model",
                },
            }
        )
    )
    data = tmp_path / "data"
    code = job.main(["--spec", str(bad), "--data-dir", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and "challenger.import_path" in err
    assert not data.exists()


@pytest.mark.parametrize("name", ["test", "compare", "grid", "ab_test"])
def test_documented_example_specs_are_valid(name: str) -> None:
    """Every example spec in docs/examples/sandbox passes every pre-run check."""
    spec = parse_sandbox_spec(json.loads((EXAMPLES / f"{name}.json").read_text()))
    check_spec(spec, load_settings(environ={}))  # type: ignore[arg-type]
    assert spec.kind == name


@pytest.mark.parametrize("argv", [["sandbox"], *(["sandbox", k] for k in KINDS)])
def test_every_command_prints_its_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """`--help` works for the group and every kind (help texts are %-formatted by argparse)."""
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0 and "usage: twinloop sandbox" in capsys.readouterr().out
