"""Ray job: run a sandbox spec on the cluster and write Parquet plus a JSON summary.

    ray job submit --working-dir . -- python -m cluster.jobs.sandbox --spec SPEC.json

The spec's ``kind`` picks the run (test, compare, grid, ab_test). The spec is validated before
Ray is touched, so a bad spec fails at once with one line naming the field, having run and
stored nothing. Results go to ``<data dir>/sandbox/<kind>-<fingerprint>/`` (``replicates.parquet``,
``tests.parquet`` for A/B tests, ``summary.json``), and the summary is also put in the state store
(kind ``sandbox_run``) so the HTTP API can list runs. Nothing happens at import time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinloop.config import Settings, load_settings
from twinloop.errors import InvalidInput, TwinloopError
from twinloop.sandbox.executor import ProgressCallback
from twinloop.sandbox.results import SandboxResult
from twinloop.sandbox.runner import (
    check_spec,
    planned_replicates,
    result_folder_name,
    run_sandbox,
    summary_dict,
    write_result,
)
from twinloop.sandbox.specs import (
    AbTestSpec,
    GridSpec,
    HeadToHeadSpec,
    SandboxTestSpec,
    parse_sandbox_spec,
)

if TYPE_CHECKING:
    from actors.sandbox_pool import RayExecutor

AnySpec = SandboxTestSpec | HeadToHeadSpec | GridSpec | AbTestSpec
STORE_KIND = "sandbox_run"


def load_spec_file(path: Path, kind: str | None = None) -> dict[str, Any]:
    """Read a spec file as a dict; InvalidInput names the problem (missing, not JSON)."""
    if not path.is_file():
        raise InvalidInput("spec", f"no such file: {str(path)!r}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        message = f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})"
        raise InvalidInput("spec", message) from exc
    if not isinstance(data, dict):
        raise InvalidInput("spec", f"{path} must hold a JSON object")
    if kind is not None:
        data.setdefault("kind", kind)
    return data


def validate(data: dict[str, Any], settings: Settings, kind: str | None = None) -> AnySpec:
    """Parse the spec and check what depends on settings, before anything runs."""
    spec = parse_sandbox_spec(data, kind)
    check_spec(spec, settings)  # type: ignore[arg-type]
    return spec  # type: ignore[return-value]


def progress_bar(
    total: int, desc: str, *, on_ray: bool
) -> tuple[ProgressCallback, Callable[[], None]]:
    """A progress callback and its closer: Ray's tqdm on a cluster, plain tqdm in-process."""
    bar: Any
    if on_ray:
        from ray.experimental.tqdm_ray import tqdm as ray_tqdm

        bar = ray_tqdm(total=total, desc=desc, unit="replicate")
    else:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="replicate", file=sys.stderr, mininterval=0.5)

    def update(done: int, planned: int) -> None:
        if planned > (bar.total or 0):
            bar.total = planned
        bar.update(done - bar.n)

    return update, bar.close


def _nothing() -> None:
    return None


def ray_executor(workers: int | None, num_cpus: float, address: str | None) -> RayExecutor:
    """Connect to Ray (or start it locally) and build the actor pool."""
    from actors.sandbox_pool import RayExecutor, ensure_ray

    ensure_ray(address)
    return RayExecutor(workers, num_cpus=num_cpus, label="sandbox")


def save(result: SandboxResult, settings: Settings, data_dir: Path | None = None) -> Path:
    """Write the result's files under the data directory and its summary in the store."""
    from cluster.store_factory import open_store

    root = Path(data_dir or settings.data_dir)
    folder = root / "sandbox" / result_folder_name(result)
    write_result(result, folder)
    store = open_store(settings.redis_url, root)
    try:
        summary = summary_dict(result)
        summary["folder"] = str(folder.resolve())
        store.put(STORE_KIND, result_folder_name(result), summary)
    finally:
        store.close()
    return folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.jobs.sandbox", description="Run a sandbox spec on Ray."
    )
    return pool_job_arguments(parser, "sandbox spec JSON (with kind)")


def pool_job_arguments(parser: argparse.ArgumentParser, spec: str) -> argparse.ArgumentParser:
    """The options every job that fans a spec out over the actor pool takes."""
    parser.add_argument("--spec", type=Path, required=True, help=spec)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: TWINLOOP_DATA_DIR")
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: all CPUs)")
    parser.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per worker actor")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        spec = validate(load_spec_file(args.spec), settings)
        if args.workers is not None and args.workers < 1:
            raise InvalidInput("workers", f"must be >= 1, got {args.workers}")
        if args.num_cpus <= 0:
            raise InvalidInput("num_cpus", f"must be > 0, got {args.num_cpus}")
        executor = ray_executor(args.workers, args.num_cpus, settings.ray_address)
        update: ProgressCallback | None = None
        close: Callable[[], None] = _nothing
        if not args.no_progress:
            update, close = progress_bar(
                planned_replicates(spec, settings), f"sandbox {spec.kind}", on_ray=True
            )
        try:
            result = run_sandbox(spec, settings=settings, executor=executor, progress=update)
        finally:
            close()
            executor.shutdown()
        folder = save(result, settings, args.data_dir)
    except TwinloopError as exc:
        print(f"sandbox job: error: {exc}", file=sys.stderr)
        return 2
    e = result.execution
    print(
        f"sandbox {result.kind}: {result.replicates} replicates, "
        f"{e.customer_days:,.0f} customer-days in {e.wall_seconds:.1f} s on {e.workers} workers "
        f"across {len(e.nodes)} node(s); fingerprint {result.fingerprint()[:12]}"
    )
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
