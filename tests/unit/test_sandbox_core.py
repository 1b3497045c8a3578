"""Sandbox core contracts: seeding, mergeable statistics, intervals, determinism, bad input."""

from __future__ import annotations

import itertools
import json
import math
import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats

from twinloop.config import load_settings
from twinloop.errors import InvalidInput, LimitExceeded
from twinloop.sandbox import (
    AbTestSpec,
    EarlyStop,
    GridSpec,
    HeadToHeadSpec,
    SandboxTestSpec,
    Scenario,
    SerialExecutor,
    parse_sandbox_spec,
    run_ab_test,
    run_grid,
    run_head_to_head,
    run_sandbox,
    run_test,
    write_result,
)
from twinloop.sandbox.executor import ExecutorStats
from twinloop.sandbox.intervals import bootstrap_ratio, paired, summarize
from twinloop.sandbox.moments import Moments
from twinloop.sandbox.replicate import ReplicateTask, run_replicate
from twinloop.sandbox.results import SandboxTestResult
from twinloop.sandbox.seeding import replicate_seed, replicate_seeds
from twinloop.sim.models import ModelProfile

SMALL = {"customers": 600, "days": 5}


class SpyExecutor:
    """Records whether anything was submitted (bad input must run nothing)."""

    def __init__(self) -> None:
        self.calls = 0

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        self.calls += 1
        yield from SerialExecutor().map(fn, items)

    def stats(self) -> ExecutorStats:
        return ExecutorStats(executor="spy", workers=1)


# ------------------------------------------------------------------------------- seeding
def test_replicate_seed_depends_only_on_root_seed_and_index() -> None:
    """Replicate i's seed is SeedSequence(seed).spawn(n)[i] whatever n is."""
    ten, three = replicate_seeds(7, 10), replicate_seeds(7, 3)
    assert ten[:3] == three
    assert [replicate_seed(7, i) for i in range(10)] == ten
    assert len(set(ten)) == 10 and all(0 <= s < 2**63 for s in ten)
    assert replicate_seed(7, 2, stream=1) != ten[2]  # the independent stream differs


# ------------------------------------------------------------------------------- moments
def test_moments_merge_in_any_order_bit_identically() -> None:
    """Every permutation and grouping of replicate moments gives identical means and covariances."""
    rng = np.random.default_rng(1)
    rows = rng.lognormal(10, 2, size=(6, 3)) * np.array([1.0, 1e-6, 1e6])
    parts = [Moments.of(r) for r in rows]
    reference = Moments.merge_all(parts, 3)
    for order in itertools.islice(itertools.permutations(parts), 50):
        merged = Moments.merge_all(order, 3)
        assert np.array_equal(merged.mean(), reference.mean())
        assert np.array_equal(merged.covariance(), reference.covariance())
    grouped = Moments.merge_all(parts[:2], 3) + Moments.merge_all(parts[2:], 3)
    assert np.array_equal(grouped.covariance(), reference.covariance())
    assert np.allclose(reference.covariance(), np.cov(rows.T), rtol=1e-12)


def test_t_interval_matches_scipy() -> None:
    """A plain KPI's interval is scipy's Student t interval of the replicate values."""
    x = np.array([3.1, 2.7, 3.9, 3.3, 2.2, 3.0])
    s = summarize(
        "revenue",
        Moments.merge_all(map(Moments.of, x[:, None]), 1),
        direction="higher",
        primary=True,
        confidence=0.95,
    )
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert s.method == "t" and math.isclose(s.lower, lo) and math.isclose(s.upper, hi)
    assert math.isclose(s.relative_half_width or 0, (hi - lo) / 2 / x.mean())


def test_ratio_kpi_delta_method_agrees_with_bootstrap() -> None:
    """Σconversions/Σinteractions: delta-method and bootstrap intervals nearly coincide."""
    rng = np.random.default_rng(2)
    den = rng.poisson(5000, 200).astype(float)
    num = rng.binomial(den.astype(int), 0.07).astype(float)
    moments = Moments.merge_all((Moments.of([a, b]) for a, b in zip(num, den, strict=True)), 2)
    kw: dict[str, Any] = {"direction": "higher", "primary": True, "confidence": 0.95}
    delta = summarize("conversion_rate", moments, **kw)
    boot = bootstrap_ratio("conversion_rate", num, den, np.random.default_rng(3), **kw)
    assert delta.method == "delta" and boot.method == "bootstrap"
    assert math.isclose(delta.mean, num.sum() / den.sum())
    assert math.isclose(delta.half_width, boot.half_width, rel_tol=0.15)


