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

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
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


@dataclass
class Outcome:
    case: Case
    latencies_s: list[float]
    errors: int
    seconds: float
    loadgen_cpu_s: float

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

    @property
    def loadgen_share(self) -> float:
        """The load generator's CPU as a share of the machine's cores."""
        return self.loadgen_cpu_s / self.seconds / (os.cpu_count() or 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load(
    port: int, case: Case, seconds: float, concurrency: int, warmup_s: float, scratch: Path
) -> Outcome:
    """One route under load, driven by ``bench.loadgen`` in its own process."""
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        f"--port={port}",
        f"--method={case.method}",
        f"--path={case.path}",
        f"--seconds={seconds}",
        f"--concurrency={concurrency}",
        f"--warmup={warmup_s}",
    ]
    if case.body is not None:
        body_file = scratch / f"body-{abs(hash(case.name))}.json"
        body_file.write_text(json.dumps(case.body), encoding="utf-8")
        command.append(f"--body-file={body_file}")
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    seen = json.loads(done.stdout)
    return Outcome(case, seen["latencies_s"], seen["errors"], seen["seconds"], seen["cpu_s"])


def cases(routes: dict[str, Any]) -> list[Case]:
    found = [
        Case("no-op floor", "GET", "/healthz"),
        Case("handle round trip", "GET", "/healthz?deep=true"),
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
    parser.add_argument("--write", action="store_true", help="write docs/_bench_serve.md")
    args = parser.parse_args()
    serve_env = dict(item.split("=", 1) for item in args.serve_env)
    outcomes = run(args.seconds, args.concurrency, args.warmup, not args.no_access_log, serve_env)
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
