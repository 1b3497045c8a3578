"""A family whose champion is blind to the enterprise segment, and the A/B test it lost.

The loop's real-case tests (``tests/unit/test_loop_retrain.py``, the HTTP ones in
``tests/serve/test_improvements.py``) plant it in a Store: the blind champion loses in the twin
against a sound model, the analysis of that test (raw per-unit data, so its segment root cause
names enterprise) is stored, and the loop then retrains, champions and canaries the family.
"""

from __future__ import annotations

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import analyze_failure
from twinloop.improve.data import twin_data
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.trainer import train_model
from twinloop.registry.models import Gates, ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.models import ModelSpec
from twinloop.sim.spec import SimulationSpec
from twinloop.store import Store


def plant(
    store: Store,
    registry: Registry,
    family: str,
    experiment: str,
    *,
    gates: Gates | None = None,
    trainer: str = LOGISTIC,
) -> None:
    """Register ``family`` (when new) with the blind champion as ``v1`` and store the analysis
    of the A/B test it lost (against a sound model) as ``experiment``."""
    env = environment("sales")
    blind = train_model(
        LOGISTIC,
        Recipe(name="champion", segment_weights={"enterprise": 0.0}),
        twin_data(env, 8_000, 1),
        0,
    )
    if family not in [f.name for f in registry.families()]:
        spec = ModelFamily(
            name=family, primary_kpi="revenue", trainer=trainer, gates=gates or Gates()
        )
        registry.create_family(spec)
        registry.move_alias(family, "champion", registry.register(family, blind).id)
    sound = train_model(LOGISTIC, Recipe(name="previous"), twin_data(env, 3_000, 2), 0)
    store_lost_test(store, experiment, previous=sound, champion=blind)


def store_lost_test(
    store: Store, experiment: str, *, previous: ModelSpec, champion: ModelSpec
) -> None:
    """Run ``previous`` (control) against ``champion`` in the sales twin (20,000 customers, 14
    days, per-unit rows) and store the analysis of that test as ``experiment``."""
    units = simulate(
        SimulationSpec(
            environment=environment("sales").model_copy(update={"initial_customers": 20_000}),
            models=[previous.model_copy(update={"name": "previous"}),
                    champion.model_copy(update={"name": "champion"})],
            allocation=[0.5, 0.5], days=14, seed=5, record_units=True,
        )
    ).units  # fmt: skip
    variants = [{"name": "previous", "control": True}, {"name": "champion"}]
    analysis = analyze_failure(
        {"experimentId": experiment, "variants": variants, "environment": "sales"},
        raw_table=units,
    )
    store.put(ANALYSES, analysis.experiment_id, analysis.model_dump(mode="json"))
