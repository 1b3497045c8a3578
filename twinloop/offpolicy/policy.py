"""A target policy's action probabilities for every logged decision.

The result is an n × K matrix over the *action universe*: the logged actions (in code order),
then any action only the target policy names. Probability on an action the logs never took
cannot be checked by importance weighting; the estimators report it (``unsupported_action``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow.compute as pc
from pydantic import ValidationError

from twinloop.errors import InvalidInput
from twinloop.offpolicy.logs import LoggedDecisions
from twinloop.offpolicy.models import LinearPolicy, PolicyFile, TablePolicy

Floats = npt.NDArray[np.float64]


def read_policy(path: str | Path) -> PolicyFile:
    """A target policy from a JSON file (``{"name": ..., "policy": {"kind": ...}}``)."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput("policy", f"no such file: {str(file)!r}")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput("policy", f"{file.name} is not JSON: {exc}") from None
    return parse_policy(data)


def parse_policy(data: object) -> PolicyFile:
    """Validate a policy document; the error names the offending field (``policy.rows.x``)."""
    try:
        return PolicyFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "policy"
        raise InvalidInput(where, err["msg"]) from None


def policy_actions(policy: TablePolicy | LinearPolicy) -> list[str]:
    """Every action the policy can name, in first-mention order."""
    if isinstance(policy, LinearPolicy):
        return list(policy.actions)
    seen: dict[str, None] = {}
    for distribution in (policy.default or {}, *policy.rows.values()):
        seen.update(dict.fromkeys(distribution))
    return list(seen)


def action_universe(logs: LoggedDecisions, policy: TablePolicy | LinearPolicy) -> tuple[str, ...]:
    extra = [a for a in policy_actions(policy) if a not in logs.actions]
    return (*logs.actions, *extra)


def action_probabilities(
    logs: LoggedDecisions, policy: TablePolicy | LinearPolicy, actions: tuple[str, ...]
) -> Floats:
    """π(a | x_i) for every logged decision i and action a of ``actions`` (rows sum to 1)."""
    if isinstance(policy, LinearPolicy):
        return _linear(logs, policy, actions)
    return _table(logs, policy, actions)


def _as_row(distribution: dict[str, float], actions: tuple[str, ...]) -> Floats:
    row = np.zeros(len(actions))
    for action, p in distribution.items():
        row[actions.index(action)] = p
    return row


def _table(logs: LoggedDecisions, policy: TablePolicy, actions: tuple[str, ...]) -> Floats:
    n = len(logs)
    default = None if policy.default is None else _as_row(policy.default, actions)
    if policy.by is None:
        assert default is not None  # the model refuses a table with neither
        return np.tile(default, (n, 1))
    if policy.by not in logs.table.column_names:
        raise InvalidInput(
            "policy.by", f"column {policy.by!r} not found; columns: {logs.table.column_names}"
        )
    keys = np.asarray(pc.cast(logs.table.column(policy.by), "string").to_pylist(), dtype=object)
    labels, inverse = np.unique(keys.astype(str), return_inverse=True)
    rows = np.empty((labels.shape[0], len(actions)))
    for j, label in enumerate(labels.tolist()):
        if label in policy.rows:
            rows[j] = _as_row(policy.rows[label], actions)
        elif default is not None:
            rows[j] = default
        else:
            raise InvalidInput(
                "policy.rows", f"no row for {policy.by}={label!r} and no default distribution"
            )
    table: Floats = rows[inverse.ravel()]
    return table


def _linear(logs: LoggedDecisions, policy: LinearPolicy, actions: tuple[str, ...]) -> Floats:
    used = sorted({f for w in policy.weights.values() for f in w})
    for feature in used:
        if feature not in logs.feature_names:
            raise InvalidInput(
                f"policy.weights.{feature}",
                f"not a numeric feature of the logs; features: {list(logs.feature_names)}",
            )
    column = {f: logs.feature_names.index(f) for f in used}
    scores = np.zeros((len(logs), len(policy.actions)))
    for k, action in enumerate(policy.actions):
        scores[:, k] = policy.intercepts.get(action, 0.0)
        for feature, w in policy.weights.get(action, {}).items():
            scores[:, k] += w * logs.features[:, column[feature]]
    if policy.temperature == 0.0:
        own = np.zeros_like(scores)
        own[np.arange(len(logs)), np.argmax(scores, axis=1)] = 1.0
    else:
        z = scores / policy.temperature
        z -= z.max(axis=1, keepdims=True)  # stable softmax
        own = np.exp(z)
        own /= own.sum(axis=1, keepdims=True)
    out = np.zeros((len(logs), len(actions)))
    for k, action in enumerate(policy.actions):
        out[:, actions.index(action)] = own[:, k]
    return out
