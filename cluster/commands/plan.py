"""``twinloop plan``: the improvement strategy for a stored failure analysis.

    twinloop plan ANALYSIS_ID [--json] [--top 3] [--customers 3000] [--days 14] [--replicates 6]

Loads the analysis (``twinloop analyze`` stored it) from the configured store, validates its top
hypotheses in the sandbox at the given size, ranks the actions by ROI and keeps the plan under
kind ``plans`` by the analysis id. Prices come from ``TWINLOOP_CPU_HOUR_PRICE``,
``TWINLOOP_LABELLED_ROW_PRICE`` and ``TWINLOOP_ROLLOUT_COST`` (docs/strategy.md).
"""

from __future__ import annotations

import argparse
import os

from cluster.store_factory import open_store
from twinloop.config import load_settings
from twinloop.errors import InvalidInput
from twinloop.strategy import PlanSettings, plan_analysis, render_plan
from twinloop.strategy.evidence import ValidationSize


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("plan", help="rank the fixes of a stored failure analysis by ROI")
    p.add_argument("analysis_id", help="experiment id of a stored analysis (twinloop analyze)")
    p.add_argument("--top", type=int, default=3, help="hypotheses validated in the sandbox")
    p.add_argument("--customers", type=int, default=3_000, help="customers per validation run")
    p.add_argument("--days", type=float, default=14.0, help="days per validation run")
    p.add_argument("--replicates", type=int, default=6, help="paired replicates per validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the Plan as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fields = {
        "top": args.top,
        "customers": args.customers,
        "days": args.days,
        "replicates": args.replicates,
        "seed": args.seed,
    }
    try:
        size = ValidationSize.model_validate(fields)
    except ValueError as exc:
        first = exc.errors()[0]  # type: ignore[attr-defined]
        raise InvalidInput(str(first["loc"][0]), first["msg"]) from None
    settings = load_settings()
    config = PlanSettings.from_settings(settings, seed=args.seed, cluster_cpus=os.cpu_count() or 1)
    with open_store(settings.redis_url, settings.data_dir) as store:
        plan = plan_analysis(
            store, args.analysis_id, size=size, settings=config, run_settings=settings
        )
    print(plan.model_dump_json(indent=2) if args.json else render_plan(plan))
    return 0
