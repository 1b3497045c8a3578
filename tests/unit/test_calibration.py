"""Calibration: a twin-made history is recovered and mirrored, an unfit one is called poor,
bad input is refused with the field named."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from cluster.commands import calibrate as calibrate_command
from twinloop.errors import InvalidInput
from twinloop.replication.calibration.calibrate import calibrate, save_calibration
from twinloop.replication.calibration.fit import (
    OMEGA,
    SegmentMix,
    expected_arrivals,
    fit_arrivals,
    order_value,
)
from twinloop.replication.calibration.models import CalibrationResult, CalibrationSettings
from twinloop.replication.calibration.series import DailyKpis
from twinloop.replication.history import KpiHistory, history_from_arrays, history_from_table
from twinloop.replication.replicates import history_table
from twinloop.sim.check import check_environment
from twinloop.sim.domains import environment
from twinloop.sim.environment import BusinessEnvironment, Shock
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelProfile
from twinloop.sim.spec import SimulationSpec
from twinloop.store import SqliteStore

# Hidden truth: the sales preset with these values changed; a mediocre model, so satisfaction
# falls from 0.75 and the churn hazard's sensitivity to it shows in the history.
TRUE = {
    "acquisition.rate_per_day": 250.0,
    "interaction_probability_per_day": 0.25,
    "transaction.base_conversion": 0.07,
    "transaction.average_order_value": 600.0,
    "transaction.order_value_sigma": 0.5,
    "churn.base_hazard_per_day": 0.01,
    "churn.satisfaction_sensitivity": 4.0,
    "initial_customers": 1500,
}
MODEL = ModelProfile(accuracy=0.6, latency_p50_ms=250.0, latency_p95_ms=700.0)
WEEKLY = np.array(environment("sales").acquisition.weekly)
# Few candidates and replicates keep each calibration to ~9 short runs.
FAST = CalibrationSettings(
    sensitivity_grid=(0, 2, 4, 6, 8), fit_replicates=1, eval_replicates=3, fit_population=20_000
)


def hidden_environment(shocks: list[Shock] | None = None) -> BusinessEnvironment:
    data = environment("sales").model_dump()
    for path, value in TRUE.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    data["shocks"] = [s.model_dump() for s in shocks or []]
    return BusinessEnvironment.model_validate(data)


def twin_history(days: int = 84, seed: int = 1, shocks: list[Shock] | None = None) -> KpiHistory:
    spec = SimulationSpec(
        environment=hidden_environment(shocks), models=[MODEL], days=days, seed=seed
    )
    return history_from_table(history_table(simulate(spec)))


@pytest.fixture(scope="module")
def calibrated() -> CalibrationResult:
    return calibrate(twin_history(), FAST)


def test_hidden_parameters_are_recovered_within_stated_tolerances(
    calibrated: CalibrationResult,
) -> None:
    """Every fitted rate lies within 3 standard errors of the truth, and the errors are small:
    relative SE ≤ 15 % (arrival rate, which shares its signal with the yearly cycle over 70
    days; base hazard, which trades off against k), ≤ 5 % (interaction, conversion, order
    value), SE(k) ≤ 1 and SE(σ) ≤ 0.2;
    weekly multipliers within 0.08; the model profile within 2 %; the start population exact."""
    for name, truth in TRUE.items():
        p = calibrated.parameter(name)
        if p.stderr is None:
            assert p.value == pytest.approx(truth, rel=0.02), name
            continue
        assert abs(p.value - truth) <= 3 * p.stderr, (name, p.value, p.stderr)
        bound = {
            "acquisition.rate_per_day": 0.15 * truth,
            "churn.base_hazard_per_day": 0.15 * truth,
            "churn.satisfaction_sensitivity": 1.0,
            "transaction.order_value_sigma": 0.2,
        }.get(name, 0.05 * truth)
        assert p.stderr <= bound, (name, p.stderr)
    weekly = [calibrated.parameter(f"acquisition.weekly.{d}").value for d in range(7)]
    assert np.allclose(weekly, WEEKLY / WEEKLY.mean(), atol=0.08)
    assert calibrated.model.accuracy == pytest.approx(MODEL.accuracy, rel=0.02)
    assert calibrated.model.latency_p50_ms == pytest.approx(MODEL.latency_p50_ms, rel=0.02)
    assert calibrated.environment.initial_customers == TRUE["initial_customers"]


def test_held_back_window_reaches_r_090_on_kpis_with_signal(calibrated: CalibrationResult) -> None:
    """New arrivals (weekly cycle) and active customers (growth) follow the history: r ≥ 0.9."""
    r = {a.kpi: a.pearson_r for a in calibrated.accuracy}
    for kpi in ("new", "active"):
        assert r[kpi] is not None and r[kpi] >= 0.9, (kpi, r[kpi])
    assert calibrated.fit_quality == "good"
    assert not [i for i in calibrated.issues if i.severity == "poor"]
    assert len(calibrated.holdout_simulated["new"]) == FAST.holdout_days
    assert calibrated.train_days == 84 - FAST.holdout_days


def test_calibrated_environment_passes_the_twin_conformance_check(
    calibrated: CalibrationResult,
) -> None:
    """The stored twin is a valid environment the sandbox can run (Gymnasium-style check)."""
    check_environment(calibrated.environment)
    assert calibrated.environment.name == "sales-b2b-calibrated"


def test_random_walk_history_is_reported_as_a_poor_fit() -> None:
    """Every KPI a geometric random walk: errors are autocorrelated and the holdout is missed."""
    rng = np.random.default_rng(5)
    n = 56

    def walk(level: float, sd: float) -> np.ndarray:
        return level * np.exp(np.cumsum(rng.normal(0.0, sd, n)))

    interactions = np.round(walk(2000, 0.05))
    conversions = np.round(interactions * np.clip(walk(0.07, 0.05), 0.0, 0.5))
    history = history_from_arrays(
        np.arange(n),
        {
            "new": np.round(walk(250, 0.08)),
            "active": np.round(walk(8000, 0.03)),
            "churned": np.round(walk(240, 0.06)),
            "interactions": interactions,
            "conversions": conversions,
            "revenue": conversions * walk(600, 0.05),
        },
    )
    result = calibrate(history, FAST)
    codes = {i.code for i in result.issues if i.severity == "poor"}
    assert result.fit_quality == "poor"
    assert {"residual_autocorrelation", "holdout_error"} <= codes
    assert "not_in_history" in {i.code for i in result.issues}  # no satisfaction column: noted


def test_a_cycle_the_twin_lacks_is_reported_as_a_poor_fit() -> None:
    """Traffic surging 10 days in every 20 (a structure the calibrated twin has no knob for)."""
    shocks = [
        Shock(kind="surge", start_day=s, end_day=s + 10, magnitude=1.6) for s in range(0, 84, 20)
    ]
    result = calibrate(twin_history(shocks=shocks), FAST)
    poor = [i for i in result.issues if i.severity == "poor"]
    assert result.fit_quality == "poor"
    assert any(i.code == "residual_autocorrelation" and i.field == "history.new" for i in poor)


def test_arrival_fit_without_yearly_cycle_equals_the_statsmodels_poisson_glm() -> None:
    """Weekday-only arrivals: our ML fit's λ_t equal statsmodels' GLM fitted means."""
    import statsmodels.api as sm  # slow to import: only this test needs it

    rng = np.random.default_rng(2)
    weekday = np.arange(91) % 7
    new = rng.poisson(200.0 * WEEKLY[weekday] / WEEKLY.mean()).astype(float)
    fit = fit_arrivals(new, weekday0=0, lead_in=0, yearly=False)
    design = np.column_stack([np.ones(91)] + [weekday == d for d in range(1, 7)]).astype(float)
    glm = sm.GLM(new, design, family=sm.families.Poisson()).fit()
    assert np.allclose(expected_arrivals(fit, 91, 0, 0), glm.fittedvalues, rtol=1e-6)
    assert fit.rate.value == pytest.approx(new.mean(), rel=0.01)


def test_yearly_fit_recovers_amplitude_and_peak_with_honest_standard_errors() -> None:
    """Over many simulated years the estimates centre on the truth and their spread matches
    the reported standard error (within 25 %)."""
    rng = np.random.default_rng(3)
    t = np.arange(365)
    truth = 150.0 * (WEEKLY[t % 7] / WEEKLY.mean()) * (1 + 0.2 * np.cos(OMEGA * (t - 100.0)))
    fits = [fit_arrivals(rng.poisson(truth).astype(float), 0, 0, True) for _ in range(80)]
    amplitude = np.array([f.amplitude.value for f in fits])
    peak = np.array([f.peak_day.value for f in fits])
    assert amplitude.mean() == pytest.approx(0.2, abs=0.01)
    assert peak.mean() == pytest.approx(100.0, abs=2.0)
    for values, errors in (
        (amplitude, [f.amplitude.stderr for f in fits]),
        (peak, [f.peak_day.stderr for f in fits]),
    ):
        assert float(np.mean(errors)) == pytest.approx(values.std(ddof=1), rel=0.25)


def test_order_value_sigma_is_the_moment_solution_for_a_lognormal_segment_mix() -> None:
    """Revenue drawn exactly as the twin draws it (segment value × log-normal) gives σ back."""
    rng = np.random.default_rng(4)
    values, probs, sigma, aov = np.array([1.0, 2.5, 8.0]), np.array([0.6, 0.3, 0.1]), 0.6, 500.0
    days = 3000
    conversions = rng.poisson(150, days).astype(float)
    revenue = np.array(
        [
            (
                aov
                * rng.choice(values, int(c), p=probs)
                * np.exp(sigma * rng.standard_normal(int(c)) - sigma**2 / 2)
            ).sum()
            for c in conversions
        ]
    )
    mix = SegmentMix(
        interaction=1.0,
        conversion=1.0,
        value_mean=float(probs @ values),
        value_square=float(probs @ values**2),
        churn=1.0,
    )
    ones = np.ones(days)
    kpis = DailyKpis(
        new=ones,
        active=ones,
        churned=ones,
        interactions=ones,
        conversions=conversions,
        revenue=revenue,
        satisfaction=None,
        model_accuracy=None,
        latency_p50_ms=None,
        latency_p95_ms=None,
        weekday0=0,
        start="0",
    )
    fitted_aov, fitted_sigma = order_value(kpis, mix)
    assert fitted_aov.value == pytest.approx(aov, rel=0.01)
    assert fitted_sigma.value == pytest.approx(sigma, abs=0.05)
    assert fitted_sigma.stderr is not None and fitted_sigma.stderr < 0.05


def test_save_stores_the_environment_and_the_result(
    calibrated: CalibrationResult, tmp_path: Path
) -> None:
    """kind 'environments' holds a BusinessEnvironment; 'calibrations' the whole result."""
    with SqliteStore(tmp_path / "store.sqlite3") as store:
        ident = save_calibration(store, calibrated)
        env = store.get_model("environments", ident, BusinessEnvironment)
        back = store.get_model("calibrations", ident, CalibrationResult)
    assert env == calibrated.environment
    assert back.fit_quality == calibrated.fit_quality


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CalibrationResult]:
    """A 56-day history as CSV, and what calibrate() makes of it in-process (seed 3)."""
    path = tmp_path_factory.mktemp("history") / "h.csv"
    pacsv.write_csv(twin_history(days=56, seed=7).to_table(), path)
    settings = FAST.model_copy(update={"seed": 3})
    return path, calibrate(history_from_table(pacsv.read_csv(path)), settings)


SMALL_OPTIONS = [
    "--domain",
    "sales",
    "--seed",
    "3",
    "--grid",
    "0,2,4,6,8",
    "--eval-replicates",
    "3",
    "--fit-population",
    "20000",
]


def test_cli_json_equals_the_python_result_for_the_same_seed(
    small_file: tuple[Path, CalibrationResult], capsys: pytest.CaptureFixture[str]
) -> None:
    """`twinloop calibrate H.csv --json` prints the result calibrate() returns (deterministic)."""
    path, expected = small_file
    parser = argparse.ArgumentParser(prog="twinloop")
    calibrate_command.register(parser.add_subparsers())
    args = parser.parse_args(["calibrate", str(path), "--json", *SMALL_OPTIONS])
    assert args.handler(args) == 0
    printed = CalibrationResult.model_validate(json.loads(capsys.readouterr().out))
    assert printed == expected


def test_job_writes_the_result_json_and_stores_the_twin(
    small_file: tuple[Path, CalibrationResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`python -m cluster.jobs.calibrate --serial` writes <data>/calibrations/<name>.json."""
    from cluster.jobs import calibrate as job

    monkeypatch.delenv("TWINLOOP_REDIS_URL", raising=False)
    path, expected = small_file
    code = job.main(
        ["--history", str(path), "--serial", "--data-dir", str(tmp_path), *SMALL_OPTIONS]
    )
    assert code == 0
    written = tmp_path / "calibrations" / f"{expected.environment.name}.json"
    assert CalibrationResult.model_validate_json(written.read_text()) == expected
    with SqliteStore(tmp_path / "twinloop.sqlite3") as store:
        stored = store.get_model("environments", expected.environment.name, BusinessEnvironment)
    assert stored == expected.environment
    assert (
        job.main(
            [
                "--history",
                str(path),
                "--serial",
                "--data-dir",
                str(tmp_path),
                "--holdout-days",
                "50",
            ]
        )
        == 2
    )  # too short: refused, one line, exit 2


