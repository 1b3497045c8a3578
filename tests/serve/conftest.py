"""One Serve instance (controller and HTTP proxy) for every Serve test module of the session.

Each module deploys its own application on it (``shared_serve.deployed``) and deletes it
afterwards, so the modules stay independent while the controller and proxy start and stop once:
per module that pair cost ~6 s to start and ~5 s to shut down here, a deletion ~3 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from shared_serve import free_port


@pytest.fixture(scope="session")
def serve_port(ray_session: Any) -> Iterator[int]:
    """Serve's proxy on a free loopback port, started once; shut down at the session's end."""
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()  # type: ignore[no-untyped-call]
