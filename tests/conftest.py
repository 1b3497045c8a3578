"""Shared fixtures: one local Ray per test session (started lazily), a Redis key prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Ray's token auth would write ~/.ray/auth_token; tests run with it off (RAY_NOTES.md).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REDIS_URL = os.environ.get("TWINLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """Start one local Ray for the whole session (num_cpus=2, loopback); tests share it."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",  # never join a cluster someone started by hand on this machine
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"RAY_AUTH_MODE": "disabled"}},
        )
    yield ray
    ray.shutdown()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix in the real Redis; every key under it is deleted afterwards."""
    import redis

    prefix = f"twinloop-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def shared_dir() -> Path:
    """The read-only ../shared folder (benchmarks data); CI has it beside the clone."""
    if not SHARED.is_dir():
        pytest.fail(f"../shared is missing at {SHARED}; CI and developers have it beside the repo")
    return SHARED
