"""Settings: the seed's variables, a config file, and errors that name the variable."""

from pathlib import Path

import pytest

from twinloop.config import load_settings
from twinloop.errors import ConfigError


def test_defaults_keep_the_seed_meaning() -> None:
    """With nothing set: unpaced, 10 replicates, 10% failure threshold, loopback HTTP."""
    s = load_settings({})
    assert (s.simulation_speed, s.monte_carlo_runs, s.failure_threshold) == (0.0, 10, 0.1)
    assert s.http_host == "127.0.0.1" and s.redis_url is None and s.auto_improve is False


def test_environment_file_and_overrides_stack(tmp_path: Path) -> None:
    """The file is read first, the environment overrides it, explicit overrides win."""
    cfg = tmp_path / "twinloop.env"
    cfg.write_text("# comment\nMONTE_CARLO_RUNS=64\nFAILURE_THRESHOLD=0.05\nAUTO_IMPROVE=true\n")
    s = load_settings({"TWINLOOP_CONFIG": str(cfg), "FAILURE_THRESHOLD": "0.2"}, http_port=9000)
    assert (s.monte_carlo_runs, s.failure_threshold, s.auto_improve, s.http_port) == (
        64,
        0.2,
        True,
        9000,
    )


@pytest.mark.parametrize(
    "env,name",
    [
        ({"MONTE_CARLO_RUNS": "abc"}, "MONTE_CARLO_RUNS"),
        ({"FAILURE_THRESHOLD": "1.5"}, "FAILURE_THRESHOLD"),
        ({"SIMULATION_SPEED": "-1"}, "SIMULATION_SPEED"),
        ({"TWINLOOP_HTTP_PORT": "70000"}, "TWINLOOP_HTTP_PORT"),
        ({"TWINLOOP_REDIS_URL": "http://x"}, "TWINLOOP_REDIS_URL"),
    ],
)
def test_invalid_values_fail_naming_the_variable(env: dict[str, str], name: str) -> None:
    """Each invalid value raises ConfigError whose message starts with the variable."""
    with pytest.raises(ConfigError, match=f"^{name}="):
        load_settings(env)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    """TWINLOOP_CONFIG pointing nowhere is a ConfigError naming TWINLOOP_CONFIG."""
    with pytest.raises(ConfigError, match="TWINLOOP_CONFIG"):
        load_settings({"TWINLOOP_CONFIG": str(tmp_path / "nope.env")})
