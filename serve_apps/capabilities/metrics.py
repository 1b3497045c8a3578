"""The metrics capability: what-if, counterfactuals, correlations, anomalies and synthetic data
over HTTP.

Each operation takes the validated request body, converts its JSON tables with the size limits
applied, and calls the pure core; results are the core's own result models.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import ray
from pydantic import BaseModel

from serve_apps.capabilities.base import CapabilityService
from serve_apps.runs import Progress
from serve_apps.schemas.metrics import (
    AnomaliesRequest,
    AnomaliesResponse,
    CalibrateRequest,
    CalibrateResponse,
    CorrelationsRequest,
    CounterfactualRequest,
    SyntheticRequest,
    SyntheticResponse,
    WhatIfRequest,
)
from serve_apps.tables import table_from_json, table_to_columns
from twinloop.errors import InvalidInput
from twinloop.replication.anomaly.detector import detect_anomalies
from twinloop.replication.anomaly.library import keep_pattern, stored_patterns
from twinloop.replication.anomaly.patterns import DEFAULT_PATTERNS, learn_pattern
from twinloop.replication.calibration.calibrate import calibrate, save_calibration
from twinloop.replication.correlation import CorrelationResult, correlate
from twinloop.replication.history import history_from_table
from twinloop.replication.synthetic.generate import SyntheticSpec, parse_edge_case, synthesize
from twinloop.replication.whatif.analytic import WhatIfResult, run_what_if
from twinloop.replication.whatif.counterfactual import CounterfactualResult, run_counterfactual


class MetricsService(CapabilityService):
    """Metric replication: analytic what-if, correlations, synthetic data."""

    name = "metrics"

    def background(self) -> Mapping[str, Callable[[Any, Progress], BaseModel]]:
        return {
            "what_if": lambda request, _progress: self._what_if(request),
            "counterfactual": lambda request, _progress: self._counterfactual(request),
            "correlations": lambda request, _progress: self._correlations(request),
            "synthetic": self._synthetic,
            "anomalies": lambda request, _progress: self._anomalies(request),
            "calibrate": self._calibrate,
        }

    def what_if(self, request: WhatIfRequest) -> WhatIfResult:
        return self._what_if(request)

    def counterfactual(self, request: CounterfactualRequest) -> CounterfactualResult:
        return self._counterfactual(request)

    def correlations(self, request: CorrelationsRequest) -> CorrelationResult:
        return self._correlations(request)

    def synthetic(self, request: SyntheticRequest) -> SyntheticResponse:
        return self._synthetic(request, lambda _p, _m: None)

    def anomalies(self, request: AnomaliesRequest) -> AnomaliesResponse:
        return self._anomalies(request)

    def _calibrate(self, request: CalibrateRequest, progress: Progress) -> CalibrateResponse:
        """Candidate twins run on the sandbox's actor pool (RayEvaluator) across the cluster."""
        from actors.calibration import RayEvaluator

        table = table_from_json(request.history, self.limits, "history")
        history = history_from_table(table, timestamp=request.timestamp)
        progress(0.05, "history validated")
        pool = self.config.sandbox
        free = float(ray.available_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
        workers = max(1, min(pool.max_workers, int(free // pool.cpus_per_worker)))
        started = time.perf_counter()
        with RayEvaluator(num_workers=workers, num_cpus=pool.cpus_per_worker) as evaluator:
            result = calibrate(history, request.settings, evaluate=evaluator)
        self.telemetry.simulated(
            "calibrate", result.simulations, 0.0, time.perf_counter() - started
        )
        ident = save_calibration(self.store, result) if request.save else None
        return CalibrateResponse(environment_id=ident, result=result)

    def _what_if(self, request: WhatIfRequest) -> WhatIfResult:
        history = None
        if request.history is not None:
            table = table_from_json(request.history, self.limits, "history")
            # Cross-sectional rows (no timestamp column) fit a graph as well as a time series.
            history = history_from_table(table, timestamp=request.timestamp, cross_sectional=True)
        return run_what_if(request.to_spec(), history)

    def _counterfactual(self, request: CounterfactualRequest) -> CounterfactualResult:
        table = table_from_json(request.history, self.limits, "history")
        history = history_from_table(table, timestamp=request.timestamp, cross_sectional=True)
        return run_counterfactual(request.to_spec(), history)

    def _correlations(self, request: CorrelationsRequest) -> CorrelationResult:
        table = table_from_json(request.history, self.limits, "history")
        history = history_from_table(table, timestamp=request.timestamp)
        if request.segment:
            history = history.select(**request.segment)
        if request.collapse is not None:
            history = history.collapse(request.collapse)
        return correlate(history, request.settings, metrics=request.metrics)

    def _synthetic(self, request: SyntheticRequest, progress: Progress) -> SyntheticResponse:
        cases: list[Any] = [
            parse_edge_case(case, f"edge_cases.{i}") if isinstance(case, str) else case
            for i, case in enumerate(request.edge_cases)
        ]
        spec = SyntheticSpec(
            rows=request.rows,
            seed=request.seed,
            edge_cases=tuple(cases),
            keep_missing=request.keep_missing,
        )
        source = table_from_json(request.source, self.limits, "source")
        progress(0.1, "fitted the copula")
        table, result = synthesize(source, spec)
        return SyntheticResponse(result=result, columns=table_to_columns(table))

    def _anomalies(self, request: AnomaliesRequest) -> AnomaliesResponse:
        table = table_from_json(request.series, self.limits, "series")
        history = history_from_table(table, timestamp=request.timestamp, field="series")
        history.require_single_series("series")
        column = request.value_column
        if column is None:
            if len(history.metric_names) != 1:
                raise InvalidInput(
                    "value_column",
                    f"the series has several metrics ({', '.join(history.metric_names)}); name one",
                )
            column = history.metric_names[0]
        values = history.values(column)
        missing = np.flatnonzero(np.isnan(values))
        if missing.size:
            raise InvalidInput(
                f"series.{column}",
                f"row {int(missing[0])} has no value "
                f"({missing.size} missing); anomaly detection needs every point",
            )
        patterns = [*DEFAULT_PATTERNS, *request.patterns]
        if request.use_stored_patterns:
            patterns += stored_patterns(self.store)
        times = (
            history.time.astype("datetime64[s]")
            if history.time_kind == "datetime"
            else (history.time)
        )
        result = detect_anomalies(times, values, request.settings, patterns)
        learned = None
        if request.learn is not None:
            if not result.anomalies:
                raise InvalidInput("learn", "no anomaly in the series to learn a pattern from")
            strongest = max(result.anomalies, key=lambda a: a.score)
            learned = learn_pattern(strongest, request.learn, "learned through the HTTP API")
            keep_pattern(self.store, learned)
        return AnomaliesResponse(
            value_column=column,
            n_points=result.n_points,
            settings=result.settings,
            patterns_used=result.patterns_used,
            anomalies=result.anomalies,
            scores=result.scores if request.include_scores else None,
            learned=learned,
        )
