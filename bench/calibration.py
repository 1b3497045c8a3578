"""Benchmark: wall time to calibrate the twin to 90 days of daily KPIs, serial and on Ray.

Run: ``.venv/bin/python -m bench.calibration [--no-ray] [--repeat N]``. The history is 90 days of
the sales preset (20,000 customers, ~400 arrivals a day) made by the twin itself; calibration
uses its default settings (14 days held back, 8 candidate sensitivities, 1 fitting replicate at
60,000 simulated customers, 4 evaluation replicates). Figures are medians of ``--repeat`` runs.
The Ray row runs the candidate twins on the sandbox's actor pool (``RayEvaluator``) over a
local Ray with 2 CPUs; the pool and Ray start-up are timed separately. BLAS is pinned to one
thread (OpenBLAS's spinning threads slow everything on the shared 2-core box).
"""

from __future__ import annotations

import os

# ruff: noqa: E402 (the environment must be set before numpy is imported)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import argparse
import statistics
import time
from typing import Any

from twinloop.replication.calibration.calibrate import calibrate
from twinloop.replication.calibration.models import CalibrationResult
from twinloop.replication.history import KpiHistory, history_from_table
from twinloop.replication.replicates import history_table
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec

DAYS = 90


def history() -> KpiHistory:
    model = ModelProfile(accuracy=0.7, latency_p50_ms=180.0, latency_p95_ms=450.0)
    run = simulate(
        SimulationSpec(environment=environment("sales"), models=[model], days=DAYS, seed=90)
    )
    return history_from_table(history_table(run))


def timed(fn: Any, repeat: int) -> tuple[float, float, CalibrationResult]:
    """Median wall seconds, median CPU seconds of this process, and the result."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    assert result is not None
    return statistics.median(times), statistics.median(cpu), result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.calibration")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray row")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    h = history()
    calibrate(h)  # warm-up: imports, first-call costs
    rows: list[tuple[str, CalibrationResult, float, float, float | None]] = []
    load = os.getloadavg()[0]
    wall, cpu, serial = timed(lambda: calibrate(h), args.repeat)
    rows.append(("serial (in-process)", serial, wall, cpu, None))
    if not args.no_ray:
        from actors.calibration import RayEvaluator
        from actors.sandbox_pool import ensure_ray

        start = time.perf_counter()
        ensure_ray(num_cpus=2)
        evaluator = RayEvaluator(num_workers=2)
        calibrate(h, evaluate=evaluator)  # warm-up: starts the pool's actors
        startup = time.perf_counter() - start
        wall, cpu, on_ray = timed(lambda: calibrate(h, evaluate=evaluator), args.repeat)
        evaluator.shutdown()
        assert on_ray == serial, "Ray and serial calibrations differ"
        rows.append(("Ray actor pool, 2 workers", on_ray, wall, cpu, startup))
    print(
        f"calibration of {DAYS} days of daily sales KPIs ({DAYS - 14} fitted, 14 held back); "
        f"median of {args.repeat}; 1-min load average at start {load:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    print()
    print(
        "| evaluator | twin runs | wall s | driver CPU s | start-up s | fit | mean r | mean MAPE |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for name, result, seconds, cpu_s, ready in rows:
        up = "" if ready is None else f"{ready:.1f}"
        mean_r = "n/a" if result.mean_pearson_r is None else f"{result.mean_pearson_r:.3f}"
        print(
            f"| {name} | {result.simulations} | {seconds:.1f} | {cpu_s:.1f} | {up} | "
            f"{result.fit_quality} | {mean_r} | {result.mean_mape:.1%} |"
        )


if __name__ == "__main__":
    main()
