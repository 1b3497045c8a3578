"""Multiple-testing corrections across metrics: Holm (family-wise) and Benjamini–Hochberg (FDR).

Holm (1979) controls the family-wise error rate under any dependence and is uniformly more
powerful than Bonferroni; Benjamini & Hochberg (1995) control the false discovery rate under
independence or positive dependence. Both return adjusted p-values (compare them to alpha),
computed as statsmodels' ``multipletests`` does; ``None`` entries (untested) are left out of the
family and stay ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from twinloop.errors import InvalidInput

Method = Literal["holm", "benjamini_hochberg", "none"]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values: max over j <= i of (m - j + 1)·p(j), capped at 1."""
    p = _checked(p_values)
    m = len(p)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=p.__getitem__)):
        running = max(running, (m - rank) * p[index])
        adjusted[index] = min(running, 1.0)
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH step-up adjusted p-values: min over j >= i of m·p(j)/j, capped at 1."""
    p = _checked(p_values)
    m = len(p)
    adjusted = [0.0] * m
    running = 1.0
    order = sorted(range(m), key=p.__getitem__)
    for rank in range(m - 1, -1, -1):
        index = order[rank]
        running = min(running, p[index] * m / (rank + 1))
        adjusted[index] = running
    return adjusted


def adjust(p_values: Sequence[float | None], method: Method) -> list[float | None]:
    """Adjust the non-None p-values as one family; None stays None."""
    present = [i for i, p in enumerate(p_values) if p is not None]
    values = [float(p) for p in p_values if p is not None]
    if method == "holm":
        adjusted = holm(values)
    elif method == "benjamini_hochberg":
        adjusted = benjamini_hochberg(values)
    elif method == "none":
        adjusted = list(values)
    else:
        raise InvalidInput("correction", f"unknown correction {method!r}")
    result: list[float | None] = [None] * len(p_values)
    for index, value in zip(present, adjusted, strict=True):
        result[index] = value
    return result


def _checked(p_values: Sequence[float]) -> list[float]:
    # Plain Python: the families are a few dozen values, where numpy's call overhead dominates.
    p = [float(v) for v in p_values]
    for index, value in enumerate(p):
        if not 0.0 <= value <= 1.0:
            raise InvalidInput(f"p_values[{index}]", f"must be in [0, 1], got {value!r}")
    return p
