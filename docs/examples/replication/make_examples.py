"""Write the example inputs used in docs/replication.md (deterministic; seed 0).

Run from the repository root: ``.venv/bin/python docs/examples/replication/make_examples.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent


def kpi_history(rng: np.random.Generator, days: int = 365) -> pa.Table:
    """Daily KPIs of a shop: spend leads traffic by 2 days; the rest follows the default graph."""
    t = np.arange(days)
    week = np.tile([1.0, 1.05, 1.05, 1.0, 1.1, 0.8, 0.75], days // 7 + 1)[:days]
    spend = 500 * np.exp(rng.normal(0, 0.3, days))
    spend_effect = np.r_[np.ones(2), (spend[:-2] / 500) ** 0.3]
    traffic = (4000 + 3 * t) * week * spend_effect * np.exp(rng.normal(0, 0.05, days))
    latency = 150 * (traffic / 4000) ** 0.4 * np.exp(rng.normal(0, 0.08, days))
    accuracy = np.clip(0.8 + np.cumsum(rng.normal(0, 0.004, days)), 0.7, 0.92)
    satisfaction = (
        0.7 * (accuracy / 0.8) ** 0.6 * (latency / 150) ** -0.2 * np.exp(rng.normal(0, 0.02, days))
    )
    conversion = 0.04 * (satisfaction / 0.7) ** 1.2 * np.exp(rng.normal(0, 0.05, days))
    order_value = 80 * np.exp(rng.normal(0, 0.05, days))
    revenue = traffic * conversion * order_value
    calls = traffic * 3 * np.exp(rng.normal(0, 0.02, days))
    cost = 50 + 0.002 * calls * np.exp(rng.normal(0, 0.03, days))
    stamps = np.datetime64("2024-01-01") + t
    table = pa.table(
        {
            "date": pa.array(stamps),
            "marketing_spend": spend.round(2),
            "traffic": traffic.round(0).astype(np.int64),
            "latency_ms": latency.round(1),
            "accuracy": accuracy.round(4),
            "satisfaction": satisfaction.round(4),
            "conversion_rate": conversion.round(5),
            "revenue": revenue.round(2),
            "calls": calls.round(0).astype(np.int64),
            "cost": cost.round(2),
        }
    )
    # Real exports are never clean: one lost day, one blank cell, one re-delivered row.
    keep = np.ones(days, dtype=bool)
    keep[100] = False
    table = table.filter(pa.array(keep))
    sat = table.column("satisfaction").to_pylist()
    sat[200] = None
    table = table.set_column(5, "satisfaction", pa.array(sat))
    return pa.concat_tables([table, table.slice(300, 1)])


def population(rng: np.random.Generator, n: int = 2000) -> pa.Table:
    """Customers with a region and plan, skewed activity and spend, and a churn flag."""
    region = rng.choice(["eu", "us", "apac"], size=n, p=[0.45, 0.4, 0.15])
    plan = np.where(rng.random(n) < 0.3, "pro", "basic")
    tenure = rng.gamma(2.0, 120.0, n).round(0).astype(np.int64)
    sessions = rng.poisson(4 + 6 * (plan == "pro") + tenure / 100)
    spend = np.exp(3.0 + 0.08 * sessions + 0.6 * (plan == "pro") + rng.normal(0, 0.5, n))
    churn_p = 1 / (1 + np.exp(1.0 + 0.2 * sessions))
    return pa.table(
        {
            "customer_id": np.arange(n),
            "region": region,
            "plan": plan,
            "tenure_days": tenure,
            "sessions_30d": sessions,
            "spend_30d": spend.round(2),
            "churned": (rng.random(n) < churn_p).astype(np.int64),
        }
    )


def store_days(rng: np.random.Generator, n: int = 2000) -> pa.Table:
    """Store-days without dates (cross-sectional): traffic slows the site and, directly, raises
    conversion (busy days bring buyers); latency lowers conversion. Linear, so exactly
    E[conversion | do(latency + 30 ms)] - E[conversion] = -0.0001 · 30 = -0.003."""
    traffic = rng.normal(1000.0, 150.0, n)
    latency = 100.0 + 0.05 * traffic + rng.normal(0.0, 10.0, n)
    conversion = 0.06 - 0.0001 * latency + 0.00001 * traffic + rng.normal(0.0, 0.001, n)
    return pa.table(
        {
            "traffic": traffic.round(0).astype(np.int64),
            "latency_ms": latency.round(1),
            "conversion_rate": conversion.round(5),
        }
    )


def main() -> None:
    rng = np.random.default_rng(0)
    pacsv.write_csv(kpi_history(rng), HERE / "kpi_history.csv")
    pacsv.write_csv(population(rng), HERE / "population.csv")
    base = {
        "marketing_spend": 500,
        "traffic": 4500,
        "latency_ms": 155,
        "accuracy": 0.8,
        "satisfaction": 0.7,
        "conversion_rate": 0.04,
        "revenue": 14400,
        "calls": 13500,
        "cost": 77,
    }
    (HERE / "base.json").write_text(json.dumps(base, indent=2) + "\n")
    graph = {
        "edges": [
            "marketing_spend -> traffic @ 2",
            "traffic -> latency_ms",
            "accuracy -> satisfaction",
            "latency_ms -> satisfaction",
            "satisfaction -> conversion_rate",
            "traffic -> revenue",
            "conversion_rate -> revenue",
            "traffic -> calls",
            "calls -> cost",
        ]
    }
    (HERE / "graph.json").write_text(json.dumps(graph, indent=2) + "\n")
    # A separate stream: the files above stay as they were.
    pacsv.write_csv(store_days(np.random.default_rng(1)), HERE / "store_days.csv")
    store_base = {"traffic": 1000, "latency_ms": 150, "conversion_rate": 0.055}
    (HERE / "store_base.json").write_text(json.dumps(store_base, indent=2) + "\n")
    busy_day = {"traffic": 1300, "latency_ms": 172.0, "conversion_rate": 0.0541}
    (HERE / "busy_day.json").write_text(json.dumps(busy_day, indent=2) + "\n")
    (HERE / "cyclic_graph.json").write_text(
        json.dumps(
            {
                "edges": [
                    "accuracy -> satisfaction",
                    "satisfaction -> revenue",
                    "revenue -> accuracy",
                ]
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
