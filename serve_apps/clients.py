"""How the ingress reaches a capability: a DeploymentHandle, or the same class in this process.

A handle reaches the capability deployment (which scales on its own); the in-process clients
answer the ingress's bounded requests (``Edge.client_for``) and run the unit tests. All clients
give the same contract — ``call`` with a deadline, ``fire`` and forget — and raise the
capability's own exception (unwrapped from Ray's ``RayTaskError`` for a handle).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from serve_apps.errors import DeadlineExceeded, cause_of

log = logging.getLogger("twinloop.serve")


class CapabilityClient(Protocol):
    """How the ingress reaches a capability: a call with a deadline, or fire-and-forget."""

    async def call(self, method: str, *args: Any, timeout: float) -> Any: ...

    def fire(self, method: str, *args: Any) -> None: ...


class HandleClient:
    """A capability deployment behind a Serve ``DeploymentHandle``."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self._pending: set[asyncio.Task[Any]] = set()

    async def call(self, method: str, *args: Any, timeout: float) -> Any:
        response = getattr(self.handle, method).remote(*args)
        try:
            # Serve's proxy enforces the client's header too, from the moment it got the request;
            # answering a little earlier lets the ingress's JSON 504 win that race.
            budget = max(0.05, timeout * 0.95 - 0.05)
            return await asyncio.wait_for(_awaited(response), budget)
        except TimeoutError:
            response.cancel()
            raise DeadlineExceeded(timeout) from None
        except asyncio.CancelledError:
            response.cancel()  # the proxy gave up (client gone or its timeout): stop the work
            raise
        except Exception as exc:
            cause = cause_of(exc)
            if cause is exc:
                raise
            raise cause from exc  # the replica's exception as itself (it pickles, twinloop.errors)

    def fire(self, method: str, *args: Any) -> None:
        # Keep a reference until it ends; errors are logged, the run record carries the outcome.
        task = asyncio.ensure_future(_quietly(getattr(self.handle, method).remote(*args)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


class LocalClient:
    """A capability object in this process, called on a worker thread (unit tests,
    ``_local_testing_mode``)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self._pending: set[asyncio.Future[Any]] = set()

    async def call(self, method: str, *args: Any, timeout: float) -> Any:
        fn = getattr(self.target, method)
        try:
            return await asyncio.wait_for(run_in_threadpool(fn, *args), timeout)
        except TimeoutError:
            raise DeadlineExceeded(timeout) from None

    def fire(self, method: str, *args: Any) -> None:
        task = asyncio.ensure_future(run_in_threadpool(getattr(self.target, method), *args))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


class InReplicaClient(LocalClient):
    """A capability object in this process, called on the event loop itself.

    For bounded work only (a few milliseconds, a Store write at most): handing it to a thread
    costs more than the work, since the GIL serialises the two anyway. No deadline: the work is
    shorter than any deadline a client can ask for. ``fire`` (background runs) keeps the thread.
    """

    async def call(self, method: str, *args: Any, timeout: float) -> Any:
        return getattr(self.target, method)(*args)


async def _awaited(response: Awaitable[Any]) -> Any:
    return await response


async def _quietly(response: Awaitable[Any]) -> None:
    try:
        await response
    except Exception:
        log.exception("background dispatch failed; the run will be re-dispatched when polled")
