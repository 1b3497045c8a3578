"""`twinloop demo` bad input: one readable line on stderr, exit 2, no traceback, nothing started.

Checks run in-process through ``cluster.cli.main`` (fast); one runs the real command in a
subprocess to show what a user sees. The last one checks the demo's hand-over to the
improvement loop (family, versions, improvement) without Ray; ``tests/ray/test_demo.py`` runs
the loop itself."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.cli import main


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWINLOOP_", "RAY_ADDRESS"))}
    env["RAY_AUTH_MODE"] = "disabled"
    return subprocess.run(
        [sys.executable, "-m", "cluster.cli", "demo", "--small", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def _one_line_error(proc: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("twinloop demo: error: ")
    assert pattern in lines[0], lines[0]


@pytest.fixture
def demo(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``twinloop demo --small ARGS`` in this process, as a CompletedProcess."""
    for name in ("TWINLOOP_REDIS_URL", "TWINLOOP_RAY_ADDRESS", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = main(["demo", "--small", *args])
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


def test_missing_parent_folder_in_a_real_process(tmp_path: Path) -> None:
    """The real command: a folder whose parent does not exist is one line and exit 2."""
    proc = _demo("--out", str(tmp_path / "nope" / "out"))
    _one_line_error(proc, "out: the parent folder of")


def test_output_that_is_a_file(
    tmp_path: Path, demo: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """A file where the folder should be is named as such."""
    target = tmp_path / "report"
    target.write_text("x")
    _one_line_error(demo("--out", str(target)), "exists and is not a folder")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_unwritable_output_folder(demo: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """A folder that cannot be created or written (even as root: /proc) is one line."""
    _one_line_error(demo("--out", "/proc/twinloop-demo"), "out: cannot write to")


def test_unreachable_redis(
    tmp_path: Path, demo: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """A Redis nobody answers at fails at start, naming the option."""
    proc = demo("--out", str(tmp_path / "out"), "--redis-url", "redis://127.0.0.1:1/0")
    _one_line_error(proc, "redis_url: the store is unavailable")


def test_unreachable_ray_address(
    tmp_path: Path, demo: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """A Ray address with nothing listening fails fast, naming the option."""
    proc = demo("--out", str(tmp_path / "out"), "--ray-address", "127.0.0.1:1")
    _one_line_error(proc, "ray_address: no Ray cluster answers at '127.0.0.1:1'")


def test_malformed_ray_address(
    tmp_path: Path, demo: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """An address that is not host:port is refused with the expected forms."""
    proc = demo("--out", str(tmp_path / "out"), "--ray-address", "headnode")
    _one_line_error(proc, "is not host:port, auto or ray://")


def test_the_loop_setup_is_registered_once_and_a_rerun_resumes(tmp_path: Path) -> None:
    """The demo's hand-over to the loop (no Ray): the loop's own twin stored, the family with
    model-v2 as v1 and model-v3 as v2 (champion), the analysis under the family's experiment id
    and one improvement; doing it again (a second `twinloop demo` into the same store) adds
    nothing and finds the same improvement."""
    from twinloop.analysis.analyzer import analyze_failure
    from twinloop.demo.loop import family_name, register_family
    from twinloop.demo.scenario import (
        challenger_config,
        champion_config,
        reference_scenario,
    )
    from twinloop.improve.retrain import train_variant
    from twinloop.loop import IMPROVEMENTS
    from twinloop.registry.registry import Registry
    from twinloop.sim.domains import environment
    from twinloop.store import SqliteStore

    scenario = reference_scenario(small=True).model_copy(update={"training_rows": 600})
    twin = environment("sales").model_copy(update={"name": "demo-twin-test"})
    models = (
        train_variant(twin, champion_config(scenario)),
        train_variant(twin, challenger_config(scenario)),
    )
    analysis = analyze_failure({
        "experimentId": "exp-demo", "winner": "model-v2", "loser": "model-v3",
        "metrics": {"revenue": {"winner": 110.0, "loser": 90.0}},
    })  # fmt: skip
    store = SqliteStore(tmp_path / "twinloop.sqlite3")
    first = register_family(store, scenario, twin, models, analysis)
    again = register_family(store, scenario, twin, models, analysis)
    registry = Registry(store)
    name = family_name(scenario)
    assert (first.id, first.family) == (again.id, name)
    assert first.spec.experiment_id == f"exp-demo-{name}"
    assert [v.id for v in registry.versions(name)] == ["v1", "v2"]
    assert registry.alias(name, "champion").version == "v2"
    assert registry.environment(registry.family(name)).name == "demo-twin-test"
    assert len(store.query(IMPROVEMENTS)) == 1
