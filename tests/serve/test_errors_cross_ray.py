"""Our exceptions cross a real Ray call as themselves: class, field, limit and HTTP status."""

from __future__ import annotations

from typing import Any

import pytest

from serve_apps.errors import cause_of, http_error
from twinloop.errors import LimitExceeded, NotFound

pytestmark = [pytest.mark.ray]


def test_an_error_raised_in_a_ray_task_comes_back_as_itself(ray_session: Any) -> None:
    """A worker's LimitExceeded reaches the driver with its field and limit; NotFound its kind."""
    ray = ray_session

    def _refuse(kind: str) -> None:  # defined here: pickled by value, not by test-module name
        if kind == "limit":
            raise LimitExceeded("replicates", 20_000, 10_000)
        raise NotFound("environment", "env-1")

    refuse = ray.remote(_refuse)
    with pytest.raises(LimitExceeded) as caught:
        ray.get(refuse.remote("limit"))
    error = cause_of(caught.value)
    assert type(error) is LimitExceeded
    assert (error.field, error.value, error.limit) == ("replicates", 20_000, 10_000)
    status, body = http_error(caught.value)
    assert (status, body.code, body.field, body.limit) == (413, "limit_exceeded", "replicates", 1e4)
    with pytest.raises(NotFound) as missing:
        ray.get(refuse.remote("missing"))
    assert http_error(missing.value)[0] == 404 and cause_of(missing.value).field == "environment"
