"""``twinloop retrain``: search retraining recipes for a family's failure, confirm, register.

    twinloop retrain --family lead-scoring --analysis analysis.json [--samples 8] [--ray]

``--analysis`` is a FailureAnalysis JSON file or the id of a stored analysis. Without ``--ray``
the search runs in this process (successive halving); with it, on Ray Tune (ASHA, Tune's
progress reporter). The run is kept in the store (kind ``retrain_runs``) and a confirmed
candidate is registered as a new version of the family, its lineage naming the champion.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cluster.store_factory import open_store
from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.config import load_settings
from twinloop.contract import invalid_input
from twinloop.errors import InvalidInput, NotFound
from twinloop.improve.data import TrainingData
from twinloop.improve.pipeline import RetrainRequest, RetrainRun, SearchFn, retrain
from twinloop.improve.search import DataSource, RetrainResult, RetrainSpec
from twinloop.registry.registry import Registry
from twinloop.store import Store


def add_options(p: argparse.ArgumentParser) -> None:
    """Options shared by the command and the job entrypoint."""
    p.add_argument("--family", required=True, help="model family to retrain (registry)")
    p.add_argument(
        "--analysis", required=True, help="FailureAnalysis JSON file, or a stored analysis id"
    )
    p.add_argument("--samples", type=int, default=8, help="recipes to try (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=None, help="labelled Parquet (default: twin rows)")
    p.add_argument("--rows", type=int, default=8_000, help="twin rows when no --data (8000)")
    p.add_argument("--no-register", action="store_true", help="keep the run, register nothing")
    p.add_argument("--ray", action="store_true", help="run the search on Ray Tune (ASHA)")
    p.add_argument("--storage", type=Path, default=None, help="Tune experiment folder (--ray)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("retrain", help="retrain a family after a failure; register the winner")
    add_options(p)
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    p.set_defaults(handler=run)


def request_from(args: argparse.Namespace) -> RetrainRequest:
    data: dict[str, Any] = {"kind": "twin", "rows": args.rows, "seed": args.seed}
    if args.data is not None:
        data = {"kind": "parquet", "path": str(args.data.resolve())}
    try:
        return RetrainRequest(
            family=args.family,
            samples=args.samples,
            seed=args.seed,
            data=DataSource.model_validate(data),
            register_version=not args.no_register,
        )
    except ValidationError as exc:
        raise invalid_input(exc) from exc


def load_analysis(ref: str, store: Store) -> FailureAnalysis:
    """A FailureAnalysis from a JSON file, else from the store by id."""
    path = Path(ref)
    if path.is_file():
        try:
            return FailureAnalysis.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise invalid_input(exc, field="analysis") from exc
    found = store.find(ANALYSES, ref)
    if found is None:
        raise NotFound("analysis", ref)
    return found.to_model(FailureAnalysis)


def tune_search(storage: Path | None, verbose: int) -> SearchFn:
    """The Ray Tune search (imported only when asked for: the CLI starts without Ray)."""

    def search(spec: RetrainSpec, data: TrainingData) -> RetrainResult:
        from actors.sandbox_pool import ensure_ray
        from tuning.search import search_retraining

        ensure_ray(load_settings().ray_address)
        return search_retraining(spec, data, storage_path=storage, verbose=verbose)

    return search


def run_args(args: argparse.Namespace, verbose: int = 1) -> RetrainRun:
    request = request_from(args)
    settings = load_settings()
    with open_store(settings.redis_url, settings.data_dir) as store:
        analysis = load_analysis(args.analysis, store)
        registry = Registry(store, settings=settings)
        if args.ray:
            return retrain(registry, store, request, analysis, tune_search(args.storage, verbose))
        return retrain(registry, store, request, analysis)


def render(run: RetrainRun) -> str:
    """The run as a short table: trials, the best, the confirmation, the registration."""
    res = run.result
    lines = [f"retrain {run.id}: family {run.family}, champion {run.champion}, "
             f"analysis {run.analysis_id}, KPI {res.spec.kpi}"]  # fmt: skip
    lines.append(f"{'recipe':8} {'batches':>7} {'gain':>12} {'P(better)':>9}  note")
    for t in res.trials:
        gain = f"{t.score.gain:+12.4g}" if t.score else f"{'-':>12}"
        prob = f"{t.score.prob_better:9.3f}" if t.score else f"{'-':>9}"
        note = t.error or ("stopped early" if t.stopped_early else "")
        lines.append(f"{t.recipe.name:8} {t.batches:7d} {gain} {prob}  {note}".rstrip())
    lines.append(
        f"replicates: {res.replicates_run} run, {res.replicates_saved} saved by early stopping "
        f"(of {res.replicates_full})"
    )
    if res.best is not None:
        lines.append(f"best: {res.best.recipe.model_dump_json(exclude={'params'})}")
    conf = res.confirmation
    if conf is not None:
        verdict = "confirmed" if conf.confirmed else "NOT confirmed"
        lines.append(
            f"confirmation on fresh seeds ({conf.replicates} replicates): gain "
            f"{conf.score.gain:+.4g} [{conf.score.lower:.4g}, {conf.score.upper:.4g}], "
            f"P(better) {conf.score.prob_better:.3f} — {verdict}"
        )
    lines.append(
        f"registered {run.family}/{run.registered} (parent {run.champion})"
        if run.registered
        else "nothing registered"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.samples < 1:
        raise InvalidInput("samples", f"must be >= 1, got {args.samples}")
    result = run_args(args, verbose=0 if args.json else 1)
    print(result.model_dump_json(indent=2) if args.json else render(result))
    return 0
