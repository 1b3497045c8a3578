"""The championship: planted winners win, segment harm and chance winners are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twinloop.championship.hold import KIND, get_decision, hold_championship
from twinloop.championship.planted import null_model
from twinloop.championship.rating import fit
from twinloop.championship.spec import ChampionshipSpec, ExternalGate
from twinloop.championship.tournament import run_tournament
from twinloop.errors import InvalidInput, NotFound
from twinloop.registry.artifacts import ArtifactStore
from twinloop.registry.models import Gates, ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sandbox.executor import SerialExecutor
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.sim.domains import environment
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelProfile, SegmentOverride
from twinloop.store import SqliteStore

FAMILY = ModelFamily(name="lead-scoring", primary_kpi="revenue")


def small_env() -> BusinessEnvironment:
    """The sales twin shrunk: 300 customers, 60 arrivals a day (a replicate takes ~5 ms)."""
    env = environment("sales")
    acquisition = env.acquisition.model_copy(update={"rate_per_day": 60.0})
    return env.model_copy(update={"initial_customers": 300, "acquisition": acquisition})


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    store = SqliteStore(tmp_path / "twinloop.sqlite3")
    reg = Registry(store, ArtifactStore(store, tmp_path, max_bytes=1_000_000))
    reg.create_family(FAMILY)
    reg.register("lead-scoring", ModelProfile(accuracy=0.75))
    reg.move_alias("lead-scoring", "champion", "v1")
    return reg


def spec(**changes: object) -> ChampionshipSpec:
    base = {"family": "lead-scoring", "versions": ["v2"], "replicates": 10, "seed": 1}
    return ChampionshipSpec.model_validate({**base, "customers": 300, "days": 10, **changes})


def test_truly_better_candidate_wins_passes_and_becomes_challenger(registry: Registry) -> None:
    """Planted: higher accuracy everywhere → promote; `challenger` moves; decision stored."""
    registry.register("lead-scoring", ModelProfile(accuracy=0.9))
    decision = hold_championship(registry, spec(), decision_id="champ-better")
    assert decision.verdict == "promote" and decision.winner == "v2"
    assert decision.result.confirmation is not None
    assert all(g.passed for g in decision.result.confirmation.gates)
    assert decision.promotion.moved and registry.alias("lead-scoring", "challenger").version == "v2"
    assert get_decision(registry, "champ-better") == decision
    evidence = registry.version("lead-scoring", "v2").evidence
    assert [(e.kind, e.id) for e in evidence] == [(KIND, "champ-better")]


def test_better_on_average_but_worse_on_one_segment_is_refused_naming_it(
    registry: Registry,
) -> None:
    """Much better on smb and mid-market, much worse on enterprise: refused, segment named."""
    worse_there = {"enterprise": SegmentOverride(accuracy=0.6)}
    registry.register("lead-scoring", ModelProfile(accuracy=0.95, segment_overrides=worse_there))
    decision = hold_championship(registry, spec())
    confirmation = decision.result.confirmation
    assert confirmation is not None and confirmation.primary.prob_challenger_better >= 0.95
    failed = [g.gate for g in confirmation.gates if not g.passed]
    assert failed == ["segment:enterprise"]
    assert decision.verdict == "keep_champion" and not decision.promotion.requested
    assert any("segment:enterprise" in r for r in decision.reasons)
    assert registry.alias("lead-scoring", "challenger").version is None


def test_required_external_gate_must_be_reported_and_pass(registry: Registry) -> None:
    """A family requiring the qa gate refuses without its result, and with a failing one."""
    registry.create_family(
        FAMILY.model_copy(update={"gates": Gates(required_external=["qa"])}), replace=True
    )
    registry.register("lead-scoring", ModelProfile(accuracy=0.9))
    missing = hold_championship(registry, spec(promote=False))
    failing = hold_championship(
        registry, spec(promote=False, external_gates=[ExternalGate(name="qa", passed=False)])
    )
    passing = hold_championship(
        registry, spec(promote=False, external_gates=[ExternalGate(name="qa", passed=True)])
    )
    assert (missing.verdict, failing.verdict, passing.verdict) == (
        "keep_champion",
        "keep_champion",
        "promote",
    )
    assert "required but no result" in " ".join(missing.reasons)
    assert not passing.promotion.requested  # promote=False: decided, alias untouched


def test_a_concurrent_promotion_is_recorded_as_a_conflict(registry: Registry) -> None:
    """`challenger` moved by someone else mid-run: the decision keeps the conflict, no overwrite."""
    registry.register("lead-scoring", ModelProfile(accuracy=0.9))
    registry.register("lead-scoring", ModelProfile(accuracy=0.8))
    moved: list[bool] = []

    def meddle(done: int, planned: int) -> None:
        if not moved:
            registry.move_alias("lead-scoring", "challenger", "v3", by="someone-else")
            moved.append(True)

    decision = hold_championship(registry, spec(), progress=meddle)
    assert decision.verdict == "promote" and not decision.promotion.moved
    assert "points at v3" in (decision.promotion.error or "")
    assert registry.alias("lead-scoring", "challenger").version == "v3"
    assert registry.store.get(KIND, decision.id).doc["promotion"]["error"]


def test_bad_requests_name_the_problem(registry: Registry) -> None:
    """Unknown family or version → NotFound; the champion as a candidate → InvalidInput."""
    with pytest.raises(NotFound, match="model version 'lead-scoring/v7'"):
        hold_championship(registry, spec(versions=["v7"]))
    with pytest.raises(NotFound, match="model family 'other'"):
        hold_championship(registry, spec(family="other"))
    with pytest.raises(InvalidInput, match="v1 is the champion"):
        hold_championship(registry, spec(versions=["v1"]))
    assert registry.store.query(KIND) == []


def test_exact_copy_of_the_champion_never_passes_over_100_seeds() -> None:
    """Identical models tie on every common-random-number replicate: P(better) is ½, never 0.95."""
    env, champion = small_env(), ModelProfile(name="champion", accuracy=0.8)
    copy = champion.model_copy(update={"name": "copy"})
    passes = 0
    for seed in range(100):
        s = spec(seed=seed, replicates=4, days=4)
        result = run_tournament(s, FAMILY, env, [champion, copy])
        assert result.round_robin[0].primary.prob_challenger_better == 0.5
        passes += result.verdict == "promote"
    assert passes == 0


def test_null_candidate_passes_at_most_5_percent_of_100_seeds() -> None:
    """Equal in expectation but deciding differently: false passes ≤ 5% over 100 seeds."""
    env = small_env()
    models = [null_model(env, "champion", salt=0), null_model(env, "null", salt=1)]
    promoted = 0
    for seed in range(100):
        result = run_tournament(spec(seed=seed, replicates=5, days=4), FAMILY, env, models)
        promoted += result.verdict == "promote"
    print(f"null candidate promoted in {promoted}/100 seeds")
    assert promoted <= 5


def test_winners_curse_confirmation_refuses_the_lucky_best() -> None:
    """20 nulls: the best round-robin score looks like a win; fresh seeds refuse it ≥ 95%."""
    env = small_env()
    models = [null_model(env, "champion", salt=0)]
    models += [null_model(env, f"null-{i}", salt=i) for i in range(1, 21)]
    best_probs, confirmed, refused, seeds = [], 0, 0, 20
    for seed in range(seeds):
        result = run_tournament(spec(seed=seed, replicates=6, days=4), FAMILY, env, models)
        best_probs.append(max(c.primary.prob_challenger_better for c in result.round_robin))
        confirmed += result.confirmation is not None
        refused += result.verdict == "keep_champion"
    print(f"best round-robin P(better): median {np.median(best_probs):.3f}; "
          f"confirmed {confirmed}/{seeds}, refused {refused}/{seeds}")  # fmt: skip
    assert np.median(best_probs) >= 0.9  # the lucky best looks like a clear win …
    assert confirmed >= seeds // 4  # … often enough to reach the confirmation run …
    assert refused >= 0.95 * seeds  # … where fresh seeds refuse it


def test_pairwise_entries_equal_the_sandbox_head_to_head() -> None:
    """A round-robin pair is exactly the CRN head-to-head the sandbox would run for it."""
    env = small_env()
    a, b = ModelProfile(name="a", accuracy=0.7), ModelProfile(name="b", accuracy=0.8)
    result = run_tournament(spec(replicates=5), FAMILY, env, [a, b])
    h2h = run_head_to_head(
        HeadToHeadSpec(environment=env, days=10, seed=1, replicates=5, baseline=b, challenger=a)
    )
    diff = next(d for d in h2h.differences if d.kpi == "revenue")
    pair = result.pairwise[0]
    assert (pair.a, pair.b) == ("a", "b")
    assert pair.difference == pytest.approx(diff.difference, rel=1e-12)
    assert pair.prob_a_better == pytest.approx(diff.prob_challenger_better, rel=1e-12)


def test_result_does_not_depend_on_completion_order() -> None:
    """Shuffled completion order, same fingerprint (the executor-independence the Ray test uses)."""
    env = small_env()
    models = [ModelProfile(name=f"m{i}", accuracy=0.7 + 0.05 * i) for i in range(3)]
    plain = run_tournament(spec(replicates=4), FAMILY, env, models)
    shuffled = run_tournament(
        spec(replicates=4), FAMILY, env, models, executor=SerialExecutor(order_seed=9)
    )
    assert plain.fingerprint() == shuffled.fingerprint()
    assert [r.name for r in sorted(plain.ratings, key=lambda r: r.rank)] == ["m2", "m1", "m0"]


def test_bradley_terry_two_players_is_the_log_odds() -> None:
    """Closed form: with a flat prior, θ₁ − θ₂ = log(w / (n − w))."""
    theta = fit(np.array([[0.0, 7.0], [3.0, 0.0]]), prior_sd=1e6)
    assert theta[0] - theta[1] == pytest.approx(np.log(7 / 3), rel=1e-9)


def test_bradley_terry_recovers_planted_strengths() -> None:
    """Wins drawn from known strengths: the fit recovers them within sampling error."""
    rng = np.random.default_rng(3)
    truth = np.array([0.0, 0.5, -0.5, 1.0, -1.0])
    p = 1.0 / (1.0 + np.exp(-(truth[:, None] - truth[None, :])))
    games = 4000
    upper = np.triu(rng.binomial(games, p), 1).astype(float)
    wins = upper + np.triu(games - upper, 1).T
    theta = fit(wins, prior_sd=1e6)
    np.testing.assert_allclose(theta - theta[0], truth, atol=0.06)
