"""Sample-ratio mismatch: a chi-square test of observed units against the planned allocation.

A mismatch (p below ``threshold``, 0.001 by default as in most experimentation platforms) means
assignment or logging is broken, so every effect estimate of the experiment is suspect. The
finding is a value (``flagged`` plus an ``srm`` note), never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping

from scipy import special

from twinloop.errors import InvalidInput
from twinloop.stats.results import Note, SrmResult

DEFAULT_THRESHOLD = 0.001


def check_srm(
    observed: Mapping[str, int],
    allocation: Mapping[str, float],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    source: str = "variants.units",
) -> tuple[SrmResult, list[Note]]:
    """Pearson χ² goodness of fit with k - 1 degrees of freedom; notes say what was found.

    ``allocation`` holds planned weights (normalised here); variants must match ``observed``.
    """
    if set(observed) != set(allocation):
        raise InvalidInput(
            "variants", f"units given for {sorted(observed)}, allocation for {sorted(allocation)}"
        )
    names = list(allocation)
    weights = [float(allocation[name]) for name in names]
    for name, weight in zip(names, weights, strict=True):
        if not weight > 0:
            raise InvalidInput(f"variants.{name}.allocation", f"must be > 0, got {weight!r}")
        if observed[name] < 0:
            raise InvalidInput(f"variants.{name}.units", f"must be >= 0, got {observed[name]}")
    total_weight = sum(weights)
    total = sum(int(observed[name]) for name in names)
    expected = {name: total * w / total_weight for name, w in zip(names, weights, strict=True)}
    dof = len(names) - 1
    if total == 0 or dof == 0:
        result = SrmResult(
            observed=dict(observed), expected=expected, statistic=None, dof=dof, p_value=None,
            threshold=threshold, flagged=False, source=source,
        )  # fmt: skip
        why = "no units" if total == 0 else "only one variant"
        return result, [Note(code="srm_not_checked", severity="info", message=why)]
    statistic = sum((observed[name] - expected[name]) ** 2 / expected[name] for name in names)
    p_value = float(special.chdtrc(dof, statistic))
    flagged = p_value < threshold
    result = SrmResult(
        observed=dict(observed), expected=expected, statistic=statistic, dof=dof,
        p_value=p_value, threshold=threshold, flagged=flagged, source=source,
    )  # fmt: skip
    notes = []
    if flagged:
        shares = ", ".join(f"{name} {observed[name] / total:.4f}" for name in names)
        message = f"sample-ratio mismatch (χ² p = {p_value:.3g} < {threshold:g}): shares {shares}"
        notes.append(Note(code="srm", severity="error", message=message))
    return result, notes
