"""The main job's reference scenario: a calibrated sales twin, a champion and a flawed challenger.

Everything here is deterministic from one seed. The twin is the ``sales`` preset calibrated to
the shipped KPI history (``twinloop/data/sales_kpi_history.csv``); ``model-v2`` and ``model-v3``
are real predictors (the reference logistic model) trained on data the twin generates from its
ground truth. The planted flaw, which the analyzer is never told about: ``model-v3`` was trained
with no enterprise customers at all — the enterprise segment has its own truth weights and an
8× order value, so v3 is worse than chance exactly where it costs most — and it is 2.5× slower
per call. ``small`` shrinks everything but the A/B test itself so the story runs in a test.
"""

from __future__ import annotations

from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.data import SALES_KPI_HISTORY
from twinloop.improve.retrain import RetrainConfig, train_variant
from twinloop.replication.calibration.calibrate import calibrate
from twinloop.replication.calibration.models import CalibrationResult, CalibrationSettings
from twinloop.replication.history import read_history
from twinloop.replication.replicates import Evaluate
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import PredictorModel

CHAMPION = "model-v2"
CHALLENGER = "model-v3"
PLANTED_SEGMENT = "enterprise"


class DemoScenario(FrozenModel):
    """Sizes and seeds of one demo run (units in the field descriptions)."""

    seed: int = Field(default=1, ge=0, lt=2**63)
    small: bool = False
    customers: int = Field(default=50_000, ge=100, description="customers at day 0 of the A/B")
    days: float = Field(default=30.0, gt=0.0, le=365.0, description="A/B test length (days)")
    allocation: tuple[float, float] = Field(default=(0.5, 0.5), description="v2, v3 share")
    ab_replicates: int = Field(
        default=8, ge=2, le=1000, description="Monte Carlo runs of the A/B (trajectory bands)"
    )
    training_rows: int = Field(default=20_000, ge=500, description="rows per model's training")
    calibration: CalibrationSettings = Field(
        default_factory=lambda: CalibrationSettings(
            sensitivity_grid=(0.0, 2.0, 4.0, 6.0, 8.0),
            fit_replicates=1,
            eval_replicates=3,
            fit_population=20_000,
        )
    )
    what_if_replicates: int = Field(default=8, ge=2, le=1000, description="sim what-if runs")
    validate_top: int = Field(default=3, ge=1, le=10, description="hypotheses validated")
    validation_customers: int = Field(default=10_000, ge=100, description="per universe")
    validation_days: float = Field(default=30.0, gt=0.0, le=365.0)
    validation_replicates: int = Field(default=20, ge=2, le=1000, description="paired replicates")
    v3_latency_p50_ms: float = Field(default=250.0, gt=0.0, description="v3's slower calls")
    v3_latency_p95_ms: float = Field(default=600.0, gt=0.0)


def reference_scenario(*, small: bool = False, seed: int = 1) -> DemoScenario:
    """The shipped scenario; ``small`` is the reduced size the test suite runs."""
    if not small:
        return DemoScenario(seed=seed)
    return DemoScenario(
        seed=seed,
        small=True,
        # The A/B keeps its full size: below ~50,000 customers × 30 days the conversion loss
        # (about -10%) is too often not significant after correction, and the chain stops at
        # satisfaction. Everything around it (calibration, reruns, validation) shrinks.
        ab_replicates=3,
        training_rows=8_000,
        calibration=CalibrationSettings(
            sensitivity_grid=(0.0, 3.0, 6.0),
            fit_replicates=1,
            eval_replicates=3,
            fit_population=8_000,
            correction_rounds=0,
        ),
        what_if_replicates=4,
        validate_top=3,
        validation_customers=3_000,
        validation_days=21.0,
        validation_replicates=6,
    )


def calibrated_twin(
    scenario: DemoScenario, evaluate: Evaluate | None = None
) -> tuple[BusinessEnvironment, CalibrationResult]:
    """The sales twin fitted to the shipped KPI history, sized to the scenario."""
    history = read_history(SALES_KPI_HISTORY)
    settings = scenario.calibration.model_copy(update={"seed": scenario.seed})
    result = calibrate(history, settings, evaluate=evaluate)
    env = result.environment.model_copy(update={"initial_customers": scenario.customers})
    return env, result


def champion_config(scenario: DemoScenario) -> RetrainConfig:
    """model-v2: trained on the natural segment mix, fast (p50 100 ms)."""
    return RetrainConfig(
        name=CHAMPION,
        training_rows=scenario.training_rows,
        training_seed=scenario.seed,
        latency_p50_ms=100.0,
        latency_p95_ms=220.0,
    )


def challenger_config(scenario: DemoScenario) -> RetrainConfig:
    """model-v3: the planted flaw — no enterprise rows in training, and slower per call."""
    return RetrainConfig(
        name=CHALLENGER,
        training_rows=scenario.training_rows,
        training_seed=scenario.seed + 1,
        segment_weights={PLANTED_SEGMENT: 0.0},
        latency_p50_ms=scenario.v3_latency_p50_ms,
        latency_p95_ms=scenario.v3_latency_p95_ms,
    )


def retrained_challenger_config(scenario: DemoScenario) -> RetrainConfig:
    """The obvious fix to try: v3's recipe and latency, trained on every segment."""
    return challenger_config(scenario).model_copy(
        update={"name": f"{CHALLENGER}-retrained", "segment_weights": {}}
    )


def train_models(
    env: BusinessEnvironment, scenario: DemoScenario
) -> tuple[PredictorModel, PredictorModel]:
    """Train the champion and the flawed challenger on twin data (deterministic)."""
    return (
        train_variant(env, champion_config(scenario)),
        train_variant(env, challenger_config(scenario)),
    )
