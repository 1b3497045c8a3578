"""A model family on Serve: one application with a Router (assignment) and a multiplexed Model.

``canary-<family>`` holds two deployments. The **Router** keeps the family's
:class:`~twinloop.canary.assignment.CanaryConfig` — champion, canary, weight, salt — as its
``user_config``: changing the weight or the versions is a *reconfigure* (``reconfigure`` runs on
the live replicas) and never restarts a replica. It assigns each unit to a version and forwards
the rows to the **Model** deployment with ``multiplexed_model_id=<family>/<version>``:
``serve.multiplexed`` keeps a few versions loaded per replica (an ONNX session each) and Serve
routes a version's requests to replicas that already hold it, so a new canary version needs no
new deployment at all. With ``batching`` (a family's choice, off by default) the Model answers
through ``serve.batch``: concurrent requests for one version become one ONNX call. For a small
ONNX model it did not pay (docs/benchmarks.md measures both): the call is cheaper than the wait.

A lightweight update needs a stable deployment version: ``serve deploy`` derives it from the
config file, but ``serve.run`` draws a random one per call (every call would roll the replicas).
:func:`deploy` therefore pins it (``options(version=…, _internal=True)``, the field Serve's own
config path sets), so a second ``serve.run`` with another ``user_config`` only reconfigures.
:func:`deploy` returns once the application is RUNNING again, i.e. every Router replica has
applied the new config: a prediction sent after it is answered under the new config.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any, Final

import numpy as np
from ray import serve
from ray.serve.api import RunTarget, run_many
from ray.serve.handle import DeploymentHandle

import twinloop
from cluster.store_factory import open_store
from serve_apps.canary_metrics import CanaryTelemetry
from twinloop.canary.assignment import CanaryConfig
from twinloop.config import Settings
from twinloop.errors import InvalidInput, NotFound
from twinloop.registry.registry import Registry
from twinloop.sim.models import Predictor, ScoredModel, load_predictor

ROUTER: Final = "Router"
MODEL: Final = "Model"
CODE_VERSION: Final = f"twinloop-canary-{twinloop.__version__}"
MODELS_PER_REPLICA: Final = 4  # champion, canary and a version on its way in or out
POLL_S: Final = 0.02


def app_name(family: str) -> str:
    """The family's Serve application."""
    return f"canary-{family}"


def check_rows(rows: list[list[float]], width: int | None) -> None:
    """Every feature row has the model's width; InvalidInput names the first that has not."""
    for i, row in enumerate(rows):
        if width is not None and len(row) != width:
            raise InvalidInput(f"rows[{i}]", f"has {len(row)} features; the model takes {width}")


class ModelServer:
    """Scores feature rows with a version of the family, loaded on demand (multiplexed)."""

    def __init__(self, settings: Settings) -> None:
        self.registry = Registry(
            open_store(settings.redis_url, settings.data_dir), settings=settings
        )

    @serve.multiplexed(max_num_models_per_replica=MODELS_PER_REPLICA)  # type: ignore[untyped-decorator]
    async def get_model(self, model_id: str) -> Predictor:
        """``<family>/<version>`` → its predictor (the ONNX bytes come from the artifact store)."""
        family, _, version_id = model_id.partition("/")
        version = self.registry.version(family, version_id)
        runnable = self.registry.runnable(version)
        if not isinstance(runnable, ScoredModel):
            raise InvalidInput("version", f"{model_id} is a profile: it has no predictor to serve")
        return load_predictor(runnable)

    async def predict(self, model_id: str, rows: list[list[float]]) -> list[float]:
        """One request, one model call."""
        model = await self.get_model(model_id)
        return model.predict(np.asarray(rows, dtype=np.float64)).tolist()  # type: ignore[no-any-return]

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def predict_batched(
        self, requests: list[tuple[str, list[list[float]]]]
    ) -> list[list[float]]:
        """Concurrent requests, one model call per version among them."""
        groups: dict[str, list[int]] = defaultdict(list)
        for i, (model_id, _) in enumerate(requests):
            groups[model_id].append(i)
        batches = [rows for _, rows in requests]
        answers: list[list[float]] = [[] for _ in requests]
        for model_id, members in groups.items():
            model = await self.get_model(model_id)
            rows = np.asarray([r for i in members for r in batches[i]], dtype=np.float64)
            scores = model.predict(rows).tolist()
            start = 0
            for i in members:
                answers[i] = scores[start : start + len(batches[i])]
                start += len(batches[i])
        return answers


