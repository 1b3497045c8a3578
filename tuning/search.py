"""The retraining search on Ray Tune: one trial per recipe, ASHA spending Monte Carlo replicates.

A trial picks its recipe (by name) from the core's ``RetrainSpec``, trains it
(``twinloop.improve.search.train_recipe``) and then reports its running paired gain against the
champion after every batch of replicates, with a checkpoint of the gains so far. ASHA stops weak
recipes after a batch or two; ``FailureConfig`` retries a trial whose worker died (from its
checkpoint: batch b's seeds are fixed, so a retry changes nothing); a trainer that raises ends
only its own trial, and the result names the recipe. ``restore_search`` resumes a search whose
driver died (``Tuner.restore``). The best finished trial is re-trained in the driver and
confirmed on fresh seeds by the core (``assemble``).

ASHA decides asynchronously, so *which* weak trials stop after which batch can depend on the
order trials finish; every reported number is a function of (recipe, seed, batch), and the
best recipe is the best among the trials that reached the last batch. The spec's warm-start
recipes (past winners of the failure's pattern) are Tune's ``points_to_evaluate``: its first
trials, before the grid over the space's draws.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from twinloop.improve.data import TrainingData
from twinloop.improve.recipe import Recipe
from twinloop.improve.search import (
    Paired,
    RetrainResult,
    RetrainSpec,
    assemble,
    batch_seed,
    replicate_gains,
    train_recipe,
    trial_result,
)

EXPERIMENT = "retrain-search"
_STATE = "gains.json"
SPEC_FILE = "twinloop-retrain-spec.json"


def _trial(config: dict[str, Any], spec_json: str, data: TrainingData) -> None:
    """One recipe: train, then a head-to-head batch per iteration, reported with a checkpoint.

    The config holds only the recipe's name (so Tune's reporter shows it); the recipes are a
    function of the spec, which travels through the object store with the data.
    """
    spec = RetrainSpec.model_validate_json(spec_json)
    recipe = next(r for r in spec.recipes() if r.name == config["recipe"])
    model = train_recipe(spec, recipe, data)
    gains: list[float] = []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            gains = json.loads((Path(folder) / _STATE).read_text())["gains"]
    for batch in range(len(gains) // spec.batch_size, spec.max_batches):
        gains += replicate_gains(spec, model, batch_seed(spec.seed, batch), spec.batch_size)
        score = Paired.of(gains)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / _STATE).write_text(json.dumps({"gains": gains}))
            tune.report(
                {
                    "gain": score.gain,
                    "prob_better": score.prob_better,
                    "replicates": len(gains),
                    "gains": list(gains),
                },
                checkpoint=tune.Checkpoint.from_directory(folder),
            )


def _trainable(spec: RetrainSpec, data: TrainingData) -> Any:
    trial = tune.with_parameters(_trial, spec_json=spec.model_dump_json(), data=data)
    return tune.with_resources(trial, {"cpu": 1})


def _scheduler(spec: RetrainSpec) -> ASHAScheduler:
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=spec.max_batches,
        grace_period=1,
        reduction_factor=spec.reduction_factor,
    )


def search_space(spec: RetrainSpec) -> tuple[dict[str, Any], BasicVariantGenerator, int]:
    """(param_space, search_alg, num_samples): the warm-start recipes as Tune's
    ``points_to_evaluate``, run first, then one grid over the space's recipes.

    ``BasicVariantGenerator`` lets each point replace one sample, a point that fixes the grid
    key giving one trial: so ``num_samples`` is the points plus the one sample of the grid.
    """
    warm = [r.name for r in spec.warm_recipes()]
    drawn = [r.name for r in spec.recipes() if r.name not in warm]
    limit = spec.max_concurrent_trials  # the generator's own cap: Tune's ignores a generator
    if not drawn:  # every sample is a warm start: the grid is theirs
        return {"recipe": tune.grid_search(warm)}, BasicVariantGenerator(max_concurrent=limit), 1
    points = [{"recipe": name} for name in warm]
    generator = BasicVariantGenerator(points_to_evaluate=points, max_concurrent=limit)
    return {"recipe": tune.grid_search(drawn)}, generator, len(points) + 1


class _WarmStartOutsideGrid(logging.Filter):
    """Drop Tune's warning that a warm-start point is not a grid value: that is by design (the
    point is its own trial, the grid the drawn recipes), and it read as an error in the demo."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Pre-set value `w")


