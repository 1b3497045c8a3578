"""The application's arguments: settings overrides and request limits, validated once.

``serve_config.yaml`` passes them as ``applications[].args``; ``serve_apps.app.build_app``
validates them into :class:`AppConfig`, which every deployment receives. Settings come from the
environment (``TWINLOOP_*`` variables of the nodes, or the config's ``runtime_env.env_vars``) with
``args.settings`` on top. A relative data directory (the default ``./twinloop-data`` included)
is taken from the home directory here, because a replica's working directory is a temporary
folder that does not survive a restart.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serve_apps.limits import Limits
from twinloop.config import Settings, load_settings
from twinloop.contract import FrozenModel, invalid_input
from twinloop.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class AppArgs(FrozenModel):
    """``applications[].args`` in the Serve config."""

    settings: dict[str, Any] = Field(
        default_factory=dict, description="Settings fields (snake_case) over the environment."
    )
    limits: dict[str, Any] = Field(default_factory=dict, description="Limits fields.")
    sandbox: dict[str, Any] = Field(default_factory=dict, description="SandboxPool fields.")


class SandboxPool(FrozenModel):
    """The one actor pool every background run fans its replicates out over, and the queue
    in front of it (``serve_apps.run_queue``)."""

    cpus_per_worker: float = Field(default=1.0, gt=0.0, description="num_cpus of each actor.")
    max_workers: int = Field(default=8, ge=1, description="Actors in the pool, at most.")
    concurrent_runs: int = Field(
        default=2, ge=1, description="Background runs executing at once; the others wait queued."
    )
    startup_timeout_s: float = Field(
        default=120.0, gt=0.0, description="How long a run waits for the pool's workers to start."
    )
    idle_s: float = Field(
        default=60.0, ge=0.0, description="The pool's workers stop after this long without runs."
    )


class AppConfig(BaseModel):
    """What every deployment of the application is built with."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    settings: Settings
    limits: Limits
    sandbox: SandboxPool = SandboxPool()


def run_queue_name(config: AppConfig) -> str:
    """The named actor of the run queue of the application built with ``config``: one per
    config, found by name from any of its replicas (``serve_apps.run_queue``)."""
    digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]
    return f"twinloop-run-queue-{digest}"


def app_config(args: dict[str, Any] | AppArgs | None = None) -> AppConfig:
    """Validate the builder's args; ConfigError names the bad key."""
    parsed = args if isinstance(args, AppArgs) else _validated(AppArgs, args or {}, "args")
    unknown = sorted(set(parsed.settings) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"args.settings: unknown setting(s) {unknown}")
    settings = load_settings(**parsed.settings)
    data_dir = Path(settings.data_dir).expanduser()
    if not data_dir.is_absolute():
        data_dir = (Path.home() / data_dir).resolve()
    settings = settings.model_copy(update={"data_dir": data_dir})
    limits_in = {"max_replicates": settings.max_replicates, **parsed.limits}
    limits = _validated(Limits, limits_in, "args.limits")
    sandbox = _validated(SandboxPool, parsed.sandbox, "args.sandbox")
    return AppConfig(settings=settings, limits=limits, sandbox=sandbox)


def _validated(model: type[M], data: Any, where: str) -> M:
    """``data`` as ``model``; a ConfigError names the bad key by its path under ``where``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = invalid_input(exc, data, field=where)
        raise ConfigError(f"{error.field}: {error.message}") from exc
