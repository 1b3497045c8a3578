"""Business KPIs per step and per model variant, and the result of a run.

The recorder keeps one preallocated (steps × variants) array per KPI, so recording a step costs
nothing but a few stores; the Arrow table is built once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.sim.spec import SimulationSpec

KPI_NAMES = (
    "active",
    "new",
    "churned",
    "interactions",
    "conversions",
    "conversion_rate",
    "revenue",
    "satisfaction",
    "model_accuracy",
    "latency_p50_ms",
    "latency_p95_ms",
    "cost",
    "model_calls",
)


class StepKpis(FrozenModel):
    """One step's KPIs for one variant, as streamed while a run goes on."""

    step: int
    day: float
    variant: str
    active: int
    new: int
    churned: int
    interactions: int
    conversions: int
    conversion_rate: float
    revenue: float
    satisfaction: float
    model_accuracy: float
    latency_p50_ms: float
    latency_p95_ms: float
    cost: float
    model_calls: int


class VariantSummary(FrozenModel):
    """A whole run for one variant: totals of counted KPIs, end or mean values of the others."""

    variant: str
    customers: int = Field(description="Customers ever assigned to this variant.")
    final_active: int
    new: int
    churned: int
    interactions: int
    conversions: int
    conversion_rate: float
    revenue: float
    cost: float
    profit: float
    mean_satisfaction: float
    model_accuracy: float
    latency_p50_ms: float
    latency_p95_ms: float
    customer_days: float


class SimulationSummary(FrozenModel):
    """The JSON face of a run: what was run, how fast, and the per-variant totals."""

    seed: int
    days: float
    steps: int
    environment: str
    domain: str
    variants: list[VariantSummary]
    customer_days: float
    wall_seconds: float
    customer_days_per_second: float
    acceleration: float = Field(description="Simulated seconds per wall-clock second.")
    paced_speed: float = Field(description="Requested pacing factor (0 = unpaced).")


@dataclass(frozen=True)
class SimulationResult:
    """A finished run: the spec (with its seed), KPI table, optional per-customer table, summary."""

    spec: SimulationSpec
    kpis: pa.Table
    units: pa.Table | None
    summary: SimulationSummary


class KpiRecorder:
    """Accumulates per-step KPIs into (steps × variants) arrays."""

    def __init__(self, n_steps: int, variants: list[str], steps_per_day: int) -> None:
        self.variants = variants
        self.steps_per_day = steps_per_day
        shape = (n_steps, len(variants))
        self.values: dict[str, NDArray[np.float64]] = {k: np.zeros(shape) for k in KPI_NAMES}
        self.steps_done = 0

    def record(self, step: int, row: dict[str, NDArray[np.float64]]) -> list[StepKpis]:
        for key, value in row.items():
            self.values[key][step] = value
        self.steps_done = step + 1
        day = step / self.steps_per_day
        out = []
        for v, name in enumerate(self.variants):
            fields: dict[str, Any] = {k: self.values[k][step, v] for k in KPI_NAMES}
            for k in ("active", "new", "churned", "interactions", "conversions", "model_calls"):
                fields[k] = int(fields[k])
            for k in KPI_NAMES:
                if not isinstance(fields[k], int):
                    fields[k] = float(fields[k])
            out.append(StepKpis(step=step, day=day, variant=name, **fields))
        return out

    def table(self) -> pa.Table:
        steps = self.steps_done
        n_var = len(self.variants)
        step_col = np.repeat(np.arange(steps, dtype=np.int32), n_var)
        columns: dict[str, Any] = {
            "step": step_col,
            "day": step_col / self.steps_per_day,
            "variant": pa.array(np.tile(np.array(self.variants, dtype=object), steps)),
        }
        for key in KPI_NAMES:
            flat = self.values[key][:steps].reshape(-1)
            if key in ("active", "new", "churned", "interactions", "conversions", "model_calls"):
                columns[key] = flat.astype(np.int64)
            else:
                columns[key] = flat
        return pa.table(columns)

    def summaries(self, customers: NDArray[np.int64], dt: float) -> list[VariantSummary]:
        steps = self.steps_done
        vals = {k: v[:steps] for k, v in self.values.items()}
        out = []
        for v, name in enumerate(self.variants):
            calls = vals["model_calls"][:, v]
            total_calls = float(calls.sum())
            interactions = float(vals["interactions"][:, v].sum())
            conversions = float(vals["conversions"][:, v].sum())
            revenue = float(vals["revenue"][:, v].sum())
            cost = float(vals["cost"][:, v].sum())
            active = vals["active"][:, v]
            weights = calls if total_calls > 0 else np.ones_like(calls)
            out.append(
                VariantSummary(
                    variant=name,
                    customers=int(customers[v]),
                    final_active=int(active[-1]) if steps else 0,
                    new=int(vals["new"][:, v].sum()),
                    churned=int(vals["churned"][:, v].sum()),
                    interactions=int(interactions),
                    conversions=int(conversions),
                    conversion_rate=conversions / interactions if interactions else 0.0,
                    revenue=revenue,
                    cost=cost,
                    profit=revenue - cost,
                    mean_satisfaction=float(vals["satisfaction"][:, v].mean()) if steps else 0.0,
                    model_accuracy=float(np.average(vals["model_accuracy"][:, v], weights=weights))
                    if steps
                    else 0.0,
                    latency_p50_ms=float(np.average(vals["latency_p50_ms"][:, v], weights=weights))
                    if steps
                    else 0.0,
                    latency_p95_ms=float(np.average(vals["latency_p95_ms"][:, v], weights=weights))
                    if steps
                    else 0.0,
                    customer_days=float(active.sum() * dt),
                )
            )
        return out
