"""Benchmark of the HTTP API on Ray Serve: latency and throughput at 16 concurrent clients.

Run: ``.venv/bin/python -m bench.serve [--seconds 60] [--concurrency 16] [--no-access-log]
[--serve-env NAME=VALUE] [--write]``.

It starts a private local Ray (2 CPUs) and the Serve application on a free loopback port, then,
route by route, keeps ``concurrency`` keep-alive connections busy for ``seconds`` with
``bench.loadgen`` (its own process, about 0.1-0.2 ms of CPU per request, reported in the table)
and reports p50/p99 latency, throughput and errors (any non-2xx or transport error). The floor
is ``GET /healthz`` — a no-op route of the same app, answered by the ingress alone;
``GET /healthz?deep=true`` adds one DeploymentHandle round trip to each capability deployment.
``/metrics/what-if`` (the seed body) and ``/analyze-failure`` (the summary form: sufficient
statistics per variant) are bounded requests the ingress answers itself; the stored analysis
writes the analysis, its signature and its patterns to the Store, as a client's default request
does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SEED_WHAT_IF = {
    "baseMetrics": {
        "accuracy": 0.78,
        "latency": 250.0,
        "satisfaction": 0.72,
        "conversion": 0.05,
        "revenue": 10_000.0,
    },
    "changes": {"accuracy": 0.1, "latency": -0.2},
}
SUMMARY_ANALYZE = {  # docs/examples/analyzer/summary.json: sufficient statistics per variant
    "experimentId": "exp-200",
    "testResult": {
        "variants": [
            {"name": "model-v2", "control": True, "plannedAllocation": 0.5},
            {"name": "model-v3", "plannedAllocation": 0.5},
        ],
        "businessParameters": {"trafficPerDay": 50000, "valuePerConversion": 40},
        "metrics": {
            "conversion": {
                "kind": "conversion",
                "role": "primary",
                "variants": {
                    "model-v2": {"n": 10000, "successes": 1200},
                    "model-v3": {"n": 10050, "successes": 1100},
                },
            },
            "latency_ms": {
                "variants": {
                    "model-v2": {"n": 10000, "mean": 100.0, "std": 30.0},
                    "model-v3": {"n": 10050, "mean": 131.0, "std": 35.0},
                }
            },
            "satisfaction": {
                "variants": {
                    "model-v2": {"n": 10000, "mean": 0.80, "std": 0.10},
                    "model-v3": {"n": 10050, "mean": 0.78, "std": 0.10},
                }
            },
        },
    },
}


@dataclass
class Case:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    expect: int | None = None  # the one status that is not an error; None: any 2xx


@dataclass
class Outcome:
    case: Case
    latencies_s: list[float]
    errors: int
    seconds: float
    loadgen_cpu_s: float
    server_cpu_s: dict[str, float]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_s) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.seconds

    def cpu_ms_per_request(self, role: str) -> float:
        return 1000 * self.server_cpu_s[role] / max(1, len(self.latencies_s))

    @property
    def loadgen_share(self) -> float:
        """The load generator's CPU as a share of the machine's cores."""
        return self.loadgen_cpu_s / self.seconds / (os.cpu_count() or 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ROLES = ("proxy", "ingress", "capabilities", "other Ray")


def _role(title: str) -> str | None:
    """Which part of the deployment a process is, from the title Ray gives its workers."""
    if title.startswith("ray::ProxyActor"):
        return "proxy"
    if title.startswith("ray::ServeReplica:") and title.endswith(":Ingress"):
        return "ingress"
    if title.startswith("ray::ServeReplica:"):
        return "capabilities"
    if title.startswith("ray::") or title.split("/")[-1].startswith(("raylet", "gcs_server")):
        return "other Ray"
    return None


def cpu_seconds_by_role() -> dict[str, float]:
    """CPU seconds (user + system) used so far by each role's processes, read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(ROLES, 0.0)
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended between the listing and the read
        role = _role(title.strip())
        if role is not None:
            used[role] += (int(fields[11]) + int(fields[12])) / tick
    return used


def _loadgen(
    port: int, case: Case, seconds: float, concurrency: int, scratch: Path
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        f"--port={port}",
        f"--method={case.method}",
        f"--path={case.path}",
        f"--seconds={seconds}",
        f"--concurrency={concurrency}",
        "--warmup=0",
    ]
    if case.body is not None:
        body_file = scratch / f"body-{abs(hash(case.name))}.json"
        body_file.write_text(json.dumps(case.body), encoding="utf-8")
        command.append(f"--body-file={body_file}")
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


def _load(
    port: int, case: Case, seconds: float, concurrency: int, warmup_s: float, scratch: Path
) -> Outcome:
    """One route under load, driven by ``bench.loadgen`` in its own process: a warm-up run, then
    the measured run with the server's CPU read around it."""
    if warmup_s > 0:
        _loadgen(port, case, warmup_s, concurrency, scratch)
    before = cpu_seconds_by_role()
    seen = _loadgen(port, case, seconds, concurrency, scratch)
    after = cpu_seconds_by_role()
    errors = seen["errors"]
    if case.expect is not None:
        errors = sum(n for status, n in seen["statuses"].items() if int(status) != case.expect)
    server_cpu = {role: after[role] - before[role] for role in ROLES}
    return Outcome(case, seen["latencies_s"], errors, seen["seconds"], seen["cpu_s"], server_cpu)


