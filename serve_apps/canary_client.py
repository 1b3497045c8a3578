"""A served canary for a driver (the demo): the canary API on Serve, and its HTTP client.

:func:`serve_canary_api` deploys the ingress with only the canary capability (plus the Canary
deployment, which is also the monitor) on the connected Ray, HTTP bound to 127.0.0.1 with a
bearer token of its own; the first ``PUT /models/{family}/canary`` deploys the family's own
application (``serve_apps.family``). When this process started Serve it shuts it down on exit;
when Serve was already running, only the applications it added are deleted. Serve starts on the
first call (:class:`LazyCanary`). :class:`HttpCanary`
is the :class:`~twinloop.loop.served_canary.CanaryApi` over real HTTP: camelCase at this edge,
predictions sent concurrently (one request per unit, as production's callers would).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import httpx

from twinloop.errors import TwinloopError

APP: Final = "twinloop-canary"
PREFIX: Final = "/canary-api"
CONCURRENCY: Final = 8


class CanaryHttpError(TwinloopError):
    """The served canary answered with an error."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HttpCanary:
    """The canary routes of one Serve ingress, over HTTP."""

    def __init__(self, base_url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=60)
        self.pool = concurrent.futures.ThreadPoolExecutor(CONCURRENCY)
        self.requests = 0

    def close(self) -> None:
        self.pool.shutdown()
        self.http.close()

    def _ok(self, response: httpx.Response) -> dict[str, Any]:
        self.requests += 1
        if response.status_code != 200:
            raise CanaryHttpError(
                f"{response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text[:300]}"
            )
        return dict(response.json())

    def start(self, family: str, version: str, weight: float, min_units: int) -> dict[str, Any]:
        body = {"version": version, "weight": weight, "minUnits": min_units}
        return self._ok(self.http.put(f"/models/{family}/canary", json=body))

    def state(self, family: str) -> dict[str, Any] | None:
        response = self.http.get(f"/models/{family}/canary")
        if response.status_code == 404:
            return None
        return self._ok(response)

    def predict(
        self, family: str, units: list[tuple[str, list[list[float]]]]
    ) -> list[tuple[str, list[float]]]:
        def one(unit: tuple[str, list[list[float]]]) -> tuple[str, list[float]]:
            body = self._ok(
                self.http.post(
                    f"/models/{family}/predict", json={"unitId": unit[0], "rows": unit[1]}
                )
            )
            return str(body["version"]), [float(s) for s in body["scores"]]

        return list(self.pool.map(one, units))

    def outcomes(self, family: str, batch_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"batchId": batch_id, "events": events}
        return self._ok(self.http.post(f"/models/{family}/outcomes", json=body))

    def rollback(self, family: str) -> dict[str, Any]:
        return self._ok(self.http.post(f"/models/{family}/rollback"))


def _serve_port() -> int | None:
    """The HTTP port of a Serve already running on this Ray, else None."""
    from ray import serve

    try:
        status = serve.status()
    except Exception:  # no Serve controller: nothing is running
        return None
    if status.proxies:
        from ray.serve.context import _get_global_client

        client = _get_global_client()
        if client is not None:
            return int(client.http_config.port)
    return None


class LazyCanary:
    """An :class:`HttpCanary` whose Serve application starts on the first call (so CPU-bound
    stages before the canary do not share the node with idle Serve replicas)."""

    def __init__(self, start: Callable[[], HttpCanary]) -> None:
        self._start = start
        self._client: HttpCanary | None = None

    @property
    def client(self) -> HttpCanary:
        if self._client is None:
            self._client = self._start()
        return self._client

    @property
    def started(self) -> bool:
        return self._client is not None

    def start(self, family: str, version: str, weight: float, min_units: int) -> dict[str, Any]:
        return self.client.start(family, version, weight, min_units)

    def state(self, family: str) -> dict[str, Any] | None:
        return self.client.state(family)

    def predict(
        self, family: str, units: list[tuple[str, list[list[float]]]]
    ) -> list[tuple[str, list[float]]]:
        return self.client.predict(family, units)

    def outcomes(self, family: str, batch_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        return self.client.outcomes(family, batch_id, events)

    def rollback(self, family: str) -> dict[str, Any]:
        return self.client.rollback(family)


@contextlib.contextmanager
def serve_canary_api(
    data_dir: Path,
    redis_url: str | None,
    family: str,
    *,
    ray_ends: bool = False,
    early: bool = False,
) -> Iterator[LazyCanary]:
    """The canary capability on Serve (127.0.0.1, a fresh bearer token), as an HTTP client;
    ``family`` is the one whose application is removed afterwards on a shared Serve.
    ``ray_ends``: the caller shuts its private Ray down next, which ends Serve with it.
    ``early``: start Serve now in a thread, while the caller's CPU-bound work runs (its two
    replicas then reserve no CPU, so they do not take a core from Tune's trials)."""
    from ray import serve

    from serve_apps.app import INGRESS_ENV, Canary, Ingress
    from serve_apps.config import app_config
    from serve_apps.family import app_name

    owns = {"serve": False}

    def start() -> HttpCanary:
        port = _serve_port()
        if port is None:
            port = _free_port()
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            owns["serve"] = True
        token = secrets.token_urlsafe(24)
        settings = {"data_dir": str(data_dir.resolve()), "api_token": token}
        if redis_url:
            settings["redis_url"] = redis_url
        config = app_config({"settings": settings})
        ingress: Any = Ingress
        canary: Any = Canary
        if early:
            env = {"env_vars": INGRESS_ENV}
            ingress = ingress.options(ray_actor_options={"num_cpus": 0, "runtime_env": env})
            canary = canary.options(ray_actor_options={"num_cpus": 0})
        app = ingress.bind(config, canary=canary.bind(config))
        serve.run(app, name=APP, route_prefix=PREFIX)
        return HttpCanary(f"http://127.0.0.1:{port}{PREFIX}", token)

    pending = concurrent.futures.ThreadPoolExecutor(1, "serve-start") if early else None
    lazy = LazyCanary(pending.submit(start).result if pending else start)
    try:
        yield lazy
    finally:
        if pending is not None:
            with contextlib.suppress(Exception):  # started, so that it is cleaned up below
                lazy.client  # noqa: B018
            pending.shutdown()
        if lazy.started:
            lazy.client.close()
            if owns["serve"] and not ray_ends:
                serve.shutdown()  # type: ignore[no-untyped-call]
            elif not owns["serve"]:
                for name in (APP, app_name(family)):
                    if name in serve.status().applications:
                        serve.delete(name)
