"""Failure Analyzer latency: a summary-form analysis, and ten million raw rows with segments.

    .venv/bin/python -m bench.analyzer [--quick] [--rows N]

* **summary form** — ``analyze_failure`` on a three-metric result (binomial conversion, latency
  and satisfaction as n/mean/std, business parameters), no store: validation, statistics, failure
  types, chains, impact, hypotheses with sandbox plans, signature. Target: under 5 ms.
* **raw rows** — ``analyze_failure`` on an in-memory Arrow table of N units (default ten
  million) × 5 dictionary-encoded segment columns (10·8·6·5·4 = 9,600 leaves) × 3 metrics
  (conversion 0/1, latency, revenue), generated here with numpy, with two planted flaws: the
  treatment converts 30% less in ``d1=v1_3`` and is 50% slower in ``d0=v0_2 & d2=v2_1`` (on top
  of 20% slower everywhere). Timed end to end, including segment localization of every failing
  metric. Targets: under 5 s and under 3 GB. Memory is the process's peak resident set during
  the analysis (the kernel's high-water mark, reset just before it) and overall.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from twinloop.analysis.analyzer import FailureAnalysis, analyze_failure
from twinloop.analysis.settings import AnalyzerSettings

SETTINGS = AnalyzerSettings()
CARDS = (10, 8, 6, 5, 4)
SUMMARY: dict[str, Any] = {
    "experimentId": "bench-summary",
    "variants": [
        {"name": "A", "control": True, "allocation": 0.5},
        {"name": "B", "allocation": 0.5},
    ],
    "business": {"trafficPerDay": 50_000, "valuePerConversion": 40},
    "metrics": {
        "conversion": {"variants": {"A": {"n": 10_000, "successes": 1200},
                                    "B": {"n": 10_050, "successes": 1100}}},
        "latency_ms": {"variants": {"A": {"n": 10_000, "mean": 100, "std": 30},
                                    "B": {"n": 10_050, "mean": 130, "std": 35}}},
        "satisfaction": {"variants": {"A": {"n": 10_000, "mean": 0.8, "std": 0.1},
                                      "B": {"n": 10_050, "mean": 0.78, "std": 0.1}}},
    },
}  # fmt: skip
SEED_FORM: dict[str, Any] = {
    "experimentId": "exp-123",
    "winner": "model-v2",
    "loser": "model-v3",
    "metrics": {
        "accuracy": {"winner": 0.92, "loser": 0.78, "percentChange": -15.2},
        "latency": {"winner": 100, "loser": 250, "percentChange": 150},
        "satisfaction": {"winner": 0.85, "loser": 0.72, "percentChange": -15.3},
    },
}


def raw_table(rows: int, seed: int = 0) -> pa.Table:
    """Units × 5 segment columns × 3 metrics with two planted flaws (see the module doc)."""
    rng = np.random.default_rng(seed)
    treated = rng.random(rows) < 0.5
    columns: dict[str, Any] = {
        "variant": pa.DictionaryArray.from_arrays(
            treated.astype(np.int8), pa.array(["control", "treatment"])
        )
    }
    codes = []
    for j, card in enumerate(CARDS):
        code = rng.integers(0, card, rows, dtype=np.int8)
        codes.append(code)
        labels = pa.array([f"v{j}_{i}" for i in range(card)])
        columns[f"d{j}"] = pa.DictionaryArray.from_arrays(code, labels)
    rate = np.where(treated & (codes[1] == 3), 0.07, 0.10)
    converted = rng.random(rows) < rate
    slow = 1.0 + 0.2 * treated + 0.5 * (treated & (codes[0] == 2) & (codes[2] == 1))
    latency = rng.lognormal(np.log(100.0), 0.4, rows) * slow
    revenue = np.where(converted, rng.lognormal(np.log(50.0), 0.5, rows), 0.0)
    columns["converted"] = converted
    columns["latency_ms"] = latency
    columns["revenue"] = revenue
    return pa.table(columns)


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: imports, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _rss_gb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1e6  # kB → GB
    return float("nan")


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (Linux: write 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 1M rows")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = 50 if args.quick else 300
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)

    table_rows = []
    for name, data in (("summary form, 3 metrics", SUMMARY), ("seed point form", SEED_FORM)):
        times = _timed(functools.partial(analyze_failure, data, settings=SETTINGS), repeats)
        table_rows.append(_row(name, "analysis, no store", times))

    started = time.perf_counter()
    units = raw_table(rows)
    generated = time.perf_counter() - started
    base = _rss_gb("VmRSS")
    raw_times, peaks = [], []
    result: FailureAnalysis | None = None
    for _ in range(2 if args.quick else 3):
        _reset_peak()
        start = time.perf_counter()
        result = analyze_failure({"experimentId": "bench-raw"}, raw_table=units, settings=SETTINGS)
        raw_times.append(time.perf_counter() - start)
        peaks.append(_rss_gb("VmHWM"))
    assert result is not None
    label = f"raw {rows:,} rows × 5 dims × 3 metrics"
    table_rows.append(_row(label, "analysis + segment localization", raw_times))

    print("| case | what is timed | median | min | p95 |")
    print("|---|---|---|---|---|")
    for row in table_rows:
        print(row)
    print()
    print(f"raw data generated in {generated:.1f} s; resident before the analysis "
          f"{base:.2f} GB, peak during it {max(peaks):.2f} GB "
          f"(+{max(peaks) - base:.2f} GB)")  # fmt: skip
    found = {s.metric: [f.label for f in s.findings] for s in result.segments}
    print(f"segments found: {found}")
    print(f"top root causes: {[c.id for c in result.root_causes[:4]]}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
          f"(shared); load average {os.getloadavg()[0]:.1f}; {date.today()}")  # fmt: skip


def _row(name: str, what: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (f"| {name} | {what} | {_fmt(statistics.median(times))} | {_fmt(ordered[0])} "
            f"| {_fmt(p95)} |")  # fmt: skip


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


if __name__ == "__main__":
    main()
