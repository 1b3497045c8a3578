"""``twinloop serve`` started the documented way keeps Ray's control plane closed.

The server runs as a user would start it — ``twinloop serve --port P`` with ``RAY_AUTH_MODE``
unset — in a subprocess with a temporary ``HOME`` (so Ray writes a fresh token there) and a
temporary ``RAY_TMPDIR`` (so its session folder, with the ports it chose, is ours alone). Each
control-plane door is knocked on twice: without the token it must refuse, with the token it must
answer, so a probe that cannot reach the door at all does not pass as "refused".
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cluster.ports import holders

# ``before_session_ray``: tests/conftest.py runs this module before any test starts the session's
# Ray, whose dashboard agent would otherwise hold Ray's fixed agent port and hide our agent's.
pytestmark = [pytest.mark.serve, pytest.mark.slow, pytest.mark.before_session_ray]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240.0
AGENT_PORT = 52365  # Ray's default dashboard agent HTTP port
# ray.init's "View the dashboard at http://127.0.0.1:8265" line, colour codes stripped first.
DASHBOARD = re.compile(r"View the dashboard at (?:http://)?([0-9.]+:\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
GCS_PROBE = """
import sys
from ray._raylet import GcsClient
client = GcsClient(address=sys.argv[1])
client.internal_kv_get(b"twinloop-probe", None, timeout=30)
print("answered")
"""


@dataclass(frozen=True)
class Server:
    """A running ``twinloop serve`` and the doors of its Ray."""

    http: str
    dashboard: str
    agent_port: int | None
    agent_failure: str  # the agent's own reason when agent_port is None
    gcs: str
    token: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _session_port(session: Path, name: str) -> int:
    (path,) = session.glob(f"{name}_*")
    return int(path.read_text().strip())


def _agent_port(session: Path) -> int | None:
    """Our dashboard agent's HTTP port, as the agent itself records it in our session folder.

    Once it has tried to listen, the agent writes ``dashboard_agent_listen_port_<node id>``: the
    port, or -1 when it could not bind (it then stays alive without HTTP). Ray's agent port is
    fixed (52365, not settable through ``serve run``), so -1 means another Ray on the machine
    held it when ours started. The file is ours alone (our ``RAY_TMPDIR``): no other cluster's
    agent can be mistaken for ours. (Finding it in /proc by the ``RAY_TMPDIR`` in its environ
    failed in full runs: the title ``ray::DashboardAgent`` is written over the argv/environ area,
    and /proc/<pid>/environ of our own listening agent read blank.)
    """
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for path in session.glob("dashboard_agent_listen_port_*"):
            text = path.read_text().strip()
            if text:  # written in one go, but read it only once it holds a number
                port = int(text)
                return port if port > 0 else None
        time.sleep(1)
    pytest.fail(f"our dashboard agent recorded no port in {session} in {START_TIMEOUT_S} s")


def _agent_failure(session: Path) -> str:
    """The agent's own account of why it has no HTTP port (its log's failure line)."""
    log = session / "logs" / "dashboard_agent.log"
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    failed = [line for line in lines if "Failed to start HTTP server" in line]
    return failed[0].split(" -- ", 1)[-1] if failed else "no failure line in its log"


def _wait_until_up(proc: subprocess.Popen[str], http: str, log: Path) -> str:
    """The dashboard address once /healthz answers; fails with the log if it never does."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"twinloop serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{http}/healthz", timeout=2).status_code == 200:
                found = DASHBOARD.search(ANSI.sub("", log.read_text()))
                assert found, "ray.init did not print the dashboard address"
                return f"http://{found.group(1)}"
        except httpx.HTTPError:
            pass
        time.sleep(2)
    pytest.fail(f"twinloop serve was not up in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """``twinloop serve --port P`` with a fresh HOME and no RAY_AUTH_MODE, stopped afterwards."""
    from ray._private.services import get_node_ip_address

    with tempfile.TemporaryDirectory(prefix="tl-", dir="/tmp") as tmp:
        home, raytmp = Path(tmp) / "home", Path(tmp) / "ray"
        home.mkdir()
        raytmp.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(HOME=str(home), RAY_TMPDIR=str(raytmp), TWINLOOP_DATA_DIR=str(Path(tmp) / "d"))
        env.pop("TWINLOOP_API_TOKEN", None)
        port = _free_port()
        log = Path(tmp) / "serve.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cluster.cli", "serve", "--port", str(port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,
            )  # fmt: skip
        try:
            http = f"http://127.0.0.1:{port}"
            dashboard = _wait_until_up(proc, http, log)
            session = raytmp / "ray" / "session_latest"
            token = (home / ".ray" / "auth_token").read_text().strip()
            ip = get_node_ip_address()
            agent_port = _agent_port(session)
            yield Server(
                http=http,
                dashboard=dashboard,
                agent_port=agent_port,
                agent_failure="" if agent_port else _agent_failure(session),
                gcs=f"{ip}:{_session_port(session, 'gcs_server_port')}",
                token=token,
                env=env,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_was_written_to_the_fresh_home(server: Server) -> None:
    """Ray's token auth was on: it wrote a token into the (temporary) home directory."""
    assert len(server.token) >= 32
    assert server.dashboard.startswith("http://127.0.0.1:"), "dashboard must bind loopback"


def test_jobs_api_refuses_without_the_token(server: Server) -> None:
    """The dashboard's Jobs API: 401 without a token, 403 with a wrong one, 200 with it."""
    url = f"{server.dashboard}/api/jobs/"
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, headers=_bearer("not-the-token"), timeout=30).status_code == 403
    assert httpx.get(url, headers=_bearer(server.token), timeout=30).status_code == 200