logging.getLogger("ray.tune.search.variant_generator").addFilter(_WarmStartOutsideGrid())


def _collect(
    spec: RetrainSpec, results: tune.ResultGrid, data: TrainingData, start: float
) -> RetrainResult:
    """Trials in recipe order; errors named with their recipe; the best confirmed by the core."""
    rows = [results[i] for i in range(len(results))]  # ResultGrid is indexed, not typed iterable
    by_name: dict[str, Any] = {(r.config or {})["recipe"]: r for r in rows}
    trials = []
    for recipe in spec.recipes():
        r = by_name.get(recipe.name)
        error = None if r is None or r.error is None else _error_text(r.error, recipe)
        gains = [] if r is None or error is not None else list(r.metrics.get("gains", []))
        finalist = len(gains) >= spec.max_batches * spec.batch_size
        trials.append(trial_result(spec, recipe, gains, error, finalist))
    return assemble(spec, trials, lambda rec: train_recipe(spec, rec, data), start)


def _error_text(error: BaseException, recipe: Recipe) -> str:
    cause: BaseException = error
    while getattr(cause, "cause", None) is not None:  # RayTaskError wraps the trial's error
        cause = cause.cause  # type: ignore[attr-defined]
    text = str(cause).strip().splitlines()
    last = next((line for line in reversed(text) if line.strip()), type(cause).__name__)
    return f"recipe {recipe.name!r}: {last.strip()}"


def search_retraining(
    spec: RetrainSpec,
    data: TrainingData | None = None,
    *,
    storage_path: Path | None = None,
    verbose: int = 0,
) -> RetrainResult:
    """Run the search as Tune trials on the connected Ray cluster; needs ``ray.init`` first.

    With ``storage_path`` the experiment (``<storage_path>/retrain-search``) survives the driver,
    so :func:`restore_search` can resume it.
    """
    start = time.perf_counter()
    data = data if data is not None else spec.data.load(spec.environment)
    with tempfile.TemporaryDirectory(prefix="twinloop-tune-") as tmp:
        folder = Path(storage_path or tmp) / EXPERIMENT
        folder.mkdir(parents=True, exist_ok=True)
        # The spec beside Tune's own state: restore needs it to rebuild the data before Tune runs.
        (folder / SPEC_FILE).write_text(spec.model_dump_json())
        param_space, search_alg, num_samples = search_space(spec)
        tuner = tune.Tuner(
            _trainable(spec, data),
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric="gain",
                mode="max",
                scheduler=_scheduler(spec),
                search_alg=search_alg,
                num_samples=num_samples,
            ),
            run_config=tune.RunConfig(
                name=EXPERIMENT,
                storage_path=str(storage_path or Path(tmp)),
                failure_config=tune.FailureConfig(max_failures=1),
                verbose=verbose,
            ),
        )
        results = tuner.fit()
        return _collect(spec, results, data, start)


def restore_search(path: Path, data: TrainingData | None = None) -> RetrainResult:
    """Resume a search from its experiment folder after its driver died, and finish it."""
    start = time.perf_counter()
    if not tune.Tuner.can_restore(str(path)):
        from twinloop.errors import InvalidInput

        raise InvalidInput("path", f"{str(path)!r} holds no restorable retraining search")
    spec_json = json.loads((Path(path) / SPEC_FILE).read_text())
    spec = RetrainSpec.model_validate(spec_json)
    data = data if data is not None else spec.data.load(spec.environment)
    tuner = tune.Tuner.restore(str(path), trainable=_trainable(spec, data), resume_errored=False)
    return _collect(spec, tuner.fit(), data, start)
