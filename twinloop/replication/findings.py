"""Data-quality findings: coded, human-readable notes that travel in results instead of exceptions.

A finding says "the data was usable, but here is what we noticed or repaired" (sorted timestamps,
gaps, a constant metric, an unobserved confounder). Input that cannot be used at all raises
``InvalidInput`` instead. Codes are a closed vocabulary so callers can branch on them.
"""

from __future__ import annotations

from typing import Literal

from twinloop.contract import FrozenModel

FindingCode = Literal[
    # KPI history
    "timestamps_unsorted",
    "duplicate_timestamps",
    "gaps",
    "irregular_steps",
    "missing_values",
    "missing_segment",
    "constant_metric",
    "too_short",
    # correlations
    "metric_excluded",
    "values_interpolated",
    # what-if
    "node_not_observed",
    "unobserved_confounder",
    "prior_strength",
    "declared_strength",
    "not_in_graph",
    "log_scale_unavailable",
    "confounder_adjusted",
    "possible_confounder",
    "no_timestamp",
    # synthetic data
    "column_dropped",
    "id_regenerated",
]


class Finding(FrozenModel):
    """One coded observation about the input; ``field`` names where it applies (dotted path)."""

    code: FindingCode
    field: str
    message: str
    count: int | None = None