def test_dashboard_agent_job_endpoint_refuses_without_the_token(server: Server) -> None:
    """The agent's job submission endpoint, on the node's address, refuses a tokenless POST."""
    from ray._private.services import get_node_ip_address

    if server.agent_port is None:
        # Only a port someone else holds is an outside condition; any other failure is ours.
        assert "address already in use" in server.agent_failure, server.agent_failure
        now = ", ".join(holders(AGENT_PORT)) or "nobody we can see"
        pytest.skip(
            f"our dashboard agent could not listen on Ray's fixed agent port {AGENT_PORT}, held by "
            f"another Ray on this machine (now by {now}); the agent's log: {server.agent_failure}"
        )
    url = f"http://{get_node_ip_address()}:{server.agent_port}/api/job_agent/jobs/"
    body = {"entrypoint": "echo pwned"}
    refused = httpx.post(url, json=body, timeout=30)
    assert refused.status_code == 401, refused.text
    # With the token the agent looks at the request (and refuses it for its content instead):
    # it is the token that closed the door, not an unreachable port.
    answered = httpx.post(url, json={}, headers=_bearer(server.token), timeout=30)
    assert answered.status_code not in (401, 403), answered.text


def _gcs_probe(server: Server, *, with_token: bool) -> subprocess.CompletedProcess[str]:
    env = dict(server.env, RAY_AUTH_MODE="token" if with_token else "disabled")
    if not with_token:
        env["HOME"] = tempfile.mkdtemp(prefix="tl-nohome-")
    return subprocess.run(
        [sys.executable, "-c", GCS_PROBE, server.gcs],
        env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def test_gcs_refuses_a_client_without_the_token(server: Server) -> None:
    """A GCS client without the token is refused; the same client with the token is answered."""
    refused = _gcs_probe(server, with_token=False)
    assert refused.returncode != 0 and "answered" not in refused.stdout
    assert re.search(r"auth|token|UNAUTHENTICATED", refused.stderr, re.IGNORECASE), refused.stderr
    answered = _gcs_probe(server, with_token=True)
    assert answered.returncode == 0 and "answered" in answered.stdout, answered.stderr


def test_a_second_serve_on_the_same_port_is_refused(server: Server) -> None:
    """``twinloop serve`` on the port the first one holds exits 2 with one line naming it."""
    port = server.http.rsplit(":", 1)[1]
    proc = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "serve", "--port", port],
        cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"127.0.0.1:{port} is already in use, held by pid" in lines[0]
    assert "ProxyActor" in lines[0] or "ray::" in lines[0], lines[0]
