"""The JSON body contract of every route with a body: its media type, encoding, depth and numbers.

FastAPI alone answers a body sent as ``text/plain`` (or without a ``Content-Type``) with a 422
that blames the body's fields, a body that is not UTF-8 or nests thousands of levels with a bare
"error parsing the body", and lets ``NaN`` through to whatever field takes it. :class:`JsonRoute`
(the route class of every ``OperationRouter``) says what is wrong instead:

* a body route without ``Content-Type: application/json`` (or ``+json``) → 415 naming the type;
* a body that is not UTF-8, or nests deeper than the parser goes → 400 ``malformed_body``,
  without a ``field`` (there is no field yet: the body is not JSON we can read);
* ``NaN`` / ``Infinity`` literals (not JSON, but Python's parser takes them) → 422 naming the
  first one's path in the request, "not a finite number".
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from serve_apps.errors import MalformedBody, UnsupportedMediaType
from twinloop.contract import field_path
from twinloop.errors import InvalidInput

JSON_TYPES = ("application/json",)


def require_json(content_type: str | None) -> None:
    """Refuse a body that is not declared as JSON (415), saying what was sent."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        return
    got = f"{kind!r}" if kind else "no Content-Type"
    raise UnsupportedMediaType(
        f"send the body as JSON with 'Content-Type: application/json' (got {got})"
    )


def parse_json(body: bytes) -> Any:
    """The body as JSON: UTF-8 only, no NaN or Infinity (named by their path)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(
            f"the body is not UTF-8 (invalid byte at offset {exc.start}); send JSON in UTF-8"
        ) from None
    constants: list[str] = []

    def constant(name: str) -> float:
        constants.append(name)
        return float(name)

    try:
        data = json.loads(text, parse_constant=constant)
    except RecursionError:
        raise MalformedBody("the body nests too deeply to parse as JSON") from None
    if constants:
        path = field_path(*_non_finite(data, []))
        raise InvalidInput(path or "body", f"{constants[0]} is not a finite number")
    return data


def _non_finite(value: Any, path: list[str | int]) -> list[str | int]:
    """The path of the first NaN or infinity in parsed JSON (empty when the root is one)."""
    items: Any = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    elif isinstance(value, float) and not math.isfinite(value):
        return path
    for key, item in items:
        found = _non_finite(item, [*path, key])
        if found or (isinstance(item, float) and not math.isfinite(item)):
            return found
    return []


class JsonRequest(Request):
    """A request whose ``json()`` is :func:`parse_json`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JsonRoute(APIRoute):
    """A route that reads its body with :class:`JsonRequest`, after checking its media type."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        has_body = self.body_field is not None

        async def handler(request: Request) -> Response:
            if has_body:
                require_json(request.headers.get("content-type"))
            return await handle(JsonRequest(request.scope, request.receive))

        return handler
