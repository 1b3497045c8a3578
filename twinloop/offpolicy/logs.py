"""Logged decisions: context features, the action taken, its logging propensity and the reward.

One row per decision of the logging policy (a randomised test, an epsilon-greedy or softmax
production policy that recorded the probability of the action it took). Every check names the
column and, for a bad value, the first row that has it, so a user can find it in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from twinloop.errors import InvalidInput

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class LoggedDecisions:
    """Checked logs: ``features`` n × d (numeric context), ``action`` codes into ``actions``.

    ``table`` keeps the original columns (a table policy looks its ``by`` column up there).
    """

    table: pa.Table
    feature_names: tuple[str, ...]
    features: Floats
    actions: tuple[str, ...]
    action: Ints
    propensity: Floats
    reward: Floats

    def __len__(self) -> int:
        return int(self.action.shape[0])


def read_logs(
    path: str | Path,
    *,
    action: str = "action",
    propensity: str = "propensity",
    reward: str = "reward",
    features: Sequence[str] | None = None,
) -> LoggedDecisions:
    """Read a Parquet file of logged decisions (see :func:`logged_decisions`)."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput("logs", f"no such file: {str(file)!r}")
    try:
        table = pq.read_table(file)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput("logs", f"cannot read {file.name} as Parquet: {exc}") from exc
    return logged_decisions(
        table, action=action, propensity=propensity, reward=reward, features=features
    )


def logged_decisions(
    table: pa.Table,
    *,
    action: str = "action",
    propensity: str = "propensity",
    reward: str = "reward",
    features: Sequence[str] | None = None,
) -> LoggedDecisions:
    """Check and code an Arrow table of logged decisions.

    ``features`` defaults to every numeric column except the action, propensity and reward.
    Propensities must lie in (0, 1] (a zero-probability action cannot have been logged),
    rewards and features must be finite, and no action may be missing.
    """
    names = table.column_names
    for role, column in (("action", action), ("propensity", propensity), ("reward", reward)):
        if column not in names:
            raise InvalidInput(role, f"column {column!r} not found; columns: {names}")
    if table.num_rows == 0:
        raise InvalidInput("logs", "the table has no rows")
    if features is None:
        reserved = {action, propensity, reward}
        features = [n for n in names if n not in reserved and _numeric(table.schema.field(n))]
    for name in features:
        if name not in names:
            raise InvalidInput(f"features.{name}", f"column not found; columns: {names}")
    actions, codes = _actions(table.column(action), action)
    p = _floats(table, propensity, "propensity")
    bad = np.flatnonzero(~((p > 0.0) & (p <= 1.0)))
    if bad.size:
        row = int(bad[0])
        raise InvalidInput(
            "propensity", f"column {propensity!r} row {row}: {p[row]:g} is not in (0, 1]"
        )
    r = _floats(table, reward, "reward")
    x = (
        np.column_stack([_floats(table, f, f"features.{f}") for f in features])
        if features
        else (np.zeros((table.num_rows, 0)))
    )
    return LoggedDecisions(table, tuple(features), x, actions, codes, p, r)


def _numeric(field: pa.Field) -> bool:
    kind = field.type
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _actions(column: pa.ChunkedArray, name: str) -> tuple[tuple[str, ...], Ints]:
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise InvalidInput("action", f"column {name!r} row {row}: missing action")
    text = np.asarray(pc.cast(column, pa.string()).to_pylist(), dtype=str)
    labels, codes = np.unique(text, return_inverse=True)
    return tuple(str(v) for v in labels), codes.ravel().astype(np.int64)


def _floats(table: pa.Table, name: str, field: str) -> Floats:
    column = table.column(name)
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        raise InvalidInput(field, f"column {name!r} is {kind}, not numeric")
    values = np.asarray(
        pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        row = int(bad[0])
        raise InvalidInput(
            field, f"column {name!r} row {row}: {values[row]} is not a finite number"
        )
    return values
