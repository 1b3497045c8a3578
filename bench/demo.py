"""The main job's wall time: `twinloop demo` end to end, as a user runs it, with per-step times.

    .venv/bin/python -m bench.demo [--runs N] [--small]

Each run is a fresh process (`twinloop demo --out <tmp> --no-progress`) with its own local Ray,
so the figure includes Ray's start-up, imports, the improvement loop (Tune, championship, the
canary on Serve) and report rendering — what `make demo` costs after the virtual environment
exists. A run whose improvement does not end promoted fails the benchmark. The load average is
recorded because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_SECONDS = 180.0
STEPS = ("calibration", "training", "ab_test", "analysis", "what_if", "validation")
LOOP = ("planned", "candidates", "championship", "canary")  # the improvement loop's stages


def one_run(small: bool) -> dict[str, float]:
    """Run the demo once in a subprocess; wall time plus the steps' times from report.json."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "twinloop-demo"
        cmd = [sys.executable, "-m", "cluster.cli", "demo", "--out", str(out), "--no-progress"]
        env = {**os.environ, "RAY_ADDRESS": "local"}
        start = time.perf_counter()
        proc = subprocess.run(
            cmd + (["--small"] if small else []), capture_output=True, text=True, env=env
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"demo failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
        report = json.loads((out / "report.json").read_text())
    timings = report["timings"]
    loop = {r["stage"]: r["seconds"] or 0.0 for r in (report.get("loop") or {}).get("timeline", [])}
    ended = (report.get("loop") or {}).get("stage")
    if ended != "promoted":
        raise SystemExit(f"the improvement ended {ended!r}, not promoted")
    return {
        "wall": wall,
        **{k: float(timings.get(k, 0.0)) for k in STEPS},
        **{f"loop: {k}": float(loop.get(k, 0.0)) for k in LOOP},
    }


def table(runs: list[dict[str, float]]) -> str:
    rows = ["| measure | median (s) | min (s) | max (s) |", "|---|---|---|---|"]
    for key in ("wall", *STEPS, *(f"loop: {k}" for k in LOOP)):
        values = [r[key] for r in runs]
        label = "**total wall time (process start → report written)**" if key == "wall" else key
        rows.append(
            f"| {label} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.demo")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="the reduced-size scenario")
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = [one_run(args.small) for _ in range(args.runs)]
    load_after = os.getloadavg()
    worst = max(r["wall"] for r in runs)
    print(table(runs))
    print()
    print(
        f"scenario: {'reduced' if args.small else 'full'}; runs: {len(runs)}; "
        f"budget {BUDGET_SECONDS:.0f} s: {'met' if worst < BUDGET_SECONDS else 'MISSED'} "
        f"(slowest {worst:.1f} s)"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores (shared); load average "
        f"{', '.join(f'{x:.1f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.1f}' for x in load_after)} after; {time.strftime('%Y-%m-%d')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
