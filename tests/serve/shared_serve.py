"""Helpers for the Serve test modules sharing one Serve instance (see ``conftest.py``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def deployed(app: Any, name: str) -> Iterator[None]:
    """``app`` on the shared Serve at route ``/`` under ``name``, deleted when the block ends (a
    module's application must not answer the next module's requests)."""
    from ray import serve

    serve.run(app, name=name, route_prefix="/")
    try:
        yield
    finally:
        serve.delete(name)
