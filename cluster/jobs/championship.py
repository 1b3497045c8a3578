"""Ray job: hold a model championship on the cluster's actor pool and store the decision.

    ray job submit --working-dir . -- python -m cluster.jobs.championship --spec SPEC.json

The spec is a ``ChampionshipSpec`` (family, candidate versions, replicates, seed …). Everything
is checked before Ray is touched — unknown family or version, no champion, a model that cannot
run in the family's environment — so a bad spec fails at once with one line and nothing stored.
The decision goes to the state store (kind ``championship``); when it promotes, the family's
``challenger`` alias moves. Nothing happens at import time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cluster.jobs.sandbox import load_spec_file, pool_job_arguments, progress_bar, ray_executor
from cluster.store_factory import open_store
from twinloop.championship.hold import hold_championship, prepare
from twinloop.championship.results import ChampionshipDecision
from twinloop.championship.spec import ChampionshipSpec, parse_championship_spec
from twinloop.config import load_settings
from twinloop.errors import InvalidInput, TwinloopError
from twinloop.registry.registry import Registry
from twinloop.sandbox.executor import Executor, ProgressCallback, SerialExecutor


def planned(spec: ChampionshipSpec) -> int:
    """Replicates a championship runs at most (a progress bar's total)."""
    return spec.replicates * (len(spec.versions) + 1) + 2 * spec.confirmation_n


def run(
    spec: ChampionshipSpec,
    *,
    serial: bool = False,
    workers: int | None = None,
    num_cpus: float = 1.0,
    progress: bool = True,
    data_dir: Path | None = None,
) -> ChampionshipDecision:
    """Check, run on the pool (or in-process), store and promote; shared by the CLI."""
    if workers is not None and workers < 1:
        raise InvalidInput("workers", f"must be >= 1, got {workers}")
    if num_cpus <= 0:
        raise InvalidInput("num_cpus", f"must be > 0, got {num_cpus}")
    settings = load_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    with open_store(settings.redis_url, settings.data_dir) as store:
        registry = Registry(store, settings=settings)
        prepare(registry, spec)  # every check, before Ray starts
        executor: Executor = SerialExecutor()
        if not serial:
            executor = ray_executor(workers, num_cpus, settings.ray_address)
        update: ProgressCallback | None = None
        close: Callable[[], None] = _nothing
        if progress:
            update, close = progress_bar(planned(spec), "championship", on_ray=not serial)
        try:
            return hold_championship(registry, spec, executor=executor, progress=update)
        finally:
            close()
            shutdown = getattr(executor, "shutdown", None)
            if shutdown is not None:
                shutdown()


def _nothing() -> None:
    return None


def render(decision: ChampionshipDecision) -> str:
    """A human summary: ranking with intervals, the P(better) matrix, gates and the decision."""
    r = decision.result
    lines = [
        f"championship {decision.id} of {r.family} in {r.environment}: champion {r.champion}, "
        f"{len(r.entrants) - 1} candidate(s), {r.replicates} replicates (CRN), seed {r.seed}",
        "  rank  version   BT score  95% interval        wins/games",
    ]
    for g in sorted(r.ratings, key=lambda g: g.rank):
        interval = f"[{g.lower:+.2f}, {g.upper:+.2f}]"
        lines.append(
            f"  {g.rank:>4}  {g.name:<8} {g.score:>+9.2f}  {interval:<18} {g.wins:g}/{g.games}"
        )
    lines.append(f"  P(row better than column) on {r.primary_kpi}:")
    lines.append("  " + " " * 9 + "".join(f"{n:>8}" for n in r.entrants))
    prob = {(p.a, p.b): p.prob_a_better for p in r.pairwise}
    prob.update({(p.b, p.a): 1.0 - p.prob_a_better for p in r.pairwise})
    for a in r.entrants:
        cells = "".join(f"{'-':>8}" if a == b else f"{prob[(a, b)]:>8.3f}" for b in r.entrants)
        lines.append(f"  {a:<9}{cells}")
    if r.confirmation is not None:
        c = r.confirmation
        lines.append(
            f"  confirmation: {c.name} vs {r.champion} on {r.confirmation_replicates} fresh seeds"
        )
        for v in c.gates:
            lines.append(f"    {'pass' if v.passed else 'FAIL'}  {v.gate:<24} {v.detail}")
    lines.append(
        f"  decision: {decision.verdict}" + (f" {decision.winner}" if decision.winner else "")
    )
    lines += [f"    {reason}" for reason in decision.reasons]
    p = decision.promotion
    if p.requested:
        moved = f"moved {p.previous or '-'} -> {p.version}" if p.moved else f"NOT moved: {p.error}"
        lines.append(f"  challenger alias {moved}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.jobs.championship", description="Hold a model championship."
    )
    return pool_job_arguments(parser, "ChampionshipSpec JSON")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        data: dict[str, Any] = load_spec_file(args.spec)
        spec = parse_championship_spec(data)
        decision = run(
            spec,
            workers=args.workers,
            num_cpus=args.num_cpus,
            progress=not args.no_progress,
            data_dir=args.data_dir,
        )
    except TwinloopError as exc:
        print(f"championship job: error: {exc}", file=sys.stderr)
        return 2
    print(render(decision))
    return 0


if __name__ == "__main__":
    sys.exit(main())
