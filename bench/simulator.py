"""Simulator throughput: customer-days/s, acceleration and peak memory, against an event-by-event
SimPy implementation of the same lifecycle, measured in the same run.

    .venv/bin/python -m bench.simulator [--quick]

Each vectorised case runs in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time

import numpy as np

from twinloop.contract import SECONDS_PER_DAY
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.spec import SimulationSpec


def vectorised_case(customers: int, days: int) -> dict[str, float]:
    env = environment("sales", initial_customers=customers)
    spec = SimulationSpec(environment=env, days=days, seed=1)
    start = time.perf_counter()
    result = simulate(spec)
    total = time.perf_counter() - start
    s = result.summary
    return {
        "customers": customers,
        "days": days,
        "seconds": total,
        "customer_days": s.customer_days,
        "rate": s.customer_days / total,
        "acceleration": days * SECONDS_PER_DAY / total,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def simpy_case(customers: int, days: int) -> dict[str, float]:
    """The same lifecycle, one SimPy process per customer, one event per customer-day."""
    import simpy

    env_spec = environment("sales", initial_customers=customers)
    rng = np.random.default_rng(1)
    random = rng.random
    tr, ch, sd = env_spec.transaction, env_spec.churn, env_spec.satisfaction
    shares = [s.share for s in env_spec.segments]
    seg_conv = [s.conversion_multiplier for s in env_spec.segments]
    seg_value = [s.value for s in env_spec.segments]
    p_int = env_spec.interaction_probability_per_day
    accuracy, p50, sigma = 0.8, 100.0, math.log(2.0) / 1.6448536269514722
    totals = {"customer_days": 0.0, "revenue": 0.0}

    def customer(sim: simpy.Environment, segment: int):  # type: ignore[no-untyped-def]
        satisfaction = sd.initial
        while True:
            totals["customer_days"] += 1
            if random() < p_int:
                correct = random() < accuracy
                latency = p50 * math.exp(sigma * rng.standard_normal())
                experience = sd.accuracy_weight * correct + (1 - sd.accuracy_weight) * math.exp(
                    -latency / sd.latency_tolerance_ms
                )
                satisfaction += sd.learning_rate * (experience - satisfaction)
                uplift = 1 + tr.decision_uplift if correct else 1 - tr.decision_uplift
                p = tr.base_conversion * seg_conv[segment] * uplift * satisfaction / sd.reference
                if random() < p:
                    totals["revenue"] += tr.average_order_value * seg_value[segment]
            hazard = ch.base_hazard_per_day * math.exp(
                ch.satisfaction_sensitivity * (sd.reference - satisfaction)
            )
            if random() < 1 - math.exp(-hazard):
                return
            yield sim.timeout(1)

    def arrivals(sim: simpy.Environment):  # type: ignore[no-untyped-def]
        while True:
            for _ in range(rng.poisson(env_spec.acquisition.rate_per_day)):
                sim.process(customer(sim, int(rng.choice(3, p=shares))))
            yield sim.timeout(1)

    sim = simpy.Environment()
    for _ in range(customers):
        sim.process(customer(sim, int(rng.choice(3, p=shares))))
    sim.process(arrivals(sim))
    start = time.perf_counter()
    sim.run(until=days)
    total = time.perf_counter() - start
    return {
        "customers": customers,
        "days": days,
        "seconds": total,
        "customer_days": totals["customer_days"],
        "rate": totals["customer_days"] / total,
        "acceleration": days * SECONDS_PER_DAY / total,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def _in_subprocess(kind: str, customers: int, days: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.simulator", "--case", kind, str(customers), str(days)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller baseline, one repeat")
    parser.add_argument("--case", nargs=3, metavar=("KIND", "CUSTOMERS", "DAYS"))
    args = parser.parse_args()
    if args.case:
        kind, customers, days = args.case[0], int(args.case[1]), int(args.case[2])
        fn = vectorised_case if kind == "vectorised" else simpy_case
        print(json.dumps(fn(customers, days)))
        return
    repeats = 1 if args.quick else 3
    rows = []
    for customers in (100_000, 1_000_000):
        runs = [_in_subprocess("vectorised", customers, 30) for _ in range(repeats)]
        rows.append(("vectorised (twinloop)", min(runs, key=lambda r: r["seconds"])))
    baseline_customers = 10_000 if args.quick else 20_000
    rows.append(("event-by-event (SimPy)", _in_subprocess("simpy", baseline_customers, 30)))
    base_rate = rows[-1][1]["rate"]
    print(
        f"# simulator benchmark — {platform.processor() or platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}, one core per case, best of {repeats}"
    )
    print(
        "| engine | customers | days | seconds | M customer-days/s | acceleration | "
        "peak RSS MB | vs SimPy |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['customers']:,.0f} | {r['days']:.0f} | {r['seconds']:.2f} | "
            f"{r['rate'] / 1e6:.2f} | {r['acceleration']:,.0f}x | {r['peak_rss_mb']:.0f} | "
            f"{r['rate'] / base_rate:,.0f}x |"
        )


if __name__ == "__main__":
    main()
