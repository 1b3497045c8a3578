"""Set up the retraining example: a family whose champion never saw enterprise leads, and the
A/B test it lost, analysed and stored as ``lost-enterprise``.

    python docs/examples/retrain/setup_family.py
"""

from __future__ import annotations

from cluster.store_factory import open_store
from twinloop.analysis.analyzer import analyze_failure
from twinloop.config import load_settings
from twinloop.improve.data import twin_data
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.trainer import train_model
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.sim.domains import environment
from twinloop.sim.lifecycle import simulate
from twinloop.sim.spec import SimulationSpec

FAMILY = "lead-scoring"


def main() -> None:
    settings = load_settings()
    env = environment("sales")
    # The champion's training set left out enterprise leads; the model before it did not.
    champion = train_model(
        LOGISTIC, Recipe(segment_weights={"enterprise": 0.0}), twin_data(env, 8_000, 1), 0
    )
    previous = train_model(LOGISTIC, Recipe(name="previous"), twin_data(env, 3_000, 2), 0)
    with open_store(settings.redis_url, settings.data_dir) as store:
        registry = Registry(store, settings=settings)
        family = ModelFamily(name=FAMILY, primary_kpi="profit", trainer="my_trainer:train")
        registry.create_family(family, replace=True)
        version = registry.register(FAMILY, champion, description="no enterprise rows")
        registry.move_alias(FAMILY, "champion", version.id)
        units = simulate(
            SimulationSpec(
                environment=env.model_copy(update={"initial_customers": 20_000}),
                models=[previous, champion.model_copy(update={"name": "champion"})],
                allocation=[0.5, 0.5],
                days=14,
                seed=5,
                record_units=True,
            )
        ).units
        variants = [
            {"name": "previous", "control": True, "allocation": 0.5},
            {"name": "champion", "allocation": 0.5},
        ]
        result = {"experimentId": "lost-enterprise", "variants": variants, "environment": "sales"}
        analysis = analyze_failure(result, store=store, raw_table=units)
    print(f"family {FAMILY}: champion {version.id}")
    print(f"analysis {analysis.experiment_id}: {analysis.decision.summary}")
    print(f"top root cause: {analysis.root_causes[0].title}")


if __name__ == "__main__":
    main()
