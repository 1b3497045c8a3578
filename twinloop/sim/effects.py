"""Decision effects: the multiplier a model's decision puts on its target, by confusion cell.

A scored decision (a real predictor's ``score >= threshold`` against the ground-truth intent)
falls in one of four cells — true/false positive (acted), false/true negative (held back) — each
with its own multiplier (``Transaction.decision_effects``). A profile model has no scores and no
intent, only right or wrong, and gets the mean of the two right cells or of the two wrong ones.
Without ``decision_effects`` the cells are the symmetric ``1 ± decision_uplift``, computed by the
very expression the engine always used, so every seeded output stays byte-identical.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from twinloop.sim.environment import Transaction

# Decision kinds: the four confusion cells of a scored decision, then a profile's right / wrong.
TRUE_POSITIVE, FALSE_POSITIVE, FALSE_NEGATIVE, TRUE_NEGATIVE, RIGHT, WRONG = range(6)


def cells(tr: Transaction) -> tuple[float, float, float, float]:
    """(true positive, false positive, false negative, true negative) multipliers."""
    e = tr.decision_effects
    if e is None:
        right, wrong = 1.0 + tr.decision_uplift, 1.0 - tr.decision_uplift
        return right, wrong, wrong, right
    return e.true_positive, e.false_positive, e.false_negative, e.true_negative


def effect_table(tr: Transaction) -> NDArray[np.float64]:
    """The multiplier of each decision kind, indexed by the kind codes above."""
    tp, fp, fn, tn = cells(tr)
    return np.array([tp, fp, fn, tn, (tp + tn) / 2.0, (fp + fn) / 2.0], dtype=np.float64)


def decision_kinds(
    tr: Transaction,
    correct: NDArray[np.bool_],
    intent: NDArray[np.bool_] | None,
    scored: NDArray[np.bool_] | None,
) -> NDArray[np.int8] | None:
    """Each decision's kind: its confusion cell where it was scored against intent, else right or
    wrong; None without ``decision_effects`` (the symmetric rule needs only right or wrong, and
    skipping this keeps the default path as it always was). A scored decision acted iff it was
    right about an intending customer or wrong about one without intent, so a failed call, made
    wrong, lands in the wrong cell of its kind.
    """
    if tr.decision_effects is None:
        return None
    kind = np.where(correct, RIGHT, WRONG).astype(np.int8)
    if intent is not None and scored is not None:
        acted = correct == intent
        cell = np.where(
            acted,
            np.where(intent, TRUE_POSITIVE, FALSE_POSITIVE),
            np.where(intent, FALSE_NEGATIVE, TRUE_NEGATIVE),
        )
        kind = np.where(scored, cell, kind).astype(np.int8)
    return kind


def target_multiplier(
    tr: Transaction, correct: NDArray[np.bool_], kind: NDArray[np.int8] | None
) -> NDArray[np.float64]:
    """What each decision multiplies its target by (``kind`` None: the symmetric rule)."""
    if tr.decision_effects is None or kind is None:
        return np.where(correct, 1.0 + tr.decision_uplift, 1.0 - tr.decision_uplift)
    multiplier: NDArray[np.float64] = effect_table(tr)[kind]
    return multiplier


def scored_multiplier(
    tr: Transaction, acted: NDArray[np.bool_], intent: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """The multiplier of scored decisions, from what they did and the customers' intent."""
    if tr.decision_effects is None:
        return np.where(acted == intent, 1 + tr.decision_uplift, 1 - tr.decision_uplift)
    tp, fp, fn, tn = cells(tr)
    return np.where(acted, np.where(intent, tp, fp), np.where(intent, fn, tn))


def expected_multiplier(
    tr: Transaction, acted: NDArray[np.bool_], p_intent: NDArray[np.float64]
) -> NDArray[np.float64]:
    """E[multiplier] of each decision given P(intent): what a threshold policy is worth."""
    tp, fp, fn, tn = cells(tr)
    act = p_intent * tp + (1.0 - p_intent) * fp
    hold = p_intent * fn + (1.0 - p_intent) * tn
    return np.where(acted, act, hold)
