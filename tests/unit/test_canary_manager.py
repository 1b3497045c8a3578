"""The canary lifecycle on a real Store: start, outcomes, promotion, rollback, one decision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twinloop.canary.assignment import CanaryConfig
from twinloop.canary.manager import CanaryManager
from twinloop.canary.outcomes import OutcomeEvent
from twinloop.config import load_settings
from twinloop.errors import InvalidInput, NotFound
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sim.models import ModelProfile
from twinloop.store import SqliteStore


@pytest.fixture
def setup(tmp_path: Path) -> tuple[CanaryManager, list[CanaryConfig]]:
    registry = Registry(
        SqliteStore(tmp_path / "s.sqlite3"), settings=load_settings(data_dir=tmp_path)
    )
    registry.create_family(ModelFamily(name="lead", primary_kpi="conversions", guardrails={}))
    for accuracy in (0.7, 0.8):
        registry.register("lead", ModelProfile(accuracy=accuracy))
    registry.move_alias("lead", "champion", "v1")
    applied: list[CanaryConfig] = []
    return CanaryManager(registry, applied.append), applied


def events(config: CanaryConfig, n: int, rates: dict[str, float], seed: int) -> list[OutcomeEvent]:
    rng = np.random.default_rng(seed)
    units = [f"s{seed}-{i}" for i in range(n)]
    return [
        OutcomeEvent(
            unit_id=u, metrics={"conversions": float(rng.random() < rates[v])}, timestamp=0.0
        )
        for u, v in zip(units, config.versions(units), strict=True)
    ]


def test_a_better_canary_is_promoted_and_the_champion_alias_follows(
    setup: tuple[CanaryManager, list[CanaryConfig]],
) -> None:
    """Outcomes where v2 converts twice as often: promoted once, champion alias → v2, all units
    to v2, and the routers were given that config before anything claimed it."""
    manager, applied = setup
    record = manager.start("lead", "v2", 0.5, {"min_units": 200})
    assert applied[-1] == record.config and record.config.canary == "v2"
    decision = None
    for seed in range(20):
        batch = events(record.config, 1_000, {"v1": 0.05, "v2": 0.10}, seed)
        decision = manager.record_outcomes("lead", batch, f"b{seed}").decision
        if decision is not None:
            break
    assert decision is not None and decision.action == "promote" and decision.by == "monitor"
    assert manager.registry.alias("lead", "champion").version == "v2"
    assert manager.registry.alias("lead", "canary").version is None
    assert applied[-1].champion == "v2" and applied[-1].canary is None
    assert manager.record("lead").status == "promoted"
    assert manager.evaluate("lead") is None  # decided once


def test_rollback_unsets_the_canary_and_a_second_is_refused(
    setup: tuple[CanaryManager, list[CanaryConfig]],
) -> None:
    """A manual rollback sends every unit to the champion and is recorded as the user's."""
    manager, applied = setup
    manager.start("lead", "v2", 0.2)
    ended = manager.rollback("lead")
    assert ended.status == "rolled_back" and ended.config.weight == 0.0
    assert applied[-1].canary is None and applied[-1].champion == "v1"
    decision = manager.decision(ended)
    assert decision is not None and decision.by == "user" and decision.action == "rollback"
    with pytest.raises(InvalidInput, match="no canary to roll back"):
        manager.rollback("lead")


def test_reweighing_keeps_the_generation_and_a_new_canary_starts_a_new_one(
    setup: tuple[CanaryManager, list[CanaryConfig]],
) -> None:
    """Same version: only the weight moves (same salt, same statistics); unknown names 404."""
    manager, _ = setup
    first = manager.start("lead", "v2", 0.05)
    second = manager.start("lead", "v2", 0.2)
    assert (second.config.generation, second.config.salt) == (1, first.config.salt)
    with pytest.raises(NotFound):
        manager.start("lead", "v9", 0.1)
    with pytest.raises(NotFound):
        manager.start("nosuch", "v2", 0.1)
    with pytest.raises(InvalidInput, match="is the champion"):
        manager.start("lead", "v1", 0.1)
    manager.rollback("lead")
    assert manager.start("lead", "v2", 0.1).config.generation == 2