def _direct_ingress_port(proxy_port: int) -> int:
    """The ingress replica's own HTTP port under Serve's direct ingress (Ray allocates it from
    RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT, 30000 by default): the first that answers
    /healthz like the app does."""
    import httpx

    first = int(os.environ.get("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "30000"))
    for port in range(first, first + 50):
        if port == proxy_port:
            continue
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except httpx.HTTPError:
            continue
        if answer.status_code == 200 and "capabilities" in answer.json():
            return port
    raise RuntimeError("no ingress replica listens on a direct-ingress port")


def cases(routes: dict[str, Any]) -> list[Case]:
    found = [
        Case("no-op floor", "GET", "/healthz"),
        Case("handle round trip", "GET", "/healthz?deep=true"),
        # Serve's proxy hands a request body to the replica through one more actor call; a POST
        # of the what-if body to a GET-only route reads the body and answers 405 at once: the
        # transport floor of a POST, beside the GET floor above.
        Case(
            "no-op POST floor (405 after reading the body)", "POST", "/healthz", SEED_WHAT_IF, 405
        ),
        Case("what-if (seed body)", "POST", "/metrics/what-if", SEED_WHAT_IF),
    ]
    if "/analyze-failure" in routes:
        found.append(
            Case(
                "analyze-failure (summary form, stored)",
                "POST",
                "/analyze-failure",
                SUMMARY_ANALYZE,
            )
        )
        found.append(
            Case(
                "analyze-failure (summary form, not stored)",
                "POST",
                "/analyze-failure",
                {**SUMMARY_ANALYZE, "store": False},
            )
        )
    return found


def run(
    seconds: float,
    concurrency: int,
    warmup_s: float,
    access_log: bool = True,
    serve_env: dict[str, str] | None = None,
    direct_ingress: bool = False,
) -> list[Outcome]:
    # Serve reads its RAY_SERVE_* switches when its processes start; the local cluster started
    # below inherits this environment.
    os.environ.update(serve_env or {})
    import httpx
    import ray
    from ray import serve

    from serve_apps.app import APP_NAME, build_app

    # "local": a bare ray.init() would join a cluster some `ray start` on this machine left.
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    with tempfile.TemporaryDirectory(prefix="twinloop-bench-serve-") as data_dir:
        app = build_app({"settings": {"data_dir": data_dir}})
        serve.run(
            app, name=APP_NAME, route_prefix="/", logging_config={"enable_access_log": access_log}
        )
        if direct_ingress:
            port = _direct_ingress_port(port)
        routes = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=30).json()["paths"]
        scratch = Path(data_dir)
        outcomes = [_load(port, c, seconds, concurrency, warmup_s, scratch) for c in cases(routes)]
        serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()
    return outcomes


def table(outcomes: list[Outcome], concurrency: int, seconds: float) -> str:
    floor = outcomes[0].p50_ms
    lines = [
        f"| route (concurrency {concurrency}, {seconds:g} s each) | requests | errors | "
        "p50 ms | p99 ms | req/s | p50 / floor | load generator CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        lines.append(
            f"| `{o.case.method} {o.case.path}` {o.case.name} | {len(o.latencies_s)} | "
            f"{o.errors} | {o.p50_ms:.1f} | {o.p99_ms:.1f} | {o.throughput:.0f} | "
            f"{o.p50_ms / floor:.2f}× | {o.loadgen_share:.0%} |"
        )
    lines += [
        "",
        "| route: server CPU ms per request | " + " | ".join(ROLES) + " | total |",
        "|---|" + "---:|" * (len(ROLES) + 1),
    ]
    for o in outcomes:
        parts = [o.cpu_ms_per_request(role) for role in ROLES]
        lines.append(
            f"| `{o.case.method} {o.case.path}` {o.case.name} | "
            + " | ".join(f"{p:.2f}" for p in parts)
            + f" | {sum(parts):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time per route")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    parser.add_argument(
        "--serve-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a RAY_SERVE_* switch for the whole local cluster (repeatable)",
    )
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="turn off Serve's per-request access log (one log line per hop)",
    )
    parser.add_argument(
        "--direct-ingress",
        action="store_true",
        help="Ray's throughput-optimized Serve (RAY_SERVE_THROUGHPUT_OPTIMIZED=1): the load goes "
        "straight to the ingress replica's own HTTP port, not through the Python proxy",
    )
    parser.add_argument("--write", action="store_true", help="write docs/_bench_serve.md")
    args = parser.parse_args()
    serve_env = dict(item.split("=", 1) for item in args.serve_env)
    if args.direct_ingress:
        serve_env.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
    outcomes = run(
        args.seconds,
        args.concurrency,
        args.warmup,
        not args.no_access_log,
        serve_env,
        args.direct_ingress,
    )
    text = table(outcomes, args.concurrency, args.seconds)
    print(text)
    if args.write:
        doc = Path(__file__).resolve().parents[1] / "docs" / "_bench_serve.md"
        doc.write_text(
            "# Serve API benchmark\n\n"
            f"Command: `.venv/bin/python -m bench.serve --seconds {args.seconds:g} "
            f"--concurrency {args.concurrency} --write`  \n"
            f"Machine: {os.cpu_count()} cores (shared with other work), {platform.machine()}, "
            f"Python {platform.python_version()}; date {dt.date.today().isoformat()}.\n\n"
            f"{text}\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
