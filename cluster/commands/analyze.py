"""``twinloop analyze``: why did a model lose its A/B test? Decision, causes, impact, hypotheses.

    twinloop analyze RESULT.json [--json]
    twinloop analyze UNITS.parquet --control model-v2 --dimensions segment,channel [--json]

A JSON file holds an A/B result (the seed's ``{"experimentId", "winner", "loser", "metrics"}``
or any richer form, see docs/analyzer.md); a relative ``raw.path`` in it is read next to the
file. A Parquet, CSV or Arrow file holds one row per unit; flags name its columns (defaults: the
``variant`` column, every text column as a dimension, every numeric column but ids and the time
column as a metric). The analysis is kept in the configured store (``--no-store`` to skip), so
patterns across tests are found. ``cluster.jobs.analyze`` reuses these flags.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from cluster.store_factory import open_store
from twinloop.analysis.analyzer import FailureAnalysis, analyze_failure
from twinloop.analysis.inputs import AbTestResult
from twinloop.analysis.report_text import render
from twinloop.config import load_settings
from twinloop.errors import InvalidInput

TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".arrow", ".feather", ".ipc")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("analyze", help="explain why a model lost an A/B test (failure analyzer)")
    p.add_argument("result", type=Path, help="A/B result JSON, or per-unit Parquet/CSV/Arrow")
    add_input_arguments(p)
    p.add_argument("--json", action="store_true", help="print the FailureAnalysis as JSON")
    p.set_defaults(handler=run)


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by the CLI and the job entrypoint."""
    p.add_argument("--experiment-id", default=None, help="default: the JSON's, or the file name")
    p.add_argument("--variant-column", default="variant", help="raw data: variant column")
    p.add_argument(
        "--control", default=None, help="control variant (default: winner/'control'/first)"
    )
    p.add_argument("--winner", default=None, help="the variant that won (default: from data)")
    p.add_argument("--loser", default=None, help="the variant that lost (default: from data)")
    p.add_argument(
        "--dimensions", default=None, help="raw: segment columns a,b,… (default: every text column)"
    )
    p.add_argument(
        "--metrics",
        default=None,
        help="raw: metric columns a,b,… (default: every numeric column but ids and time)",
    )
    p.add_argument(
        "--primary",
        default=None,
        help="deciding metrics a,b,… (default: conversion and revenue kinds)",
    )
    p.add_argument(
        "--time-column",
        default=None,
        help="raw: unit arrival time (default: arrival_day, timestamp, … if present)",
    )
    p.add_argument(
        "--allocation",
        default=None,
        metavar="NAME=SHARE,…",
        help="planned allocation, e.g. A=0.5,B=0.5 (default: equal)",
    )
    p.add_argument("--traffic-per-day", type=float, default=None, help="units per day")
    p.add_argument("--value-per-conversion", type=float, default=None, help="money")
    p.add_argument("--cost-per-call", type=float, default=None, help="money per model call")
    p.add_argument("--environment", default=None, help="sandbox preset for validation plans")
    p.add_argument("--no-store", action="store_true", help="do not keep the analysis")


def run(args: argparse.Namespace) -> int:
    analysis = analyze_args(args)
    print(analysis.model_dump_json(indent=2) if args.json else render(analysis))
    return 0


def analyze_args(args: argparse.Namespace, path: Path | None = None) -> FailureAnalysis:
    """Build the input from the file and flags, analyse it, keep it unless ``--no-store``."""
    source = path or args.result
    data, base_dir = load_input(source, args)
    result = AbTestResult.from_friendly(data)  # the seed's JSON shapes, read as the HTTP API does
    settings = load_settings()
    if args.no_store:
        return analyze_failure(result, settings=settings, base_dir=base_dir)
    with open_store(settings.redis_url, settings.data_dir) as store:
        return analyze_failure(result, settings=settings, store=store, base_dir=base_dir)


def load_input(path: Path, args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """The A/B result as a dict (the file's JSON as written, or describing a per-unit file,
    with the flags applied) and its folder."""
    if not path.is_file():
        raise InvalidInput("result", f"no such file: {str(path)!r}")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                "result", f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})"
            ) from exc
        if not isinstance(data, dict):
            raise InvalidInput("result", f"{path} must hold a JSON object")
    elif any(s.lower() in TABLE_SUFFIXES for s in path.suffixes):
        raw: dict[str, Any] = {"path": str(path.resolve()), "variant_column": args.variant_column}
        for flag, key in (("dimensions", "dimensions"), ("metrics", "metrics")):
            if getattr(args, flag):
                raw[key] = _names(getattr(args, flag))
        if args.time_column:
            raw["time_column"] = args.time_column
        data = {"experiment_id": _safe_id(path.name.split(".")[0]), "raw": raw}
        if args.control:
            data["variants"] = [{"name": args.control, "control": True}]
    else:
        raise InvalidInput(
            "result", f"{path.name}: give a .json result or a Parquet/CSV/Arrow file of units"
        )
    return _apply_flags(data, args), path.resolve().parent


def _apply_flags(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    out = dict(data)
    if args.experiment_id:
        out.pop("experimentId", None)
        out["experiment_id"] = args.experiment_id
    for flag in ("winner", "loser", "environment"):
        if getattr(args, flag):
            out[flag] = getattr(args, flag)
    if args.primary:
        out.pop("primaryMetrics", None)
        out["primary_metrics"] = _names(args.primary)
    if args.allocation:
        shares = _allocation(args.allocation)
        control = args.control
        out["variants"] = [
            {"name": n, "allocation": a, "control": n == control} for n, a in shares.items()
        ]
        if control is None:
            for variant in out["variants"]:
                variant.pop("control")
    business = {
        key: value
        for key, value in (
            ("traffic_per_day", args.traffic_per_day),
            ("value_per_conversion", args.value_per_conversion),
            ("cost_per_call", args.cost_per_call),
        )
        if value is not None
    }
    if business:
        given = [
            out.pop(k, None) for k in ("business", "businessParameters", "business_parameters")
        ]
        current = next((g for g in given if isinstance(g, dict)), {})
        out["business"] = {**current, **business}  # the flags' keys come last: they win
    return out


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _allocation(text: str) -> dict[str, float]:
    shares: dict[str, float] = {}
    for part in _names(text):
        name, sep, value = part.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise InvalidInput("allocation", f"{part!r} is not NAME=SHARE")
    return shares


def _safe_id(stem: str) -> str:
    """A store-safe experiment id from a file name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", stem).strip("-._") or "experiment"
    return cleaned[:128]
