"""Settings: the seed's knobs plus where things live, from the environment or a file.

Variables keep the seed's names (``SIMULATION_SPEED``, ``MONTE_CARLO_RUNS``, ``FAILURE_THRESHOLD``,
``AUTO_IMPROVE``); the rest are prefixed ``TWINLOOP_``. A file named by ``TWINLOOP_CONFIG``
(``KEY=value`` lines, dotenv style) is read first; real environment variables override it.
Invalid values raise :class:`ConfigError` naming the variable, so a bad deployment fails at start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from twinloop.errors import ConfigError


class Settings(BaseSettings):
    """Every runtime setting of twinloop; see docs/configuration.md."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    simulation_speed: float = Field(
        default=0.0,
        ge=0.0,
        validation_alias=AliasChoices("SIMULATION_SPEED", "simulation_speed"),
        description="Pacing factor: simulated seconds per wall-clock second (0 = unpaced).",
    )
    monte_carlo_runs: int = Field(
        default=10,
        ge=2,
        le=100_000,
        validation_alias=AliasChoices("MONTE_CARLO_RUNS", "monte_carlo_runs"),
        description="Default number of Monte Carlo replicates in the sandbox.",
    )
    failure_threshold: float = Field(
        default=0.1,
        gt=0.0,
        lt=1.0,
        validation_alias=AliasChoices("FAILURE_THRESHOLD", "failure_threshold"),
        description="Relative loss on a metric that counts as a failure (0.1 = 10%).",
    )
    auto_improve: bool = Field(
        default=False,
        validation_alias=AliasChoices("AUTO_IMPROVE", "auto_improve"),
        description="Phase 2: start the improvement loop automatically after an analysis.",
    )
    http_host: str = Field(
        default="127.0.0.1",
        validation_alias=AliasChoices("TWINLOOP_HTTP_HOST", "http_host"),
        description="Interface Ray Serve's HTTP proxy binds to.",
    )
    http_port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("TWINLOOP_HTTP_PORT", "http_port"),
        description="Ray Serve HTTP port carrying every route.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TWINLOOP_REDIS_URL", "redis_url"),
        description="Redis URL for the shared store; unset = embedded SQLite store.",
    )
    data_dir: Path = Field(
        default=Path("./twinloop-data"),
        validation_alias=AliasChoices("TWINLOOP_DATA_DIR", "data_dir"),
        description="Folder for the embedded store, job outputs and reports.",
    )
    ray_address: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TWINLOOP_RAY_ADDRESS", "ray_address"),
        description="Ray cluster to join ('auto' or host:port); unset = start a local Ray.",
    )
    api_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TWINLOOP_API_TOKEN", "api_token"),
        description="Bearer token required on mutating HTTP routes; unset = no auth.",
    )
    max_replicates: int = Field(
        default=10_000,
        ge=1,
        validation_alias=AliasChoices("TWINLOOP_MAX_REPLICATES", "max_replicates"),
        description="Upper bound on Monte Carlo replicates one request may ask for.",
    )

    max_artifact_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        le=2**31,
        validation_alias=AliasChoices("TWINLOOP_MAX_ARTIFACT_BYTES", "max_artifact_bytes"),
        description="Largest model artifact (ONNX file) the registry accepts, in bytes.",
    )

    cpu_hour_price: float = Field(
        default=0.05,
        ge=0.0,
        validation_alias=AliasChoices("TWINLOOP_CPU_HOUR_PRICE", "cpu_hour_price"),
        description="Money per CPU-hour in improvement plans (an assumption the plan names).",
    )
    labelled_row_price: float = Field(
        default=0.02,
        ge=0.0,
        validation_alias=AliasChoices("TWINLOOP_LABELLED_ROW_PRICE", "labelled_row_price"),
        description="Money per labelled training row in improvement plans.",
    )
    rollout_cost: float = Field(
        default=500.0,
        ge=0.0,
        validation_alias=AliasChoices("TWINLOOP_ROLLOUT_COST", "rollout_cost"),
        description="Money per rollout of any change (confirmation, canary, review) in plans.",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


_ENV_NAMES = {
    name: str(field.validation_alias.choices[0])  # type: ignore[union-attr]
    for name, field in Settings.model_fields.items()
}


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise ConfigError(f"TWINLOOP_CONFIG: no such file {str(path)!r}")
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"TWINLOOP_CONFIG: line {number} of {path} is not KEY=value")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from a config file, the environment and explicit overrides (in that order).

    Raises ConfigError naming the variable when a value is invalid.
    """
    env = dict(os.environ if environ is None else environ)
    merged: dict[str, Any] = {}
    config_file = env.get("TWINLOOP_CONFIG")
    if config_file:
        merged.update(_read_env_file(Path(config_file)))
    merged.update({k: v for k, v in env.items() if k in _ENV_NAMES.values()})
    merged.update({_ENV_NAMES[k]: v for k, v in overrides.items() if v is not None})
    try:
        # _env_file=None and an explicit dict: no hidden reads of the process environment.
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][0] if first["loc"] else "?"
        name = _ENV_NAMES.get(str(loc), str(loc))
        raise ConfigError(f"{name}={merged.get(name, '')!r} is invalid: {first['msg']}") from exc
