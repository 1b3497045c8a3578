"""Contracts of the root-cause localizer: its settings in, its ranked combinations out."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from twinloop.contract import FrozenModel

Direction = Literal["both", "down", "up"]
NoiseModel = Literal["auto", "relative"]


class LocalizerSettings(FrozenModel):
    """How the localizer searches; the defaults are the ones the benchmark was run with.

    ``significance`` is the false-alarm rate charged to every reported combination (its cost is
    ``log(1/significance)`` nats on top of the cost of naming it among its peers), so smaller
    values report fewer, surer combinations. ``direction`` restricts the search to losses
    (``down``), gains (``up``) or both.
    """

    max_elements: int = Field(default=5, ge=1, le=50)
    max_layer: int | None = Field(
        default=None, ge=1, description="deepest combination size searched; None = all dims"
    )
    significance: float = Field(default=1e-6, gt=0.0, lt=1.0)
    direction: Direction = "both"
    noise: NoiseModel = Field(
        default="auto",
        description=(
            "leaf noise: auto fits a relative floor plus a counting (Poisson or binomial) "
            "component; relative keeps only the floor"
        ),
    )
    prior_units: float = Field(
        default=1.0,
        ge=0.0,
        description="pseudo-denominator shrinking a derived leaf's expected rate to the total's",
    )


class RootCauseElement(FrozenModel):
    """One dimension-value combination that explains part of the deviation, with its numbers.

    ``explanatory_power`` is the share of the total KPI deviation that this combination's own
    deviation would cause if it were the only change (1.0 = all of it; it can exceed 1 or be
    negative when other parts move the other way). ``confidence`` is the posterior probability
    of the combination against "no anomaly there" under the search's description-length prior.
    """

    element: dict[str, str]
    label: str
    layer: int
    n_leaves: int
    actual: float
    expected: float
    deviation: float
    relative_change: float | None
    explanatory_power: float
    deviation_share: float
    evidence: float
    confidence: float
    numerator_actual: float | None = None
    numerator_expected: float | None = None
    denominator_actual: float | None = None
    denominator_expected: float | None = None


class RootCauseResult(FrozenModel):
    """The ranked set of combinations explaining one KPI's deviation, and what produced it.

    ``explained_share`` is the share of the total deviation covered by the union of the
    reported combinations (``actual - expected`` over their leaves, for ratio KPIs the
    counterfactual change of the total ratio). ``noise`` names the leaf noise model,
    ``noise_floor`` its fitted relative floor (sd of the deviation score) and
    ``noise_dispersion`` the multiplier of its counting variance, so a reader can judge how
    surprising the evidence is.
    """

    kind: Literal["additive", "derived"]
    dims: list[str]
    n_leaves: int
    total_actual: float
    total_expected: float
    total_deviation: float
    elements: list[RootCauseElement]
    explained_share: float
    noise: str
    noise_floor: float
    noise_dispersion: float
    settings: LocalizerSettings
    seed: int | None = Field(default=None, description="the search is deterministic; no seed used")
    runtime_s: float
