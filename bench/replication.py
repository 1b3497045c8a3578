"""Benchmark of the metric replication core: history ingest, correlations, what-if, synthetic data.

Run: ``.venv/bin/python -m bench.replication``. Prints a Markdown table; every figure is the
median of several runs after one warm-up, on one core: BLAS is pinned to one thread because
OpenBLAS's spinning worker threads were 5-10× slower than one thread on the shared 2-core box.
"""

from __future__ import annotations

import os

# ruff: noqa: E402 (the environment must be set before numpy is imported)
# Before numpy is imported: one BLAS thread (see the docstring).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from twinloop.replication.correlation import CorrelationSettings, correlate_matrix
from twinloop.replication.history import history_from_arrays, read_history
from twinloop.replication.synthetic.generate import SyntheticSpec, parse_edge_case, synthesize
from twinloop.replication.whatif.analytic import WhatIfSettings, what_if
from twinloop.replication.whatif.graph import CausalGraph


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall seconds of ``repeat`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, str]] = []

    # History ingest: 100,000 rows × 10 metrics from CSV.
    n = 100_000
    table = pa.table(
        {
            "timestamp": pa.array(
                np.datetime64("2020-01-01T00:00") + (60 * np.arange(n)).astype("timedelta64[s]")
            ),
            **{f"m{i}": rng.normal(size=n) for i in range(10)},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.csv"
        pacsv.write_csv(table, path)
        secs = timed(lambda: read_history(path), 3)
    rows.append(
        (
            "history: read + validate CSV",
            "100,000 rows × 10 metrics",
            f"{secs * 1e3:.0f} ms ({n / secs:,.0f} rows/s)",
        )
    )

    # Correlations: 50 metrics × 10,000 points.
    data = rng.normal(size=(10_000, 50)).cumsum(axis=0)
    names = [f"m{i}" for i in range(50)]
    for lag, method in ((10, "pearson"), (10, "spearman"), (50, "pearson")):
        cfg = CorrelationSettings(max_lag=lag, method=method)
        secs = timed(lambda cfg=cfg: correlate_matrix(data, names, cfg), 5)
        tests = 50 * 49 // 2 * (2 * lag + 1)
        rows.append(
            (
                f"correlations ({method}, max lag {lag})",
                f"50 × 10,000, {tests:,} tests",
                f"{secs * 1e3:.0f} ms",
            )
        )

    # What-if: default graph (priors) and a fitted confounded graph.
    base = {
        "accuracy": 0.8,
        "latency": 200.0,
        "satisfaction": 0.7,
        "conversion": 0.05,
        "revenue": 10_000.0,
        "calls": 5_000.0,
        "cost": 300.0,
    }
    secs = timed(lambda: what_if(base, {"accuracy": 0.1, "latency": -0.2}), 20)
    rows.append(
        ("what-if, default graph (priors)", "7 metrics, 2,000 draws", f"{secs * 1e3:.1f} ms")
    )
    m = 5_000
    traffic = rng.normal(100, 10, m)
    latency = 50 + 0.8 * traffic + rng.normal(0, 5, m)
    revenue = 1000 - 3 * latency + 6 * traffic + rng.normal(0, 20, m)
    history = history_from_arrays(
        np.arange(m), {"traffic": traffic, "latency": latency, "revenue": revenue}
    )
    graph = CausalGraph(edges=["traffic -> latency", "traffic -> revenue", "latency -> revenue"])
    hbase = {"traffic": 100.0, "latency": 130.0, "revenue": 1210.0}
    secs = timed(
        lambda: what_if(
            hbase,
            {"latency": -0.2},
            graph=graph,
            history=history,
            settings=WhatIfSettings(transform="linear"),
        ),
        20,
    )
    rows.append(
        (
            "what-if, fitted from history",
            "3 metrics, 5,000 rows, 2,000 draws",
            f"{secs * 1e3:.1f} ms",
        )
    )

    # Synthetic: fit on 10,000 rows × 6 columns, generate 1,000,000 rows.
    k = 10_000
    z = rng.multivariate_normal(np.zeros(4), np.eye(4) * 0.5 + 0.5, k)
    source = pa.table(
        {
            "day": pa.array(np.datetime64("2024-01-01") + np.arange(k)),
            "region": np.where(z[:, 0] > 0.5, "eu", "us"),
            "sessions": rng.poisson(np.exp(1 + 0.5 * z[:, 1])),
            "spend": np.exp(z[:, 2]),
            "latency": 100 + 10 * z[:, 3],
            "tenure": rng.gamma(2.0, 30.0, k),
        }
    )
    big = 1_000_000
    for label, cases in (
        ("plain", ()),
        (
            "drift + missing + extreme",
            (
                parse_edge_case("drift:0.2"),
                parse_edge_case("missing:0.05"),
                parse_edge_case("extreme:0.01"),
            ),
        ),
    ):
        spec = SyntheticSpec(rows=big, seed=1, edge_cases=cases)
        secs = timed(lambda spec=spec: synthesize(source, spec), 3)
        rows.append(
            (
                f"synthetic ({label})",
                "10,000 → 1,000,000 rows × 6 columns",
                f"{secs:.2f} s ({big / secs:,.0f} rows/s)",
            )
        )

    print("| operation | size | time |")
    print("|---|---|---|")
    for op, size, value in rows:
        print(f"| {op} | {size} | {value} |")


if __name__ == "__main__":
    main()
