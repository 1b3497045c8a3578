"""`twinloop models …`, `twinloop championship` and the championship job as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from cluster.cli import main
from cluster.jobs import championship as job
from twinloop.sim.domains import environment
from twinloop.sim.groundtruth import sample_customers


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    monkeypatch.delenv("TWINLOOP_CONFIG", raising=False)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def write_json(path: Path, data: object) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_create_register_alias_and_championship(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    """The documented walk-through: a family, three versions (one ONNX), a championship."""
    assert cli(capsys, "models", "create", "lead-scoring", "--guardrail", "cost=0.1")[0] == 0
    x, y, _ = sample_customers(environment("sales"), 2000, np.random.default_rng(2))
    fitted = LogisticRegression(max_iter=500).fit(x, y)
    onnx = data_dir / "model.onnx"
    options = {id(fitted): {"zipmap": False}}
    onnx.write_bytes(to_onnx(fitted, x[:1].astype(np.float32), options=options).SerializeToString())
    champion = write_json(data_dir / "champion.json", {"accuracy": 0.7})
    assert cli(capsys, "models", "register", "lead-scoring", "--model", champion)[0] == 0
    code, out, _ = cli(capsys, "models", "register", "lead-scoring", "--onnx", str(onnx),
                       "--latency-p95-ms", "150", "--parent", "v1")  # fmt: skip
    assert code == 0 and "registered lead-scoring/v2: onnx sha256" in out
    assert cli(capsys, "models", "alias", "lead-scoring", "champion", "v1")[0] == 0
    code, out, _ = cli(capsys, "models", "list", "lead-scoring")
    assert "v1       champion" in out and "v2       -           v1      onnx" in out
    small = ("--replicates", "4", "--customers", "300", "--days", "5", "--no-progress")
    code, out, _ = cli(
        capsys, "championship", "lead-scoring", "--versions", "v2", "--serial", *small
    )
    assert code == 0 and "P(row better than column) on revenue" in out
    assert "decision: " in out
    code, out, _ = cli(capsys, "models", "show", "lead-scoring", "v2")
    assert json.loads(out)["evidence"][0]["kind"] == "championship"


def test_errors_are_one_line_and_store_nothing(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    """Not ONNX, unknown family, unknown version: exit 2, one line naming the problem."""
    cli(capsys, "models", "create", "lead-scoring")
    junk = data_dir / "junk.onnx"
    junk.write_bytes(b"not a model")
    code, _, err = cli(capsys, "models", "register", "lead-scoring", "--onnx", str(junk))
    assert code == 2 and "model.content: not a loadable ONNX model" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "models", "list", "nope")
    assert code == 2 and "model family 'nope' not found" in err
    code, out, _ = cli(capsys, "models", "list", "lead-scoring")
    assert out.strip().splitlines()[1:] == []  # header only: nothing was registered
    spec = write_json(data_dir / "spec.json", {"family": "lead-scoring", "versions": ["v4"]})
    assert job.main(["--spec", spec, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "championship job: error: family: 'lead-scoring' has no champion: set the alias first\n"
    )
