"""Statistics engine latency: one summary-form comparison per metric, and whole analyses.

    .venv/bin/python -m bench.stats [--quick]

Each case builds its input once and times ``compare()`` end to end (validation of the JSON-like
input, tests, Bayesian, power, corrections, SRM); the table shows the median and 95th percentile
of repeated calls. The raw-data rows time the reduction of per-unit columns to sufficient
statistics (``RawTable.sample_stats``/``covariate_stats``), which precedes ``compare()`` for files.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from twinloop.stats.compare import compare
from twinloop.stats.rawdata import from_arrow

SETTINGS_FULL = {"sequential": True, "target_relative_effect": 0.05}


def _variants(k: int) -> list[dict[str, Any]]:
    return [{"name": "control", "control": True}] + [{"name": f"t{i}"} for i in range(1, k)]


def _metric(kind: str, index: int, variants: list[dict[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for j, variant in enumerate(variants):
        lift = 1 + 0.01 * j
        if kind == "binomial":
            data[variant["name"]] = {"form": "binomial", "n": 50_000, "successes": int(2500 * lift)}
        elif kind == "binomial_large":  # 50k+ conversions on both sides: quadrature path
            data[variant["name"]] = {
                "form": "binomial", "n": 1_000_000, "successes": int(60_000 * lift)
            }  # fmt: skip
        elif kind == "continuous":
            data[variant["name"]] = {"form": "continuous", "n": 50_000, "mean": 20 * lift, "std": 9}
        elif kind == "ratio":
            data[variant["name"]] = {
                "form": "ratio", "n": 20_000, "num_sum": 100_000 * lift, "num_sum_sq": 900_000,
                "den_sum": 40_000, "den_sum_sq": 100_000, "cross_sum": 240_000,
            }  # fmt: skip
        elif kind == "covariate":
            data[variant["name"]] = {
                "form": "covariate", "n": 20_000, "sum": 200_000 * lift, "sum_sq": 2_500_000,
                "pre_sum": 200_000, "pre_sum_sq": 2_450_000, "cross_sum": 2_400_000,
            }  # fmt: skip
        else:
            data[variant["name"]] = {"form": "point", "value": 0.9 * lift}
    return {"name": f"{kind}_{index}", "variants": data}


def _spec(kinds: list[str], arms: int, settings: dict[str, Any]) -> dict[str, Any]:
    variants = _variants(arms)
    metrics = [_metric(kind, i, variants) for i, kind in enumerate(kinds)]
    return {"variants": variants, "metrics": metrics, "settings": settings}


def _time(call: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """(median wall ms, 95th percentile wall ms, median CPU ms) of ``repeats`` calls.

    CPU time (this process only) is reported beside wall time because the machine is shared:
    other work on the two cores stretches wall time but not the work a call itself does.
    """
    for _ in range(min(20, repeats)):
        call()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    wall.sort()
    p95 = wall[int(0.95 * (len(wall) - 1))]
    return statistics.median(wall) * 1e3, p95 * 1e3, statistics.median(cpu) * 1e3


def _raw_table(rows: int) -> Any:
    rng = np.random.default_rng(1)
    pre = rng.gamma(2.0, 10.0, rows)
    table = pa.table(
        {
            "variant": rng.choice(np.array(["control", "treatment"]), rows),
            "revenue": 0.8 * pre + rng.normal(0, 5, rows),
            "revenue_pre": pre,
        }
    )
    return from_arrow(table, covariates={"revenue": "revenue_pre"})


def _python_speed() -> float:
    """Milliseconds for a 1M-iteration Python loop: how fast this machine is right now."""
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 200 if args.quick else 1000
    mix = ["binomial", "continuous", "ratio", "covariate", "binomial"] * 2
    cases: list[tuple[str, list[str], int, dict[str, Any]]] = [
        ("1 binomial metric", ["binomial"], 2, {}),
        ("1 binomial metric, 1M units, 60k conv.", ["binomial_large"], 2, {}),
        ("1 continuous metric", ["continuous"], 2, {}),
        ("1 ratio metric", ["ratio"], 2, {}),
        ("1 CUPED metric", ["covariate"], 2, {}),
        ("1 point-form metric", ["point"], 2, {}),
        ("10 metrics, 2 arms, defaults", mix, 2, {}),
        ("10 metrics, 2 arms, + sequential/power", mix, 2, SETTINGS_FULL),
        ("10 metrics, 4 arms, + sequential/power", mix, 4, SETTINGS_FULL),
        ("3 seed point-form metrics", ["point"] * 3, 2, {}),
    ]
    load = os.getloadavg()[0]
    print(f"# bench.stats — {date.today()} — {platform.machine()}, {os.cpu_count()} cores")
    print(f"# load average {load:.1f}; a 1M-iteration Python loop takes {_python_speed():.0f} ms")
    print()
    print("| case | metrics | comparisons | median ms | p95 ms | median CPU ms | CPU ms each |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, kinds, arms, settings in cases:
        spec = _spec(kinds, arms, settings)
        result = compare(spec)
        median, p95, cpu = _time(lambda spec=spec: compare(spec), repeats)
        count = len(result.comparisons)
        cells = f"{median:.3f} | {p95:.3f} | {cpu:.3f} | {cpu / count:.3f}"
        print(f"| {label} | {len(kinds)} | {count} | {cells} |")
    print()
    print("| raw reduction | rows | median ms | p95 ms | median CPU ms |")
    print("|---|---:|---:|---:|---:|")
    for rows in (100_000, 1_000_000) if args.quick else (100_000, 1_000_000, 10_000_000):
        raw = _raw_table(rows)
        runs = 5 if rows >= 10_000_000 else 20
        for label, call in (
            ("sample_stats (mean)", lambda raw=raw: raw.sample_stats("revenue")),
            ("covariate_stats (CUPED)", lambda raw=raw: raw.covariate_stats("revenue")),
        ):
            median, p95, cpu = _time(call, runs)
            print(f"| {label} | {rows:,} | {median:.1f} | {p95:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
