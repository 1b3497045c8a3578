"""``twinloop models create|register|list|show|alias``: the model registry from the shell.

The registry lives in the configured store (``TWINLOOP_REDIS_URL``, else the SQLite file in
``TWINLOOP_DATA_DIR``); ONNX files go to its artifact store (≤ 1 MiB in the store, larger ones
under ``TWINLOOP_DATA_DIR/artifacts``, at most ``TWINLOOP_MAX_ARTIFACT_BYTES``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from cluster.store_factory import open_store
from twinloop.config import load_settings
from twinloop.contract import invalid_input
from twinloop.errors import InvalidInput
from twinloop.registry.models import ALIASES, Lineage, ModelFamily, ModelVersion
from twinloop.registry.registry import UNSET, Registry
from twinloop.sim.models import MODEL_TYPE_ERRORS, ModelSpec, OnnxModel
from twinloop.sim.onnxmodel import sha256_hex


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("models", help="the model registry: families, versions, aliases")
    actions = parser.add_subparsers(dest="models_action", required=True, metavar="ACTION")

    p = actions.add_parser("create", help="create a model family")
    p.add_argument("name")
    p.add_argument("--spec", type=Path, default=None, help="family JSON (flags override)")
    p.add_argument("--description", default=None)
    p.add_argument("--primary-kpi", default=None, help="default revenue")
    p.add_argument("--environment", default=None, help="preset or stored environment id")
    p.add_argument("--trainer", default=None, help="module:function that retrains the family")
    p.add_argument(
        "--guardrail", action="append", default=None, help="KPI=tolerance, e.g. cost=0.05"
    )
    p.add_argument("--segment-tolerance", type=float, default=None)
    p.add_argument("--primary-prob", type=float, default=None, help="P(better) gate, default 0.95")
    p.add_argument("--require", action="append", default=None, help="required external gate")
    p.add_argument("--replace", action="store_true", help="overwrite an existing family")
    p.set_defaults(handler=create)

    p = actions.add_parser("register", help="register a new version (model JSON or ONNX file)")
    p.add_argument("family")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", type=Path, help="model JSON (profile or predictor)")
    what.add_argument("--onnx", type=Path, help="ONNX file: features in, P(class 1) out")
    p.add_argument("--latency-p50-ms", type=float, default=None)
    p.add_argument("--latency-p95-ms", type=float, default=None)
    p.add_argument("--cost-per-call", type=float, default=None)
    p.add_argument("--parent", default=None, help="parent version id (lineage)")
    p.add_argument("--recipe", default=None, help="training recipe as JSON (lineage)")
    p.add_argument("--training-data", default=None, help="training-data fingerprint (lineage)")
    p.add_argument("--description", default="")
    p.add_argument("--by", default="user", help="who registers it")
    p.set_defaults(handler=register_version)

    p = actions.add_parser("list", help="list families, or the versions of one family")
    p.add_argument("family", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_)

    p = actions.add_parser("show", help="show a family (with aliases) or one version")
    p.add_argument("family")
    p.add_argument("version", nargs="?")
    p.set_defaults(handler=show)

    p = actions.add_parser("alias", help="show, move or roll back an alias")
    p.add_argument("family")
    p.add_argument("alias", choices=ALIASES)
    p.add_argument("version", nargs="?", help="version to point at; omit to show the history")
    p.add_argument("--expect", default=None, help="move only if it points here now ('none')")
    p.add_argument("--rollback", action="store_true", help="move back to the previous version")
    p.add_argument("--by", default="user")
    p.add_argument("--reason", default="")
    p.set_defaults(handler=alias)


@contextmanager
def open_registry() -> Iterator[Registry]:
    settings = load_settings()
    with open_store(settings.redis_url, settings.data_dir) as store:
        yield Registry(store, settings=settings)


def _parse(model: type[BaseModel], data: dict[str, Any], field: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data, field=field) from exc


def _read_json(path: Path, field: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(field, f"cannot read {str(path)!r}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(field, f"{path} must hold a JSON object")
    return data


def create(args: argparse.Namespace) -> int:
    data = _read_json(args.spec, "spec") if args.spec else {}
    data["name"] = args.name
    for flag, key in (
        ("description", "description"), ("primary_kpi", "primary_kpi"),
        ("environment", "environment"), ("trainer", "trainer"),
    ):  # fmt: skip
        if getattr(args, flag) is not None:
            data[key] = getattr(args, flag)
    if args.guardrail:
        data["guardrails"] = dict(_guardrail(g) for g in args.guardrail)
    gates = dict(data.get("gates", {}))
    for flag, key in (
        ("segment_tolerance", "segment_tolerance"), ("primary_prob", "primary_prob"),
        ("require", "required_external"),
    ):  # fmt: skip
        if getattr(args, flag) is not None:
            gates[key] = getattr(args, flag)
    data["gates"] = gates
    family: ModelFamily = _parse(ModelFamily, data)
    with open_registry() as reg:
        reg.create_family(family, replace=args.replace)
        print(_family_text(reg.describe(family.name)))
    return 0


def _guardrail(text: str) -> tuple[str, float]:
    kpi, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError(text)
        return kpi, float(value)
    except ValueError as exc:
        raise InvalidInput("guardrail", f"{text!r} must be KPI=tolerance") from exc


def _model(args: argparse.Namespace) -> ModelSpec:
    ops = {
        k: getattr(args, k)
        for k in ("latency_p50_ms", "latency_p95_ms", "cost_per_call")
        if getattr(args, k) is not None
    }
    if args.onnx is not None:
        content = Path(args.onnx).read_bytes()
        data: dict[str, Any] = {"type": "onnx", "sha256": sha256_hex(content), **ops}
        onnx: OnnxModel = _parse(OnnxModel, data, "model")
        return onnx.model_copy(update={"content": content})
    data = _read_json(args.model, "model")
    try:
        model: ModelSpec = TypeAdapter(ModelSpec).validate_python(data)
    except ValidationError as exc:
        raise invalid_input(exc, data, field="model", messages=MODEL_TYPE_ERRORS) from exc
    return model.model_copy(update=ops)


def register_version(args: argparse.Namespace) -> int:
    recipe = json.loads(args.recipe) if args.recipe else {}
    lineage: Lineage = _parse(
        Lineage,
        {"parent": args.parent, "recipe": recipe, "training_data": args.training_data},
        "lineage",
    )
    model = _model(args)
    with open_registry() as reg:
        version = reg.register(
            args.family, model, lineage, description=args.description, created_by=args.by
        )
    print(f"registered {version.family}/{version.id}: {_model_text(version)}")
    return 0


def list_(args: argparse.Namespace) -> int:
    with open_registry() as reg:
        if args.family is None:
            families = [reg.describe(f.name) for f in reg.families()]
            if args.json:
                print(json.dumps(families, indent=2))
                return 0
            print(f"{'family':<20} {'versions':>8}  {'champion':<9} {'challenger':<10} environment")
            for f in families:
                a = f["aliases"]
                print(
                    f"{f['name']:<20} {f['versions']:>8}  {a['champion'] or '-':<9} "
                    f"{a['challenger'] or '-':<10} {f['environment']}"
                )
            return 0
        versions = reg.versions(args.family)
        aliases = {v.version: k for k, v in reg.aliases(args.family).items() if v.version}
    if args.json:
        print(json.dumps([v.model_dump(mode="json") for v in versions], indent=2))
        return 0
    print(f"{'version':<8} {'aliases':<11} {'parent':<7} model")
    for v in versions:
        print(
            f"{v.id:<8} {aliases.get(v.id, '-'):<11} {v.lineage.parent or '-':<7} {_model_text(v)}"
        )
    return 0


def show(args: argparse.Namespace) -> int:
    with open_registry() as reg:
        if args.version is None:
            print(_family_text(reg.describe(args.family)))
        else:
            print(reg.version(args.family, args.version).model_dump_json(indent=2))
    return 0


def alias(args: argparse.Namespace) -> int:
    with open_registry() as reg:
        if args.rollback:
            state = reg.rollback_alias(args.family, args.alias, by=args.by, reason=args.reason)
        elif args.version is not None:
            expected: Any = UNSET
            if args.expect is not None:
                expected = None if args.expect.lower() == "none" else args.expect
            state = reg.move_alias(
                args.family, args.alias, args.version, expected=expected, by=args.by,
                reason=args.reason,
            )  # fmt: skip
        else:
            for h in reg.alias_history(args.family, args.alias):
                print(f"#{h.revision} {h.version or '-':<6} by {h.moved_by:<24} {h.reason}")
            return 0
    print(
        f"{args.family} {args.alias}: {state.previous or '-'} -> {state.version or '-'} "
        f"(revision {state.revision}, by {state.moved_by})"
    )
    return 0


def _model_text(v: ModelVersion) -> str:
    m = v.model
    what = {
        "profile": lambda: f"profile accuracy {getattr(m, 'accuracy', 0):.2f}",
        "predictor": lambda: f"predictor {getattr(m, 'import_path', '')}",
        "onnx": lambda: f"onnx sha256 {getattr(m, 'sha256', '')[:12]}…",
    }[m.type]()
    return f"{what}, p95 {m.latency_p95_ms:g} ms, {m.cost_per_call:g}/call"


def _family_text(d: dict[str, Any]) -> str:
    aliases = ", ".join(f"{k}={v or '-'}" for k, v in d["aliases"].items())
    guard = ", ".join(f"{k} ≤{v:.0%} worse" for k, v in d["guardrails"].items())
    g = d["gates"]
    return "\n".join(
        [
            f"{d['name']}: {d['description'] or '(no description)'}",
            f"  environment {d['environment']}; primary KPI {d['primary_kpi']}; "
            f"{d['versions']} version(s)",
            f"  aliases: {aliases}",
            f"  guardrails: {guard or 'none'}; segments ≤{g['segment_tolerance']:.0%} worse "
            f"on {g['segment_kpi']}",
            f"  gates: P(better) ≥ {g['primary_prob']}, P(within tolerance) ≥ "
            f"{g['guardrail_prob']}; external required: {g['required_external'] or 'none'}",
            *([f"  trainer: {d['trainer']}"] if d.get("trainer") else []),
        ]
    )
