"""Ray metrics of canary deployments: predictions per version, canary weight, decisions.

Exported as ``ray_twinloop_canary_predictions_total{family,version,role}``,
``ray_twinloop_canary_weight{family}`` and ``ray_twinloop_canary_decisions_total{family,action,by}``
(Ray adds the prefix and the Counter suffix); ``cluster/grafana/canary.json`` charts them.
Outside a Ray worker every call is a no-op.
"""

from __future__ import annotations

import threading
from typing import Any

METRIC_NAMES = {
    "predictions": "twinloop_canary_predictions",
    "weight": "twinloop_canary_weight",
    "decisions": "twinloop_canary_decisions",
}


class CanaryTelemetry:
    """The canary metrics of one replica; created lazily so importing needs no Ray."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any] | None:
        with self._lock:
            if self._metrics is None:
                import ray

                if not ray.is_initialized():
                    return None
                from ray.util.metrics import Counter, Gauge

                self._metrics = {
                    "predictions": Counter(
                        METRIC_NAMES["predictions"],
                        description="Predictions answered, by family, version and role.",
                        tag_keys=("family", "version", "role"),
                    ),
                    "weight": Gauge(
                        METRIC_NAMES["weight"],
                        description="Share of units sent to the canary.",
                        tag_keys=("family",),
                    ),
                    "decisions": Counter(
                        METRIC_NAMES["decisions"],
                        description="Canary decisions (rollback, promote, expire) by actor.",
                        tag_keys=("family", "action", "by"),
                    ),
                }
            return self._metrics

    def prediction(self, family: str, version: str, role: str) -> None:
        metrics = self._get()
        if metrics is not None:
            metrics["predictions"].inc(tags={"family": family, "version": version, "role": role})

    def weight(self, family: str, weight: float) -> None:
        metrics = self._get()
        if metrics is not None:
            metrics["weight"].set(weight, tags={"family": family})

    def decision(self, family: str, action: str, by: str) -> None:
        metrics = self._get()
        if metrics is not None:
            metrics["decisions"].inc(tags={"family": family, "action": action, "by": by})
