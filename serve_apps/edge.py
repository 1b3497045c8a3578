"""The ASGI middleware in front of every route: body limit, deadline, metrics, last-resort errors.

It is a plain ASGI wrapper (not Starlette's ``BaseHTTPMiddleware``, which buffers responses and
adds a task per request). Per request it

1. refuses a body larger than ``Limits.max_body_bytes`` with 413 — from ``Content-Length`` before
   reading anything, else while reading a chunked body;
2. keeps the body's size in ``request.state.body_bytes``;
3. replaces the client's ``x-request-timeout-seconds`` by the capped deadline
   (:func:`~serve_apps.limits.request_deadline`), kept in ``request.state.deadline_s`` and echoed
   as ``x-twinloop-deadline-seconds``;
4. counts the request by route template and status and observes its latency;
5. turns any exception that escaped the routes into the JSON error of
   :func:`~serve_apps.errors.http_error` (the one mapping).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serve_apps.errors import ErrorBody, http_error
from serve_apps.limits import TIMEOUT_HEADER, Limits, request_deadline
from serve_apps.telemetry import Telemetry
from twinloop.errors import LimitExceeded

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
DEADLINE_HEADER = "x-twinloop-deadline-seconds"


async def send_error(
    send: Send, status: int, body: ErrorBody, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Write a JSON error response straight to the ASGI channel."""
    payload = body.model_dump_json(exclude_none=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class EdgeMiddleware:
    """See the module docstring; ``limits`` and ``telemetry`` are the replica's."""

    def __init__(self, app: ASGIApp, limits: Limits, telemetry: Telemetry) -> None:
        self.app = app
        self.limits = limits
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope.get("method", "GET")
        raw_headers = list(scope.get("headers", []))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
        deadline = request_deadline(headers, self.limits)
        scope["headers"] = [
            (k, v) for k, v in raw_headers if k.decode("latin-1").lower() != TIMEOUT_HEADER
        ]
        scope.setdefault("state", {})["deadline_s"] = deadline
        request_id = headers.get("x-request-id")
        status_box = [500]
        started_response = [False]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = int(message["status"])
                started_response[0] = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (DEADLINE_HEADER.encode(), f"{deadline:g}".encode()),
                ]
            await send(message)

        try:
            replay, size = await self._bounded_body(headers, receive, method)
            scope["state"]["body_bytes"] = size
            await self.app(scope, replay, send_wrapper)
        except Exception as exc:
            status, body = http_error(exc, request_id)
            status_box[0] = status
            if not started_response[0]:
                extra = [(b"www-authenticate", b"Bearer")] if status == 401 else None
                await send_error(send, status, body, extra)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.telemetry.request(template, method, status_box[0], time.perf_counter() - started)

    async def _bounded_body(
        self, headers: dict[str, str], receive: Receive, method: str
    ) -> tuple[Receive, int]:
        """Read the whole body (up to the limit); return a receive that replays it, and its size."""
        limit = self.limits.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise LimitExceeded("body", int(declared), limit)
        if method in ("GET", "HEAD", "OPTIONS"):
            return receive, 0
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise LimitExceeded("body", size, limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = [False]

        async def replay() -> Message:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay, size


def error_json(body: ErrorBody) -> bytes:
    """An error body as bytes (for Starlette responses built outside the middleware)."""
    return body.model_dump_json(exclude_none=True).encode()