def test_paired_difference_is_the_paired_t_and_reports_the_unpaired_width() -> None:
    """Paired interval = t on differences; unpaired width drops the covariance."""
    rng = np.random.default_rng(4)
    shared = rng.normal(100, 10, 12)
    base, chal = shared + rng.normal(0, 1, 12), shared + 2 + rng.normal(0, 1, 12)
    moments = Moments.merge_all((Moments.of([b, c]) for b, c in zip(base, chal, strict=True)), 2)
    wins = float(np.sum(chal > base))
    d = paired("revenue", moments, wins, direction="higher", primary=True, confidence=0.95)
    diff = chal - base
    lo, hi = stats.t.interval(0.95, 11, loc=diff.mean(), scale=stats.sem(diff))
    assert math.isclose(d.lower, lo) and math.isclose(d.upper, hi)
    welch = stats.ttest_ind(chal, base, equal_var=False).confidence_interval(0.95)
    assert math.isclose(d.unpaired_half_width, (welch.high - welch.low) / 2, rel_tol=1e-9)
    assert d.width_ratio is not None and d.width_ratio > 5
    assert d.win_rate == wins / 12 and d.prob_challenger_better > 0.99


# --------------------------------------------------------------------------- determinism
def _spec(kind: str, **extra: Any) -> Any:
    a, b = ModelProfile(name="a"), ModelProfile(name="b", accuracy=0.9)
    base: dict[str, Any] = {**SMALL, "replicates": 4, "seed": 5, **extra}
    if kind == "test":
        return SandboxTestSpec(**base)
    if kind == "compare":
        return HeadToHeadSpec(baseline=a, challenger=b, **base)
    if kind == "grid":
        return GridSpec(
            scenarios=[Scenario(name="x"), Scenario(name="y", customers=300)], models=[a, b], **base
        )
    return AbTestSpec(variants=[a, b], **base)


@pytest.mark.parametrize("kind", ["test", "compare", "grid", "ab_test"])
def test_completion_order_never_changes_a_result(kind: str) -> None:
    """Shuffled execution gives the same fingerprint and the same replicate table."""
    spec = _spec(kind)
    ordered = run_sandbox(spec)
    shuffled = run_sandbox(spec, executor=SerialExecutor(order_seed=11))
    assert ordered.fingerprint() == shuffled.fingerprint()
    assert ordered.table.equals(shuffled.table)
    assert ordered.replicate_seeds == replicate_seeds(5, 4)


def test_result_round_trips_through_json_and_pickle() -> None:
    """A result (with its Arrow table) survives JSON and pickle with the same fingerprint."""
    result = run_test(_spec("test"))
    back = SandboxTestResult.model_validate_json(result.model_dump_json())
    assert back.fingerprint() == result.fingerprint()
    assert back.table.column("revenue").to_pylist() == result.table.column("revenue").to_pylist()
    assert pickle.loads(pickle.dumps(result)).fingerprint() == result.fingerprint()
    assert json.loads(result.model_dump_json())["table"]["replicate"] == [0, 1, 2, 3]


def test_a_replicate_task_is_picklable_and_pure() -> None:
    """The unit of work shipped to actors round-trips and re-runs identically."""
    spec = _spec("test")
    from twinloop.sandbox.plan import resolve_environment, simulation_spec

    env = resolve_environment("sales", customers=600, step=None)
    task = ReplicateTask(0, 3, replicate_seed(5, 3), simulation_spec(env, [spec.model], days=5))
    again = pickle.loads(pickle.dumps(task))
    assert run_replicate(task).values == run_replicate(again).values


def test_early_stop_adds_batches_until_the_target_or_the_cap() -> None:
    """A loose target stops at the first check; an impossible one runs to the cap."""
    loose = run_test(
        _spec("test", replicates=3, early_stop=EarlyStop(relative_half_width=0.9, max_replicates=9))
    )
    tight = run_test(
        _spec(
            "test",
            replicates=3,
            early_stop=EarlyStop(relative_half_width=1e-6, max_replicates=9, batch_size=4),
        )
    )
    assert (loose.replicates, loose.stop.reason) == (3, "target_reached")
    assert (tight.replicates, tight.stop.reason, tight.stop.checks) == (9, "cap_reached", 3)
    # The first replicates of a longer run are the same replicates.
    assert tight.table.slice(0, 3).equals(loose.table)


