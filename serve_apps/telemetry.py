"""Dashboard metrics through ``ray.util.metrics``: requests, latency, analyses, replicates, runs.

Ray exports them on every node's metrics endpoint (and so to the dashboard's Grafana) with a
``ray_`` prefix, and Counters get ``_total``: ``twinloop_http_requests`` is scraped as
``ray_twinloop_http_requests_total``. Route tags use the route *template*
(``/runs/{run_id}``), never the raw path, so an id cannot blow up the number of series.
Outside a Ray worker (unit tests) every call is a no-op.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

LATENCY_BOUNDARIES_S = [
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
]

METRIC_NAMES = {
    "requests": "twinloop_http_requests",
    "latency": "twinloop_http_request_seconds",
    "analyses": "twinloop_analyses",
    "replicates": "twinloop_replicates",
    "customer_days_per_s": "twinloop_customer_days_per_second",
    "runs_in_flight": "twinloop_runs_in_flight",
    "runs": "twinloop_runs",
    "loop_kpis": "twinloop_loop_kpi",
}


def exported_name(key: str) -> str:
    """The name Prometheus sees for one of ``METRIC_NAMES`` (Ray's prefix and suffix)."""
    name = "ray_" + METRIC_NAMES[key]
    return name + "_total" if key in ("requests", "analyses", "replicates", "runs") else name


class Telemetry:
    """The metrics of one replica; created lazily so importing this module needs no Ray."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, Any] | None = None
        self._in_flight: dict[str, int] = {}

    def _get(self) -> dict[str, Any] | None:
        if self._metrics is None:
            import ray

            if not ray.is_initialized():
                return None
            from ray.util.metrics import Counter, Gauge, Histogram

            self._metrics = {
                "requests": Counter(
                    METRIC_NAMES["requests"],
                    description="HTTP requests by route and status.",
                    tag_keys=("route", "method", "status"),
                ),
                "latency": Histogram(
                    METRIC_NAMES["latency"],
                    description="HTTP request latency in seconds.",
                    boundaries=LATENCY_BOUNDARIES_S,
                    tag_keys=("route", "method"),
                ),
                "analyses": Counter(
                    METRIC_NAMES["analyses"],
                    description="Failure analyses completed.",
                    tag_keys=("outcome",),
                ),
                "replicates": Counter(
                    METRIC_NAMES["replicates"],
                    description="Monte Carlo replicates simulated.",
                    tag_keys=("operation",),
                ),
                "customer_days_per_s": Gauge(
                    METRIC_NAMES["customer_days_per_s"],
                    description="Simulated customer-days per wall-clock second, last run.",
                    tag_keys=("operation",),
                ),
                "runs_in_flight": Gauge(
                    METRIC_NAMES["runs_in_flight"],
                    description="Background runs executing on this replica.",
                    tag_keys=("operation",),
                ),
                "runs": Counter(
                    METRIC_NAMES["runs"],
                    description="Background runs finished, by status.",
                    tag_keys=("operation", "status"),
                ),
                "loop_kpis": Gauge(
                    METRIC_NAMES["loop_kpis"],
                    description="The improvement loop's KPIs from the Store (docs/loop.md).",
                    tag_keys=("kpi",),
                ),
            }
        return self._metrics

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        m = self._get()
        if m is None:
            return
        m["requests"].inc(1, tags={"route": route, "method": method, "status": str(status)})
        m["latency"].observe(seconds, tags={"route": route, "method": method})

    def analysis(self, outcome: str) -> None:
        m = self._get()
        if m is not None:
            m["analyses"].inc(1, tags={"outcome": outcome})

    def simulated(
        self, operation: str, replicates: int, customer_days: float, seconds: float
    ) -> None:
        m = self._get()
        if m is None:
            return
        if replicates > 0:
            m["replicates"].inc(replicates, tags={"operation": operation})
        if seconds > 0:
            m["customer_days_per_s"].set(customer_days / seconds, tags={"operation": operation})

    def run_started(self, operation: str) -> None:
        self._runs(operation, +1)

    def run_ended(self, operation: str, status: str) -> None:
        self._runs(operation, -1)
        m = self._get()
        if m is not None:
            m["runs"].inc(1, tags={"operation": operation, "status": status})

    def _runs(self, operation: str, delta: int) -> None:
        with self._lock:
            count = self._in_flight.get(operation, 0) + delta
            self._in_flight[operation] = max(0, count)
        m = self._get()
        if m is not None:
            m["runs_in_flight"].set(self._in_flight[operation], tags={"operation": operation})

    def loop_kpis(self, values: Mapping[str, float | None]) -> None:
        """Export the loop's KPIs (those that have a value) as one gauge tagged by name."""
        m = self._get()
        if m is None:
            return
        for name, value in values.items():
            if value is not None:
                m["loop_kpis"].set(value, tags={"kpi": name})
