"""`twinloop demo` bad input: one readable line on stderr, exit 2, no traceback, nothing started.

Checks run in-process through ``cluster.cli.main`` (fast); one runs the real command in a
subprocess to show what a user sees."""

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