def test_write_result_stores_parquet_and_a_summary(tmp_path: Path) -> None:
    """An A/B result becomes replicates.parquet, tests.parquet and summary.json."""
    result = run_ab_test(_spec("ab_test"))
    paths = write_result(result, tmp_path / "run")
    summary = json.loads(paths["summary"].read_text())
    assert summary["fingerprint"] == result.fingerprint() and "table" not in summary
    assert pq.read_table(paths["table"]).equals(result.table)
    assert pq.read_table(paths["tests"]).num_rows == 4 * 2  # replicates × KPIs


def test_grid_is_one_table_with_a_ranking() -> None:
    """Every scenario × model × replicate is a row; each scenario ranks both models."""
    result = run_grid(_spec("grid"))
    assert result.table.num_rows == 2 * 2 * 4
    assert {(r.scenario, r.rank) for r in result.ranking} == {
        ("x", 1),
        ("x", 2),
        ("y", 1),
        ("y", 2),
    }
    assert [r.rank for r in result.overall] == [1, 2]
    assert math.isclose(sum(r.p_best for r in result.ranking if r.scenario == "x"), 1.0)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"environment": "mars"}, "environment"),
        ({"model": {"type": "neural"}}, "model"),
        ({"replicates": 0}, "replicates"),
        ({"replicates": -4}, "replicates"),
        ({"kpis": ["happiness"]}, "kpis"),
        (
            {
                "kind": "ab_test",
                "variants": [{"name": "a"}, {"name": "b"}],
                "allocation": [0.5, 0.6],
            },
            "allocation",
        ),
        (
            {
                "kind": "ab_test",
                "customers": 1,
                "days": 0.001,
                "variants": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
            },
            "variants",
        ),
        (
            {"kind": "ab_test", "variants": [{"name": "a"}, {"name": "b"}], "control": "z"},
            "control",
        ),
        ({"kind": "grid", "models": [{"name": "a"}], "rank_by": "vibes"}, "rank_by"),
    ],
)
def test_bad_specs_name_the_field(data: dict[str, Any], field: str) -> None:
    """Each bad spec is refused with InvalidInput naming the offending field and its value."""
    with pytest.raises(InvalidInput) as caught:
        parse_sandbox_spec(data)
    assert caught.value.field == field


def test_an_unknown_predictor_fails_before_anything_runs() -> None:
    """A model whose import path does not resolve names the field; no replicate is submitted."""
    spy = SpyExecutor()
    spec = HeadToHeadSpec(
        **SMALL,
        baseline=ModelProfile(name="a"),
        challenger={"type": "predictor", "name": "b", "import_path": "no_such_pkg.mod:Model"},
    )
    with pytest.raises(InvalidInput, match="no_such_pkg") as caught:
        run_head_to_head(spec, executor=spy)
    assert caught.value.field == "challenger.import_path" and spy.calls == 0


def test_replicate_caps_come_from_the_settings() -> None:
    """Replicates or an early-stop cap beyond max_replicates are refused before any run."""
    settings = load_settings(environ={}, max_replicates=50)
    spy = SpyExecutor()
    with pytest.raises(LimitExceeded, match="exceeds the limit of 50") as caught:
        run_test(SandboxTestSpec(**SMALL, replicates=51), settings=settings, executor=spy)
    assert caught.value.field == "replicates"
    capped = SandboxTestSpec(
        **SMALL, replicates=5, early_stop=EarlyStop(relative_half_width=0.01, max_replicates=500)
    )
    with pytest.raises(LimitExceeded) as caught:
        run_test(capped, settings=settings, executor=spy)
    assert caught.value.field == "early_stop.max_replicates" and spy.calls == 0


def test_replicates_default_to_monte_carlo_runs() -> None:
    """Without ``replicates`` the run uses MONTE_CARLO_RUNS."""
    settings = load_settings(environ={"MONTE_CARLO_RUNS": "3"})
    result = run_test(SandboxTestSpec(**SMALL), settings=settings)
    assert result.replicates == 3 and result.settings.monte_carlo_runs == 3
