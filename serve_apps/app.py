"""The Serve application: the ingress composed with one deployment per capability.

``build_app(args)`` is the ``import_path`` of ``serve_config.yaml``
(``serve_apps.app:build_app``). Each capability is its own deployment, reached from the ingress
through a ``DeploymentHandle``, so the config can scale them apart (``num_replicas``,
``autoscaling_config``): the twin, the metrics engine and the analyzer are CPU-bound, the
ingress is not.
Routes are mounted only for the capabilities bound here, so none pretends to serve a missing one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from cluster.store_factory import open_store
from serve_apps.capabilities.analyzer import AnalyzerService
from serve_apps.capabilities.base import CapabilityService
from serve_apps.capabilities.canary import CanaryService
from serve_apps.capabilities.metrics import MetricsService
from serve_apps.capabilities.registry import RegistryService
from serve_apps.capabilities.twin import TwinService
from serve_apps.clients import CapabilityClient, HandleClient, InReplicaClient
from serve_apps.config import AppConfig, app_config
from serve_apps.ingress import Edge, create_api
from serve_apps.run_queue import RunQueueClient
from serve_apps.runs import RunBook

APP_NAME = "twinloop"
# The ingress's routes are async and short (the long work is on the capability deployments),
# so its replica runs them on Serve's own event loop instead of a second loop in another thread:
# one GIL hand-off less per request. Set on this deployment only: the capability deployments'
# long sync methods keep Serve's defaults.
INGRESS_ENV = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}
# Capabilities whose bounded requests the ingress answers itself (Edge.client_for), on its event
# loop: a worker thread per call cost 2.5x the throughput of the summary-form analysis
# (docs/benchmarks.md). A request that reads or writes the Store (a stored analysis) runs on a
# worker thread instead (EdgeModel.uses_store): a hung Store must not stall the loop.
IN_REPLICA: dict[str, type[CapabilityService]] = {
    "metrics": MetricsService,
    "analyzer": AnalyzerService,
}


@serve.deployment(
    name="Ingress",
    max_ongoing_requests=128,  # async routes: waiting on handles costs no CPU
    ray_actor_options={"num_cpus": 0.1, "runtime_env": {"env_vars": INGRESS_ENV}},
)
@serve.ingress()
class Ingress:
    """FastAPI ingress: ``create_api`` mounts the routers of ``serve_apps.routes``."""

    def __init__(self, config: AppConfig, **handles: DeploymentHandle[Any]) -> None:
        store = open_store(
            config.settings.redis_url,
            config.settings.data_dir,
            timeout_s=config.settings.store_timeout_s,
        )
        clients: dict[str, CapabilityClient] = {
            name: HandleClient(handle) for name, handle in handles.items()
        }
        # Bounded requests (summary-form analyses, analytic what-ifs) are answered here; see
        # Edge.client_for. Same classes and store as the deployments, so the answer is the same.
        in_replica: dict[str, CapabilityClient] = {
            name: InReplicaClient(service(config, store))
            for name, service in IN_REPLICA.items()
            if name in handles and config.limits.ingress_answer_bytes > 0
        }
        queue = RunQueueClient(config)
        queue.actor()  # started now: a capability hands its own runs to it by name
        self.edge = Edge(
            config=config,
            runs=RunBook(store),
            capabilities=clients,
            in_replica=in_replica,
            queue=queue,
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_api(self.edge)


# Each capability reserves a tenth of a CPU: their heavy work (background runs) happens on the
# shared pool's 1-CPU workers, and on a 2-CPU node the six deployments together must leave one
# whole CPU free for a pool worker, or every background run waits for resources it never gets.
Twin = serve.deployment(
    TwinService, name="Twin", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.1}
)
Metrics = serve.deployment(
    MetricsService, name="Metrics", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.1}
)
Analyzer = serve.deployment(
    AnalyzerService,
    name="Analyzer",
    max_ongoing_requests=16,
    ray_actor_options={"num_cpus": 0.1},
)

# Registry reads and writes are short Store calls; a championship runs on its own actor pool.
Registry = serve.deployment(
    RegistryService, name="Registry", max_ongoing_requests=16, ray_actor_options={"num_cpus": 0.1}
)

Canary = serve.deployment(
    CanaryService, name="Canary", max_ongoing_requests=32, ray_actor_options={"num_cpus": 0.1}
)

DEPLOYMENTS = (Ingress, Twin, Metrics, Analyzer, Registry, Canary)


def build_app(args: dict[str, Any]) -> Application:
    """Application builder for ``serve run`` / ``serve deploy`` (args: settings, limits)."""
    config = app_config(args)
    ingress: Any = Ingress  # serve.deployment returns a Deployment; its stubs lose .bind
    app: Application = ingress.bind(
        config,
        twin=Twin.bind(config),  # type: ignore[attr-defined]
        metrics=Metrics.bind(config),  # type: ignore[attr-defined]
        analyzer=Analyzer.bind(config),  # type: ignore[attr-defined]
        registry=Registry.bind(config),  # type: ignore[attr-defined]
        canary=Canary.bind(config),  # type: ignore[attr-defined]
    )
    return app