class Router:
    """Assigns a unit to the champion or the canary and asks the Model deployment to score it."""

    def __init__(self, model: DeploymentHandle[Any]) -> None:
        self.model = model
        self.config: CanaryConfig | None = None
        self.telemetry = CanaryTelemetry()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """The new config (Serve calls this on the live replica; no restart)."""
        self.config = CanaryConfig.model_validate(user_config)
        self.telemetry.weight(self.config.family, self.config.weight)

    async def predict(self, unit_id: str, rows: list[list[float]]) -> dict[str, Any]:
        config = self.config
        if config is None:  # pragma: no cover - Serve reconfigures before the first request
            raise NotFound("model family deployment", "unconfigured")
        check_rows(rows, config.n_features)
        role = config.role(unit_id)
        version = config.canary if role == "canary" and config.canary else config.champion
        model_id = f"{config.family}/{version}"
        handle = self.model.options(multiplexed_model_id=model_id)
        if config.batching:
            scores = await handle.predict_batched.remote((model_id, rows))
        else:
            scores = await handle.predict.remote(model_id, rows)
        self.telemetry.prediction(config.family, version, role)
        return {
            "unit_id": unit_id,
            "version": version,
            "role": role,
            "generation": config.generation,
            "scores": scores,
        }


ModelDeployment = serve.deployment(
    ModelServer, name=MODEL, max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.1}
)
RouterDeployment = serve.deployment(
    Router, name=ROUTER, max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.05}
)


def deploy(config: CanaryConfig, settings: Settings, *, timeout_s: float = 120.0) -> float:
    """Deploy or reconfigure the family's application; returns the seconds it took to apply.

    Blocking: it returns when the application is RUNNING under ``config``.
    """
    started = time.perf_counter()
    model: Any = ModelDeployment.options(version=CODE_VERSION, _internal=True)  # type: ignore[attr-defined]
    router: Any = RouterDeployment.options(  # type: ignore[attr-defined]
        version=CODE_VERSION, user_config=config.model_dump(mode="json"), _internal=True
    )
    app = router.bind(model.bind(settings))
    name = app_name(config.family)
    run_many(
        [RunTarget(target=app, name=name, route_prefix=None)],
        wait_for_applications_running=False,
    )
    wait_running(name, timeout_s)
    return time.perf_counter() - started


def wait_running(name: str, timeout_s: float) -> None:
    """Poll the controller until the application is RUNNING (Serve's own wait polls every 1 s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app = serve.status().applications.get(name)
        if app is not None and app.status == "RUNNING":
            return
        if app is not None and app.status == "DEPLOY_FAILED":
            raise RuntimeError(f"application {name} failed to deploy: {app.message}")
        time.sleep(POLL_S)
    raise TimeoutError(f"application {name} not RUNNING after {timeout_s:g} s")


class FamilyRouters:
    """The ingress's handles to the families' Routers, looked up once per family."""

    def __init__(self) -> None:
        self._handles: dict[str, DeploymentHandle[Any]] = {}

    async def get(self, family: str) -> DeploymentHandle[Any]:
        """The family's Router; NotFound when the family has no deployed application."""
        found = self._handles.get(family)
        if found is not None:
            return found
        status = await asyncio.to_thread(serve.status)
        if app_name(family) not in status.applications:
            raise NotFound("deployed model family", family)
        handle = serve.get_deployment_handle(ROUTER, app_name=app_name(family))
        self._handles[family] = handle
        return handle
