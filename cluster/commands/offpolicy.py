"""``twinloop offpolicy``: a new policy's value estimated from logged decisions (IPS, SNIPS, DR)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from twinloop.errors import InvalidInput
from twinloop.offpolicy.estimators import evaluate_policy
from twinloop.offpolicy.logs import read_logs
from twinloop.offpolicy.models import OffPolicyResult, OffPolicySettings
from twinloop.offpolicy.policy import read_policy


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "offpolicy",
        help="estimate a target policy's reward from logged decisions (IPS, SNIPS, DR)",
        description=__doc__,
    )
    p.add_argument("logs", type=Path, help="Parquet: context features, action, propensity, reward")
    p.add_argument("--policy", type=Path, required=True, help="target policy JSON (table/linear)")
    p.add_argument("--action-column", default="action")
    p.add_argument("--propensity-column", default="propensity")
    p.add_argument("--reward-column", default="reward")
    p.add_argument(
        "--features", default=None, help="comma-separated context columns (default: numeric)"
    )
    defaults = OffPolicySettings()
    p.add_argument("--level", type=float, default=defaults.level, help="interval level")
    p.add_argument("--folds", type=int, default=defaults.folds, help="DR cross-fitting folds")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = OffPolicySettings(level=args.level, folds=args.folds, seed=args.seed)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidInput(str(err["loc"][0]), err["msg"]) from None
    policy = read_policy(args.policy)
    features = None if args.features is None else [f for f in args.features.split(",") if f]
    logs = read_logs(
        args.logs,
        action=args.action_column,
        propensity=args.propensity_column,
        reward=args.reward_column,
        features=features,
    )
    result = evaluate_policy(logs, policy.policy, settings, name=policy.name)
    print(result.model_dump_json(indent=2) if args.json else render(result))
    return 0


def render(result: OffPolicyResult) -> str:
    level = f"{result.settings.level:.0%}"
    lines = [
        f"policy {result.policy!r} on {result.n:,} logged decisions "
        f"({len(result.actions)} actions; logged mean reward {result.logged_value:.4g})",
        f"{'estimator':<10} {'value':>10} {'std err':>10}   {level} interval",
    ]
    for e in result.estimates:
        lines.append(
            f"{e.estimator:<10} {e.value:>10.4g} {e.std_error:>10.3g}   "
            f"[{e.lower:.4g}, {e.upper:.4g}]"
        )
    lines.append(
        f"effective sample size {result.effective_sample_size:,.0f} of {result.n:,}; "
        f"largest weight {result.max_weight:.3g}"
    )
    for note in result.notes:
        lines.append(f"note [{note.code}] {note.message}")
    return "\n".join(lines)
