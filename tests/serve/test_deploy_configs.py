"""The deployment artifacts are valid for the tools that read them, typos included.

``serve_config.yaml`` goes through Ray Serve's own ``ServeDeploySchema`` plus a walk that refuses
keys the schema does not know (Ray accepts them silently); ``ray_cluster.yaml`` — and its
commented cloud variant — through the cluster launcher's JSON schema shipped in the wheel.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

pytestmark = pytest.mark.serve

ROOT = Path(__file__).resolve().parents[2]
SERVE_CONFIG = ROOT / "serve_apps" / "serve_config.yaml"
CLUSTER_CONFIG = ROOT / "ray_cluster.yaml"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic model classes inside an annotation (Optional, list, Union, …)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def unknown_keys(data: Any, model: type[BaseModel], path: str = "") -> Iterator[str]:
    """Dotted paths of keys in ``data`` that ``model`` (recursively) does not declare."""
    fields = {}
    for name, info in model.model_fields.items():
        fields[name] = info
        if info.alias:
            fields[info.alias] = info
    for key, value in data.items():
        where = f"{path}{key}"
        if key not in fields:
            yield where
            continue
        models = _models_in(fields[key].annotation)
        if not models:
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, dict):
                suffix = f"[{i}]." if isinstance(value, list) else "."
                yield from unknown_keys(item, models[0], where + suffix)


def _serve_config() -> dict[str, Any]:
    return yaml.safe_load(SERVE_CONFIG.read_text())


def test_serve_config_passes_rays_schema_with_no_unknown_keys() -> None:
    """ServeDeploySchema accepts the file and every key is one Ray knows."""
    from ray.serve.schema import ServeDeploySchema

    data = _serve_config()
    ServeDeploySchema.model_validate(data)
    assert list(unknown_keys(data, ServeDeploySchema)) == []


def test_unknown_key_check_catches_a_typo() -> None:
    """num_replica (for num_replicas) and a misspelt autoscaling knob are both reported."""
    from ray.serve.schema import ServeDeploySchema

    data = _serve_config()
    data["applications"][0]["deployments"][0]["num_replica"] = 2
    data["applications"][0]["deployments"][1]["autoscaling_config"]["max_replica"] = 3
    ServeDeploySchema.model_validate(data)  # Ray itself does not mind
    assert list(unknown_keys(data, ServeDeploySchema)) == [
        "applications[0].deployments[0].num_replica",
        "applications[0].deployments[1].autoscaling_config.max_replica",
    ]


def test_serve_config_binds_loopback_and_matches_the_app() -> None:
    """Loopback only; the deployments named are the app's; args build a valid AppConfig."""
    from ray.serve.config import AutoscalingConfig

    from serve_apps.app import APP_NAME, DEPLOYMENTS
    from serve_apps.config import app_config

    data = _serve_config()
    assert data["http_options"]["host"] == "127.0.0.1"
    (app,) = data["applications"]
    assert app["name"] == APP_NAME and app["import_path"] == "serve_apps.app:build_app"
    assert {d["name"] for d in app["deployments"]} == {d.name for d in DEPLOYMENTS}
    for deployment in app["deployments"]:
        if "autoscaling_config" in deployment:
            AutoscalingConfig.model_validate(deployment["autoscaling_config"])
    config = app_config(app["args"])
    assert config.limits.max_timeout_s < data["http_options"]["request_timeout_s"]
    assert config.settings.data_dir.is_absolute()


def _launcher_schema() -> dict[str, Any]:
    import ray.autoscaler

    path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _cloud_variant() -> dict[str, Any]:
    """The commented block between the CLOUD VARIANT markers, uncommented."""
    text = CLUSTER_CONFIG.read_text()
    block = re.search(r"# >>> CLOUD VARIANT.*?\n(.*?)# <<< CLOUD VARIANT", text, re.S)
    assert block, "ray_cluster.yaml lost its commented cloud variant"
    lines = [re.sub(r"^# ?", "", line) for line in block.group(1).splitlines()]
    data: dict[str, Any] = yaml.safe_load("\n".join(lines))
    return data


def test_cluster_config_passes_the_launcher_schema() -> None:
    """ray_cluster.yaml validates against ray/autoscaler/ray-schema.json (draft-07)."""
    data = yaml.safe_load(CLUSTER_CONFIG.read_text())
    jsonschema.validate(data, _launcher_schema())
    assert data["provider"]["type"] == "local" and data["provider"]["worker_ips"]
    assert "available_node_types" not in data  # Ray generates it for the local provider


def test_cluster_config_is_accepted_by_the_launchers_own_checks() -> None:
    """prepare_config + validate_config (what `ray up` runs first) accept it offline."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    data = yaml.safe_load(CLUSTER_CONFIG.read_text())
    prepared = prepare_config(data)
    validate_config(prepared)
    assert set(prepared["available_node_types"]) >= {"local.cluster.node"}


def test_cluster_config_starts_ray_off_the_redis_port_and_keeps_ports_private() -> None:
    """GCS on 6380 (Redis holds 6379); dashboard on loopback; Serve on loopback."""
    data = yaml.safe_load(CLUSTER_CONFIG.read_text())
    head = " ".join(data["head_start_ray_commands"])
    assert "--port=6380" in head and "--dashboard-host=127.0.0.1" in head
    assert all(":6380" in c for c in data["worker_start_ray_commands"] if "--address" in c)
    assert any("pip install" in c and "twinloop" in c for c in data["setup_commands"])


def test_commented_cloud_variant_passes_the_schema_too() -> None:
    """The AWS variant kept in comments is valid once uncommented."""
    data = _cloud_variant()
    jsonschema.validate(data, _launcher_schema())
    for node_type in data["available_node_types"].values():
        assert {"resources", "node_config"} <= set(node_type)
