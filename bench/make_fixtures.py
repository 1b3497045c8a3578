"""Regenerate the shipped demo fixture: 120 days of sales KPIs made by the twin, plus noise.

Run: ``.venv/bin/python -m bench.make_fixtures``. Deterministic: the same bytes every time
(fixed seeds, fixed number formats). The twin is the sales preset run with a mid-quality model,
so satisfaction slides and churn follows; on top of the twin's own randomness, the money and
level KPIs get a little reporting noise (log-normal, 2 % on revenue and cost, 1 % on latency;
±0.002 on satisfaction and accuracy). The true parameters go to ``...truth.json`` beside it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from twinloop.data import SALES_KPI_HISTORY, SALES_KPI_TRUTH
from twinloop.sim.domains import environment
from twinloop.sim.kpis import KPI_NAMES
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec

DAYS = 120
START = np.datetime64("2024-01-01")  # a Monday, like the twin's day 0
SEED = 2024
NOISE_SEED = 7
MODEL = ModelProfile(name="production", accuracy=0.7, latency_p50_ms=180.0, latency_p95_ms=450.0)
# Reporting noise: multiplicative (log-normal sigma) or additive (absolute sd), by column.
MULTIPLICATIVE = {"revenue": 0.02, "cost": 0.02, "latency_p50_ms": 0.01, "latency_p95_ms": 0.01}
ADDITIVE = {"satisfaction": 0.002, "model_accuracy": 0.002}
DECIMALS = {
    "revenue": 2,
    "cost": 2,
    "satisfaction": 4,
    "model_accuracy": 4,
    "latency_p50_ms": 1,
    "latency_p95_ms": 1,
    "conversion_rate": 5,
}


def make_sales_history(path: Path = SALES_KPI_HISTORY, truth: Path = SALES_KPI_TRUTH) -> None:
    env = environment("sales")
    spec = SimulationSpec(environment=env, models=[MODEL], days=DAYS, seed=SEED)
    kpis = simulate(spec).kpis
    rng = np.random.default_rng(NOISE_SEED)
    columns: dict[str, np.ndarray] = {k: kpis.column(k).to_numpy().astype(float) for k in KPI_NAMES}
    for name, sigma in MULTIPLICATIVE.items():
        columns[name] = columns[name] * np.exp(rng.normal(0.0, sigma, DAYS))
    for name, sd in ADDITIVE.items():
        columns[name] = np.clip(columns[name] + rng.normal(0.0, sd, DAYS), 0.0, 1.0)
    columns["conversion_rate"] = columns["conversions"] / np.maximum(columns["interactions"], 1)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["date", *KPI_NAMES])
        for day in range(DAYS):
            row = [str(START + day)]
            for name in KPI_NAMES:
                value = columns[name][day]
                row.append(f"{value:.{DECIMALS.get(name, 0)}f}")
            writer.writerow(row)
    truth.write_text(
        json.dumps(
            {
                "description": "Parameters that generated sales_kpi_history.csv "
                "(bench/make_fixtures.py)",
                "days": DAYS,
                "start": str(START),
                "seed": SEED,
                "noise_seed": NOISE_SEED,
                "reporting_noise": {
                    "multiplicative_sigma": MULTIPLICATIVE,
                    "additive_sd": ADDITIVE,
                },
                "model": MODEL.model_dump(mode="json"),
                "environment": env.model_dump(mode="json"),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    make_sales_history()
    print(f"wrote {SALES_KPI_HISTORY} ({DAYS} days) and {SALES_KPI_TRUTH}")
