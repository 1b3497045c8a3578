"""Ray job: start (or resume) the improvement of a failed experiment and drive it to a decision.

    ray job submit --working-dir . -- python -m cluster.jobs.improve --spec improve.json

The spec is an ``ImprovementSpec`` (``{"experimentId": ..., "family": ..., "seed": ...}``,
camelCase or snake_case); the experiment's analysis must be in the Store. The job is the
driver: it creates the improvement once (a second submission finds it) and runs its stages
from the last finished one, so a job killed at any point and submitted again reaches the same
decision. Each finished stage prints one line. ``--stages module:NAME`` names the stage
mapping to run (an operator's import path, as Ray's own entrypoints are; default: the stages
this build wires, ``twinloop.loop.stages.default_stages``). Exit status: 0 decided or
stalled on a missing piece (the last line says which), 2 bad input. Nothing happens at import.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cluster.store_factory import open_store
from twinloop.config import load_settings
from twinloop.contract import invalid_input
from twinloop.errors import InvalidInput, TwinloopError
from twinloop.loop import Improvement, ImprovementSpec, StageFn, run_improvement, start_improvement
from twinloop.loop.model import Stage
from twinloop.loop.stages import default_stages


def read_spec(data: Any) -> ImprovementSpec:
    """An ImprovementSpec from JSON (camelCase keys accepted); InvalidInput names the field."""
    snake = snake_keys(data)
    try:
        return ImprovementSpec.model_validate(snake)
    except ValidationError as exc:
        raise invalid_input(exc, snake) from exc


def snake_keys(data: Any) -> dict[str, Any]:
    """A JSON object's top-level keys in snake_case; InvalidInput when it is not an object."""
    if not isinstance(data, Mapping):
        raise InvalidInput("spec", "must be a JSON object")
    return {_snake(str(key)): value for key, value in data.items()}


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def load_stages(path: str | None, in_process: bool = False) -> Mapping[Stage, StageFn]:
    """The stage mapping named ``module:NAME``; else the cluster's stages (retraining on Ray
    Tune, agents on their actors: ``cluster.loop_stages``), joining the job's cluster (or a
    private local Ray); with ``in_process`` the pure default stages, no Ray."""
    if path is None and in_process:
        return default_stages()
    if path is None:
        from actors.sandbox_pool import ensure_ray
        from cluster.loop_stages import cluster_stages

        ensure_ray()
        return cluster_stages()
    module, _, name = path.partition(":")
    if not module or not name:
        raise InvalidInput("stages", f"{path!r} is not module:NAME")
    stages = getattr(importlib.import_module(module), name, None)
    if not isinstance(stages, Mapping):
        raise InvalidInput("stages", f"{path!r} is not a mapping of stage to function")
    return stages


def where(stages: Mapping[Stage, StageFn]) -> str:
    """Where the candidates stage's two seams run (its ``functools.partial`` keywords)."""
    keywords = getattr(stages.get("candidates"), "keywords", {})
    search = "Ray Tune" if keywords.get("search") is not None else "in-process"
    agents = "agent actors" if keywords.get("ask") is not None else "in-process"
    return f"retraining: {search}; agents: {agents}"


def describe(improvement: Improvement) -> str:
    """One line: the stage that just finished (and how long it took), a stall or the end."""
    last = improvement.records[-1] if improvement.records else None
    took = f" in {last.duration_seconds:.2f} s" if last and last.duration_seconds else ""
    if improvement.status == "running" and last is not None:
        return f"{improvement.id}: {last.stage} done{took} — {last.summary}"
    if improvement.status == "stalled" and last is not None:
        return f"{improvement.id}: {last.stage} {last.status} — {improvement.reason}"
    return (
        f"{improvement.id}: {improvement.stage} — {improvement.reason or (last and last.summary)}"
    )


def drive(spec: ImprovementSpec, stages: Mapping[Stage, StageFn]) -> Improvement:
    """Create or find the improvement and run it, one printed line per stage."""
    settings = load_settings()
    with open_store(settings.redis_url, settings.data_dir) as store:
        improvement, created = start_improvement(store, spec)
        print(f"{improvement.id}: {'started' if created else 'resumed'}", flush=True)
        return run_improvement(
            store, improvement.id, stages, on_stage=lambda i: print(describe(i), flush=True)
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.jobs.improve", description="Improvement loop driver job"
    )
    parser.add_argument("--spec", type=Path, required=True, help="ImprovementSpec JSON")
    parser.add_argument("--stages", default=None, help="stage mapping as module:NAME")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the stages in this process (no Ray): in-process search and agents",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        spec = read_spec(json.loads(args.spec.read_text(encoding="utf-8")))
        spec = spec.model_copy(update={"trigger": "job"})
        stages = load_stages(args.stages, args.in_process)
        print(where(stages), flush=True)
        improvement = drive(spec, stages)
    except (TwinloopError, OSError, ValueError) as exc:
        print(f"improve job: error: {exc}", file=sys.stderr)
        return 2
    print(final_line(improvement))
    return 0


def final_line(improvement: Improvement) -> str:
    """``decision: promoted (done)`` once decided, else ``state: planned (stalled)``."""
    word = "decision" if improvement.terminal else "state"
    return f"{word}: {improvement.stage or 'start'} ({improvement.status})"


if __name__ == "__main__":
    sys.exit(main())
