"""The working state of one calibration: fitted values, their provenance, and twin runs.

``FitState`` holds every parameter estimate by its dotted path in the environment
(``churn.base_hazard_per_day``) or the model (``model.accuracy``), writes them into a copy of the
preset on demand, and counts the twin runs spent. Values beyond what the twin can represent are
clamped and reported, never silently passed on.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from twinloop.contract import invalid_input
from twinloop.errors import InvalidInput
from twinloop.replication.calibration.fit import Estimate
from twinloop.replication.calibration.models import (
    CalibrationSettings,
    FitIssue,
    Method,
    ParameterEstimate,
)
from twinloop.replication.calibration.series import DailyKpis
from twinloop.replication.replicates import Evaluate, FloatArray, kpi_arrays, run_checked
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec

HAZARD, SENSITIVITY = "churn.base_hazard_per_day", "churn.satisfaction_sensitivity"
# Largest values the twin accepts (BusinessEnvironment's bounds), kept just inside.
LIMITS = {
    "interaction_probability_per_day": 1.0,
    "transaction.base_conversion": 0.999,
    "transaction.order_value_sigma": 3.0,
    HAZARD: 4.999,
}


class FitState:
    """Mutable working state of one calibration: parameter values, their provenance, issues."""

    def __init__(self, env: BusinessEnvironment) -> None:
        self.base = env
        self.values: dict[str, Any] = {}
        self.stderr: dict[str, float | None] = {}
        self.method: dict[str, Method] = {}
        self.issues: list[FitIssue] = []
        self.simulations = 0

    def set(self, name: str, est: Estimate, method: Method) -> None:
        value, se = est.value, est.stderr
        limit = LIMITS.get(name)
        if limit is not None and value > limit:
            self.issues.append(
                FitIssue(
                    code="parameter_at_bound",
                    severity="poor",
                    field=name,
                    message=f"fitted {value:.4g} exceeds what the twin can represent ({limit:g})",
                )
            )
            value = limit
        self.values[name] = value
        self.stderr[name] = se if se is None or math.isfinite(se) else None
        self.method[name] = method

    def scale(self, name: str, factor: float, method: Method = "simulation_corrected") -> None:
        """Rescale a value (simulation correction); its relative SE is kept."""
        se = self.stderr.get(name)
        self.set(
            name, Estimate(self.values[name] * factor, None if se is None else se * factor), method
        )

    def environment(self, name: str, scale: float = 1.0) -> BusinessEnvironment:
        """The preset with every fitted value written in (``model.*`` values excepted).

        ``scale`` multiplies the population (initial customers and arrivals): customers of the
        twin never interact, so rates per customer are unchanged and only their noise shrinks.
        """
        data = self.base.model_dump()
        data["name"] = name
        weekly = [self.values.get(f"acquisition.weekly.{d}") for d in range(7)]
        if all(w is not None for w in weekly):
            data["acquisition"]["weekly"] = weekly
        for path, value in self.values.items():
            if path.startswith(("model.", "acquisition.weekly.")):
                continue
            node = data
            *parents, leaf = path.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        data["initial_customers"] = round(data["initial_customers"] * scale)
        data["acquisition"]["rate_per_day"] *= scale
        try:
            return BusinessEnvironment.model_validate(data)
        except ValidationError as exc:
            bad = invalid_input(exc, data)
            raise InvalidInput("history", f"the fitted twin is not valid ({bad})") from exc

    def estimates(self) -> list[ParameterEstimate]:
        return [
            ParameterEstimate(name=k, value=float(v), stderr=self.stderr[k], method=self.method[k])
            for k, v in self.values.items()
        ]

    def run(
        self,
        envs: list[BusinessEnvironment],
        model: ModelProfile,
        days: int,
        lead_in: int,
        seeds: list[int],
        evaluate: Evaluate,
    ) -> list[dict[str, FloatArray]]:
        """Run every environment on every seed; per environment, KPI arrays (seeds × days)
        from the history's first day on (the lead-in dropped)."""
        specs = [
            SimulationSpec(environment=env, models=[model], days=days + lead_in, seed=s)
            for env in envs
            for s in seeds
        ]
        results = run_checked(evaluate, specs)
        self.simulations += len(results)
        size = len(seeds)
        return [
            kpi_arrays(results[i * size : (i + 1) * size], skip=lead_in) for i in range(len(envs))
        ]


def fitting_scale(train: DailyKpis, cfg: CalibrationSettings) -> float:
    """Population multiplier of fitting runs: the setting, or enough for ``fit_population``."""
    if cfg.fit_scale is not None:
        return cfg.fit_scale
    typical = max(float(train.exposure.mean()), 1.0)
    return float(min(max(cfg.fit_population / typical, 1.0), 100.0))