# ------------------------------------------------------------------------------- bad input


def _columns(days: int = 48) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    inter = rng.poisson(500, days).astype(float)
    conv = rng.binomial(inter.astype(int), 0.05).astype(float)
    return {
        "new": rng.poisson(100, days).astype(float),
        "active": 5000 + rng.normal(0, 50, days).round(),
        "churned": rng.poisson(90, days) + 1.0,
        "interactions": inter,
        "conversions": conv,
        "revenue": conv * 400.0 + 1.0,
    }


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda c: c.pop("revenue"), "history.revenue", "column missing"),
        (lambda c: c.__setitem__("new", np.full(48, 100.0)), "history.new", "constant"),
        (lambda c: c["active"].__setitem__(7, np.nan), "history.active", "row 7"),
        (lambda c: c["churned"].__setitem__(3, -2.0), "history.churned", "negative"),
        (
            lambda c: c["conversions"].__setitem__(5, 1e6),
            "history.conversions",
            "exceeds interactions",
        ),
    ],
)
def test_bad_series_are_refused_naming_the_column(change, field: str, message: str) -> None:
    """Missing column, constant, missing value, negative count, conversions > interactions."""
    columns = _columns()
    change(columns)
    with pytest.raises(InvalidInput, match=message) as err:
        calibrate(history_from_arrays(np.arange(48), columns), FAST)
    assert err.value.field == field


