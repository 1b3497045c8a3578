"""``twinloop championship FAMILY --versions v2 v3``: hold a championship and store the decision.

Runs on an actor pool on Ray (a local Ray unless ``TWINLOOP_RAY_ADDRESS`` names a cluster) or
in-process with ``--serial``; the same spec JSON the Ray job and the HTTP API take can be given
with ``--spec`` (flags override its fields).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cluster.jobs.championship import render, run
from cluster.jobs.sandbox import load_spec_file
from twinloop.championship.spec import parse_championship_spec
from twinloop.errors import InvalidInput


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "championship", help="round robin of versions in the twin; promote the confirmed best"
    )
    p.add_argument("family", nargs="?", help="model family (or in --spec)")
    p.add_argument("--spec", type=Path, default=None, help="ChampionshipSpec JSON")
    p.add_argument("--versions", nargs="+", default=None, help="candidate version ids")
    p.add_argument("--replicates", type=int, default=None, help="round-robin replicates")
    p.add_argument("--confirmation-replicates", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--customers", type=int, default=None, help="shrink the environment")
    p.add_argument("--days", type=float, default=None)
    p.add_argument("--external", action="append", default=None, help="NAME=pass|fail")
    p.add_argument("--no-promote", action="store_true", help="decide, do not move challenger")
    p.add_argument("--serial", action="store_true", help="run in this process, without Ray")
    p.add_argument("--workers", type=int, default=None, help="actor pool size (default: CPUs)")
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per worker actor")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the decision document as JSON")
    p.set_defaults(handler=championship)


def spec_data(args: argparse.Namespace) -> dict[str, Any]:
    """The spec as a dict: the file's fields, then every flag that was given."""
    data: dict[str, Any] = load_spec_file(args.spec) if args.spec is not None else {}
    for flag in (
        "family", "versions", "replicates", "confirmation_replicates", "seed", "customers", "days",
    ):  # fmt: skip
        if getattr(args, flag) is not None:
            data[flag] = getattr(args, flag)
    if args.external:
        data["external_gates"] = [_external(e) for e in args.external]
    if args.no_promote:
        data["promote"] = False
    return data


def _external(text: str) -> dict[str, Any]:
    name, _, result = text.partition("=")
    if result not in ("pass", "fail"):
        raise InvalidInput("external", f"{text!r} must be NAME=pass or NAME=fail")
    return {"name": name, "passed": result == "pass"}


def championship(args: argparse.Namespace) -> int:
    spec = parse_championship_spec(spec_data(args))
    decision = run(
        spec,
        serial=args.serial,
        workers=args.workers,
        num_cpus=args.num_cpus,
        progress=not args.no_progress,
    )
    print(decision.model_dump_json(indent=2) if args.json else render(decision))
    return 0
