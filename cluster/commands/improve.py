"""``twinloop improve start|show|cancel``: the improvement loop from the command line.

``start`` creates (or finds) the improvement of an analysed experiment and drives it as the
Ray job ``cluster.jobs.improve`` does, one line per stage (in this process; with ``--ray`` on the
cluster's stages, as the job does by default); ``show`` prints the stored
improvement as JSON; ``cancel`` cancels it (no alias is moved afterwards).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cluster.jobs.improve import describe, drive, final_line, load_stages, read_spec
from cluster.store_factory import open_store
from twinloop.config import load_settings
from twinloop.loop import IMPROVEMENTS, Improvement, cancel_improvement


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("improve", help="run the improvement loop for a failed A/B test")
    actions = parser.add_subparsers(dest="improve_action", required=True, metavar="ACTION")
    start = actions.add_parser("start", help="start or resume the improvement of an experiment")
    start.add_argument("--experiment", default=None, help="the analysed experiment id")
    start.add_argument("--spec", type=Path, default=None, help="ImprovementSpec JSON")
    start.add_argument("--family", default=None, help="model family (default: the experiment)")
    start.add_argument("--seed", type=int, default=None, help="root seed")
    start.add_argument("--stages", default=None, help="stage mapping as module:NAME")
    start.add_argument(
        "--ray",
        action="store_true",
        help="retrain on Ray Tune and ask agents on their actors (default: in this process)",
    )
    start.set_defaults(handler=run_start)
    for name, handler in (("show", run_show), ("cancel", run_cancel)):
        p = actions.add_parser(name, help=f"{name} an improvement by id")
        p.add_argument("improvement_id")
        p.set_defaults(handler=handler)


def run_start(args: argparse.Namespace) -> int:
    data = json.loads(args.spec.read_text(encoding="utf-8")) if args.spec else {}
    flags = {"experiment_id": args.experiment, "family": args.family, "seed": args.seed}
    spec = read_spec(
        {**data, **{k: v for k, v in flags.items() if v is not None}, "trigger": "cli"}
    )
    improvement = drive(spec, load_stages(args.stages, in_process=not args.ray))
    print(final_line(improvement))
    return 0


def run_show(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_store(settings.redis_url, settings.data_dir) as store:
        improvement = store.get_model(IMPROVEMENTS, args.improvement_id, Improvement)
    print(improvement.model_dump_json(indent=2))
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_store(settings.redis_url, settings.data_dir) as store:
        print(describe(cancel_improvement(store, args.improvement_id)))
    return 0
