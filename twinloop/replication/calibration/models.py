"""The calibration contract: settings in; fitted parameters, Simulation Accuracy and verdict out."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from twinloop.contract import ID_FIELD_PATTERN, FrozenModel
from twinloop.replication.findings import Finding
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelProfile

CalibrationDomain = Literal["sales", "marketing", "customer_success", "analytics"]
Method = Literal[
    "poisson_ml",  # maximum likelihood of the arrival regression
    "moment",  # a ratio of sums (or of squared residuals) over the training window
    "indirect_inference",  # simulated auxiliary statistic matched, common random numbers
    "simulation_corrected",  # moment closed form, then rescaled so the twin reproduces it
    "observed",  # read off the history (first value, call-weighted mean)
]
IssueCode = Literal[
    "holdout_error",  # the twin misses the held-back days by more than its own noise explains
    "holdout_correlation",  # the twin's shape on the held-back days does not follow the history
    "residual_autocorrelation",  # in-sample errors have structure the twin lacks
    "parameter_at_bound",  # a fitted value hit the edge of what the twin can represent
    "weakly_identified",  # the history barely constrains a parameter (note, not a failure)
    "not_in_history",  # a parameter's column is absent; the preset value was kept (note)
]
FitQuality = Literal["good", "poor"]


class CalibrationSettings(FrozenModel):
    """How to fit: the preset to start from, the held-back window, replicates and thresholds."""

    domain: CalibrationDomain = Field(
        default="sales",
        description="Preset whose structure (segments, channels, dynamics) is kept.",
    )
    holdout_days: int = Field(
        default=14, ge=1, le=365, description="Last N days held back for Simulation Accuracy."
    )
    min_train_days: int = Field(
        default=28, ge=14, le=3650, description="Fewest days left for fitting after the holdout."
    )
    fit_yearly: bool = Field(
        default=True, description="Fit the yearly cosine (only with >= 56 training days)."
    )
    sensitivity_grid: tuple[float, ...] = Field(
        default=(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0),
        min_length=3,
        max_length=64,
        description="Candidate satisfaction sensitivities k (unitless) for the simulated fit.",
    )
    fit_replicates: int = Field(
        default=1, ge=1, le=64, description="Seeded runs per candidate (common across candidates)."
    )
    fit_scale: float | None = Field(
        default=None,
        ge=1.0,
        le=100.0,
        description="Population multiplier of fitting runs (rates are scale-free; noise "
        "shrinks); None = enough to simulate fit_population customers.",
    )
    fit_population: int = Field(
        default=60_000,
        ge=1,
        le=50_000_000,
        description="Customers a fitting run simulates at least when fit_scale is None.",
    )
    eval_replicates: int = Field(
        default=4, ge=3, le=256, description="Seeded runs whose mean is compared with the history."
    )
    correction_rounds: int = Field(
        default=1, ge=0, le=5, description="Simulation rescaling rounds of the moment estimates."
    )
    seed: int = Field(default=0, ge=0, lt=2**63)
    max_error_ratio: float = Field(
        default=2.5,
        gt=1.0,
        description="Holdout MAPE over the twin's own replicate MAPE that fails the fit.",
    )
    min_mape: float = Field(
        default=0.08, ge=0.0, description="A holdout MAPE below this never fails the fit."
    )
    max_r_shortfall: float = Field(
        default=0.3,
        gt=0.0,
        le=2.0,
        description="Fail when r falls this far below the r a perfect twin reaches (if >= 0.8).",
    )
    max_residual_autocorrelation: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="Lag-1 autocorrelation of in-sample errors that fails the fit.",
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=ID_FIELD_PATTERN,
        description="Name and store id of the calibrated environment (<preset>-calibrated).",
    )

    @field_validator("sensitivity_grid")
    @classmethod
    def _grid(cls, grid: tuple[float, ...]) -> tuple[float, ...]:
        if any(k < 0 or k != k or k > 50 for k in grid):
            raise ValueError(f"values must be in [0, 50], got {list(grid)}")
        if list(grid) != sorted(set(grid)):
            raise ValueError(f"values must be increasing and distinct, got {list(grid)}")
        return grid


class ParameterEstimate(FrozenModel):
    """One fitted parameter: where it lives, its value, standard error and how it was found."""

    name: str = Field(description="Dotted path in the environment, or model.<field>.")
    value: float
    stderr: float | None = Field(default=None, description="None where no closed form exists.")
    method: Method


class KpiAccuracy(FrozenModel):
    """Simulation Accuracy of one KPI on the held-back days, next to what a perfect twin scores.

    ``expected_r`` / ``expected_mape`` compare each seeded replicate with the mean of the others:
    the score the twin would get if the history were one more of its own runs.
    """

    kpi: str
    pearson_r: float | None = Field(description="None when either series is constant.")
    mape: float = Field(description="Mean absolute percentage error over non-zero observed days.")
    bias: float = Field(description="Σ(simulated − observed) / Σ|observed|.")
    expected_r: float | None
    expected_mape: float
    error_ratio: float = Field(description="mape / expected_mape.")
    residual_autocorrelation: float | None = Field(
        description="Lag-1 autocorrelation of in-sample errors of the KPI's rate (flows only)."
    )
    passed: bool


class FitIssue(FrozenModel):
    """A coded reason behind the verdict; ``severity`` 'poor' makes the fit poor."""

    code: IssueCode
    severity: Literal["poor", "note"]
    field: str
    message: str


class CalibrationResult(FrozenModel):
    """The calibrated twin, how each parameter was fitted, and how well it mirrors the history."""

    seed: int
    settings: CalibrationSettings
    environment: BusinessEnvironment
    model: ModelProfile = Field(description="The production model as the history shows it.")
    parameters: list[ParameterEstimate]
    accuracy: list[KpiAccuracy] = Field(description="Simulation Accuracy per KPI (holdout).")
    mean_pearson_r: float | None = Field(description="Mean r over KPIs where r is defined.")
    mean_mape: float
    fit_quality: FitQuality
    issues: list[FitIssue]
    start: str = Field(description="First day of the history.")
    train_days: int
    holdout_days: int
    lead_in_days: int = Field(
        description="Days the twin runs before the history's first day (twin day 0 is a Monday)."
    )
    simulations: int = Field(description="Twin runs spent on fitting and evaluation.")
    holdout_observed: dict[str, list[float]]
    holdout_simulated: dict[str, list[float]] = Field(description="Mean of the seeded replicates.")
    history_findings: list[Finding]

    def parameter(self, name: str) -> ParameterEstimate:
        """The estimate of one parameter by its dotted name."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)