def test_infinite_values_are_refused_naming_the_column() -> None:
    """inf never reaches the fit: the history loader refuses it with the column named."""
    columns = _columns()
    columns["revenue"][2] = math.inf
    with pytest.raises(InvalidInput, match="not finite") as err:
        calibrate(history_from_arrays(np.arange(48), columns), FAST)
    assert err.value.field == "history.revenue"


def test_too_short_for_the_holdout_and_empty_histories_are_refused() -> None:
    """30 rows minus a 14-day holdout leave 16 < 28 training days; no rows at all is refused."""
    columns = {k: v[:30] for k, v in _columns().items()}
    with pytest.raises(InvalidInput, match=r"leave 16 for fitting.*holdout_days") as err:
        calibrate(history_from_arrays(np.arange(30), columns), FAST)
    assert err.value.field == "history"
    with pytest.raises(InvalidInput) as err:
        calibrate(
            history_from_table(
                pa.table(
                    {"timestamp": pa.array([], pa.float64()), "new": pa.array([], pa.float64())}
                )
            ),
            FAST,
        )
    assert err.value.field == "history"


def test_non_daily_and_gapped_histories_are_refused() -> None:
    """Hourly rows, and a daily series with a missing day, name the timestamp column."""
    columns = _columns()
    hourly = np.datetime64("2024-01-01T00") + np.arange(48).astype("timedelta64[h]")
    with pytest.raises(InvalidInput, match="one row per day") as err:
        calibrate(history_from_arrays(hourly, columns), FAST)
    assert err.value.field == "history.timestamp"
    days = np.delete(np.arange(49), 20)
    with pytest.raises(InvalidInput, match="1 days are missing") as err:
        calibrate(history_from_arrays(days, columns), FAST)
    assert err.value.field == "history.timestamp"


def test_a_week_starting_on_wednesday_runs_the_twin_from_the_monday_before() -> None:
    """Dates fix the weekday: a history starting on a Wednesday gets a two-day lead-in."""
    history = twin_history(days=56, seed=2)
    table = history.to_table()
    shifted = pc.add(table.column("timestamp"), pa.scalar(2 * 86_400_000_000, pa.duration("us")))
    moved = history_from_table(table.set_column(0, "timestamp", shifted))
    result = calibrate(moved, FAST)
    assert result.lead_in_days == 2
    assert result.start.startswith("2024-01-03")
