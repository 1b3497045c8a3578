"""``twinloop serve``: run the HTTP API on Ray Serve from ``serve_apps/serve_config.yaml``.

The config file stays the one artifact: this command copies it with the host and port set
(flags, else ``TWINLOOP_HTTP_HOST`` / ``TWINLOOP_HTTP_PORT``) and hands it to Ray's own
``serve run``, which starts a local Ray (or joins ``--address``) and deploys it. Ctrl-C stops it.
``--print-config`` shows the effective config without starting anything.

Closed by default: Ray's token auth stays on (``RAY_AUTH_MODE=token`` unless the environment
says otherwise; a local Ray writes ``~/.ray/auth_token``), because Ray's GCS and gRPC ports
listen on every interface and the token is what closes them; the dashboard stays on loopback.
A port someone already listens on is refused before Ray starts (Serve's proxy sets
``SO_REUSEPORT``, so it would otherwise share the port with the other server).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cluster.ports import busy_port_message
from twinloop.config import load_settings
from twinloop.errors import InvalidInput

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "serve_apps" / "serve_config.yaml"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the HTTP API on Ray Serve (serve_apps/serve_config.yaml)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default TWINLOOP_HTTP_PORT)")
    p.add_argument(
        "--host", default=None, help="interface to bind (default TWINLOOP_HTTP_HOST, 127.0.0.1)"
    )
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="Serve config file")
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join (host:port or auto; default TWINLOOP_RAY_ADDRESS, "
        "else a new local Ray)",
    )
    p.add_argument(
        "--non-blocking",
        action="store_true",
        help="return once deployed instead of streaming logs until Ctrl-C",
    )
    p.add_argument(
        "--print-config", action="store_true", help="print the effective Serve config and exit"
    )
    p.set_defaults(handler=run)


def effective_config(config: Path, host: str | None, port: int | None) -> dict[str, Any]:
    """The config file with http_options.host/port set; InvalidInput names a bad flag."""
    settings = load_settings()
    host = host if host is not None else settings.http_host
    port = port if port is not None else settings.http_port
    if not 1 <= port <= 65535:
        raise InvalidInput("port", f"{port} is not a TCP port (1..65535)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise InvalidInput("host", f"{host!r} is not an IP address or 'localhost'") from None
    if not config.is_file():
        raise InvalidInput("config", f"no such file {str(config)!r}")
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput("config", f"{config} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("config", f"{config} must hold a mapping")
    data.setdefault("http_options", {})
    data["http_options"].update({"host": host, "port": port})
    return data


def run(args: argparse.Namespace) -> int:
    data = effective_config(args.config, args.host, args.port)
    text = yaml.safe_dump(data, sort_keys=False)
    if args.print_config:
        print(text, end="")
        return 0
    host, port = data["http_options"]["host"], data["http_options"]["port"]
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"twinloop serve: warning: binding {host}; put a TLS proxy in front and set "
            "TWINLOOP_API_TOKEN",
            file=sys.stderr,
        )
    serve_cli = Path(sys.executable).with_name("serve")
    with tempfile.TemporaryDirectory(prefix="twinloop-serve-") as tmp:
        path = Path(tmp) / "serve_config.yaml"
        path.write_text(text, encoding="utf-8")
        # "local" unless told otherwise: a bare ray.init() would join whatever cluster the last
        # `ray start` on this machine recorded, which on a shared machine may be someone else's.
        address = args.address or load_settings().ray_address or "local"
        if address == "local" and (busy := busy_port_message(host, port)) is not None:
            raise InvalidInput("port", busy)
        command = [str(serve_cli), "run", str(path), "--address", address]
        if args.non_blocking:
            command.append("--non-blocking")
        print(f"twinloop serve: http://{host}:{port}/docs  (config {args.config})", file=sys.stderr)
        # The project root on sys.path of `serve run`, so serve_apps imports from a checkout too.
        env = {
            **_auth_env(os.environ, local=address == "local"),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(DEFAULT_CONFIG.parents[1]), os.environ.get("PYTHONPATH")) if p
            ),
        }
        return _run_forwarding_signals(command, env)


def _auth_env(environ: Mapping[str, str], *, local: bool) -> dict[str, str]:
    """The environment with Ray's token auth on for a new local Ray, unless the user chose a
    mode; joining a cluster, Ray itself uses a token when one exists (``~/.ray/auth_token``)."""
    env = dict(environ)
    mode = env.setdefault("RAY_AUTH_MODE", "token") if local else env.get("RAY_AUTH_MODE", "")
    if mode.lower() == "disabled":
        print(
            f"twinloop serve: warning: RAY_AUTH_MODE={mode} leaves Ray's control plane (GCS, "
            "Jobs API) open to anyone who reaches this host; unset it to keep token auth",
            file=sys.stderr,
        )
    return env


def _run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Run ``serve run`` and pass SIGTERM on, so stopping this command stops Serve and Ray."""
    child = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: child.send_signal(signum))
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # the terminal sent SIGINT to serve run too; wait for its clean exit
    finally:
        signal.signal(signal.SIGTERM, previous)
