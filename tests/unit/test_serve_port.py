"""``twinloop serve`` refuses a port someone already listens on, naming the port and the holder."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from cluster.cli import main
from cluster.ports import busy_port_message, holders, port_is_free


@pytest.fixture
def reuseport_listener() -> Iterator[int]:
    """A listener with SO_REUSEPORT, as Serve's proxy opens it, on a free loopback port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_reuseport_listener_makes_the_port_busy(reuseport_listener: int) -> None:
    """A plain bind fails where SO_REUSEPORT would have let a second server share the port."""
    assert not port_is_free("127.0.0.1", reuseport_listener)
    assert not port_is_free("0.0.0.0", reuseport_listener)
    assert holders(reuseport_listener) == [f"pid {os.getpid()} ({_cmdline()})"]


def test_serve_on_a_busy_port_exits_2_with_one_line(
    reuseport_listener: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The error names the port and this process as its holder; nothing is started."""
    assert main(["serve", "--port", str(reuseport_listener)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"twinloop serve: error: port: 127.0.0.1:{reuseport_listener} is")
    assert f"held by pid {os.getpid()} (" in err[0]


def test_a_free_port_has_no_message() -> None:
    """A port nobody listens on gives no message (the check does not keep it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert busy_port_message("127.0.0.1", port) is None


def _cmdline() -> str:
    with open(f"/proc/{os.getpid()}/cmdline", "rb") as fh:
        return fh.read().replace(b"\0", b" ").strip().decode()[:80]
