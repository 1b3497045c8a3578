"""``twinloop preflight --spec SPEC.json``: predict a planned A/B test in the twin and keep it.

The spec is a ``PreflightSpec`` (the body of ``POST /preflight``, snake_case or camelCase at the
top level; ``head_to_head`` is a sandbox compare spec). Prints the prediction as JSON; the
prediction is kept in the Store and scored when the experiment's analysis arrives.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import ValidationError

from cluster.jobs.improve import snake_keys
from cluster.store_factory import open_store
from twinloop.config import load_settings
from twinloop.contract import invalid_input
from twinloop.loop.preflight import PreflightSpec, run_preflight


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("preflight", help="predict a planned A/B test in the twin")
    parser.add_argument("--spec", type=Path, required=True, help="PreflightSpec JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    data = snake_keys(json.loads(args.spec.read_text(encoding="utf-8")))
    try:
        spec = PreflightSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data) from exc
    settings = load_settings()
    with open_store(settings.redis_url, settings.data_dir) as store:
        print(run_preflight(store, spec).model_dump_json(indent=2))
    return 0
