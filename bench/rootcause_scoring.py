"""Exact-match scoring of root-cause sets, the protocol of Squeeze, PSqueeze and RiskLoc.

An element is written ``attr=value`` pairs joined by ``&``; a set joins elements with ``;``.
Both sides are put in canonical form (pairs sorted by attribute, duplicates dropped). A predicted
element is a true positive only if it equals a true element exactly — ``a=a4`` against the truth
``a=a4&b=b26`` is one false positive and one false negative. TP, FP and FN are summed over the
cases of a group before F1 = 2·TP / (2·TP + FP + FN) (micro-averaging).
"""

from __future__ import annotations

from collections.abc import Iterable

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput


class CaseScore(FrozenModel):
    """True positives, false positives and false negatives of one case."""

    tp: int
    fp: int
    fn: int


class GroupScore(FrozenModel):
    """Micro-averaged precision, recall and F1 of a group of cases."""

    n_cases: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


def canonical_element(text: str) -> str:
    """``c=c7&a=a4`` → ``a=a4&c=c7``: pairs sorted by attribute, repeated pairs dropped."""
    pairs = {p.strip() for p in text.split("&") if p.strip()}
    if not pairs:
        raise InvalidInput("element", f"empty element in {text!r}")
    parsed = []
    for pair in pairs:
        attr, sep, value = pair.partition("=")
        if not sep or not attr:
            raise InvalidInput("element", f"{pair!r} is not attr=value (in {text!r})")
        parsed.append((attr.strip(), value.strip()))
    return "&".join(f"{a}={v}" for a, v in sorted(parsed))


def parse_set(text: str) -> frozenset[str]:
    """The canonical elements of a ``;``-separated set (an empty string is the empty set)."""
    return frozenset(canonical_element(e) for e in text.split(";") if e.strip())


def score_case(predicted: Iterable[str], truth: Iterable[str] | str) -> CaseScore:
    """Exact-match TP/FP/FN of one case; duplicate predictions count once."""
    truth_set = (
        parse_set(truth)
        if isinstance(truth, str)
        else frozenset(canonical_element(t) for t in truth)
    )
    pred_set = frozenset(canonical_element(p) for p in predicted)
    tp = len(pred_set & truth_set)
    return CaseScore(tp=tp, fp=len(pred_set) - tp, fn=len(truth_set) - tp)


def micro_f1(scores: Iterable[CaseScore]) -> GroupScore:
    """Sum TP, FP, FN over the cases, then precision, recall and F1 (0 when undefined)."""
    items = list(scores)
    tp = sum(s.tp for s in items)
    fp = sum(s.fp for s in items)
    fn = sum(s.fn for s in items)
    return GroupScore(
        n_cases=len(items),
        tp=tp,
        fp=fp,
        fn=fn,
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
        f1=2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0,
    )
