"""Write a simulated recommender's logged decisions (Parquet) and print the new policy's truth.

    python docs/examples/offpolicy/make_logs.py /tmp/clicks.parquet

20,000 visits; the production policy shows one of three modules (``sports``, ``news``,
``tech``) — the one its old model prefers with probability 0.7, each other with 0.15 — and logs
that probability. A click's probability depends on the visitor's age, tenure and device. The
new model (``new-ranker.json``) is a softmax over a linear score, ``sports-on-mobile.json`` a
table; because the click model is known here, each policy's true click rate on these visitors
is computed exactly and printed, to compare with the estimates.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ACTIONS = np.array(["news", "sports", "tech"])
N = 20_000


def click_probability(age: np.ndarray, tenure: np.ndarray, mobile: np.ndarray) -> np.ndarray:
    """P(click | visitor, module) for each of the three modules (columns)."""
    young = (age - 40.0) / 12.0
    logits = np.column_stack([
        -1.6 - 0.5 * young + 0.2 * tenure,  # news: older, longer-tenured readers
        -1.2 + 0.6 * young + 0.4 * mobile,  # sports: younger, on mobile
        -1.5 + 0.3 * tenure - 0.3 * mobile,  # tech: long tenure, desktop
    ])  # fmt: skip
    probability: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
    return probability


def new_policy(age: np.ndarray, tenure: np.ndarray, mobile: np.ndarray) -> np.ndarray:
    """The target policy of new-ranker.json: softmax(score / 0.5) per module."""
    scores = np.column_stack([
        -0.5 + 0.03 * age + 0.2 * tenure,
        1.5 - 0.04 * age + 0.4 * mobile,
        -0.3 + 0.3 * tenure - 0.3 * mobile,
    ])  # fmt: skip
    z = scores / 0.5
    weights = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return out


def main(out: Path) -> None:
    rng = np.random.default_rng(np.random.SeedSequence(2026))
    age = rng.uniform(18, 70, N).round()
    tenure = rng.exponential(2.0, N).round(2)
    mobile = (rng.random(N) < 0.6).astype(np.int64)
    preferred = np.where(age < 35, 1, np.where(tenure > 2.5, 2, 0))  # the old model's pick
    propensity_of = np.full((N, 3), 0.15)
    propensity_of[np.arange(N), preferred] = 0.7
    action = (rng.random(N)[:, None] > np.cumsum(propensity_of, axis=1)).sum(axis=1)
    p_click = click_probability(age, tenure, mobile)
    click = rng.random(N) < p_click[np.arange(N), action]
    table = pa.table({
        "age": age,
        "tenure_years": tenure,
        "mobile": mobile,
        "segment": np.where(mobile == 1, "mobile", "desktop"),
        "module": ACTIONS[action],
        "propensity": propensity_of[np.arange(N), action],
        "clicked": click.astype(np.int64),
    })  # fmt: skip
    pq.write_table(table, out)
    ranker = float((new_policy(age, tenure, mobile) * p_click).sum(axis=1).mean())
    table_policy = np.where(mobile == 1, p_click[:, 1], 0.5 * (p_click[:, 0] + p_click[:, 2]))
    print(f"wrote {N:,} logged decisions to {out} (logged click rate {click.mean():.4f})")
    print(f"true click rates: new-ranker {ranker:.4f}, sports-on-mobile {table_policy.mean():.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
