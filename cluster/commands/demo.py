"""``twinloop demo``: the main job — a lost A/B test proved, explained, priced, fixed in the twin,
then fixed for real by the improvement loop (Tune retraining, championship, canary on Serve).

Embedded defaults: a private local Ray (one CPU per core), the SQLite store in the output
folder. ``--ray-address`` joins a running cluster, ``--redis-url`` (or ``TWINLOOP_REDIS_URL``)
uses Redis. Everything that can be wrong with the input — the output folder, the Redis URL, the
Ray address — is checked before any work starts and reported in one line (exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinloop.config import load_settings
from twinloop.errors import InvalidInput, StoreUnavailable, TwinloopError

if TYPE_CHECKING:
    from twinloop.demo.results import DemoResult
    from twinloop.store import Store

STORE_KIND = "demo_runs"
RAY_PROBE_SECONDS = 5.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo", help="the main job: a lost A/B test proved, explained, priced and fixed"
    )
    add_arguments(p)
    p.set_defaults(handler=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("twinloop-demo"), help="output folder")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster (host:port, auto)")
    p.add_argument("--redis-url", default=None, help="Redis store (default: SQLite in --out)")
    p.add_argument("--small", action="store_true", help="the reduced-size scenario")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result model as JSON")


def check_out(out: Path) -> Path:
    """The output folder: created if only it is missing, and proven writable."""
    parent = out.resolve().parent
    if not out.exists() and not parent.is_dir():
        raise InvalidInput("out", f"the parent folder of {str(out)!r} does not exist")
    if out.exists() and not out.is_dir():
        raise InvalidInput("out", f"{str(out)!r} exists and is not a folder")
    try:
        out.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise InvalidInput("out", f"cannot write to {str(out)!r}: {exc.strerror}") from exc
    return out


def check_ray_address(address: str | None) -> None:
    """Fail fast on an address nobody answers at (``ray.init`` would wait a long time)."""
    if address is None or address in ("auto", "local") or address.startswith("ray://"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidInput("ray_address", f"{address!r} is not host:port, auto or ray://…")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_PROBE_SECONDS).close()
    except OSError as exc:
        raise InvalidInput("ray_address", f"no Ray cluster answers at {address!r}: {exc}") from exc


def _connect_ray(address: str | None) -> bool:
    """Join or start Ray; True when this process started (and must stop) it."""
    import ray

    from actors.sandbox_pool import ensure_ray

    if ray.is_initialized():
        return False
    try:
        ensure_ray(address, num_cpus=os.cpu_count() or 1)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InvalidInput("ray_address", f"cannot connect to Ray at {address!r}: {exc}") from exc
    return True


def _progress(enabled: bool) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A progress callback that opens Ray's tqdm bar on its first call (total known then)."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if not enabled:
            return
        if "bar" not in state:
            from cluster.jobs.sandbox import progress_bar

            state["update"], state["bar"] = progress_bar(total, "validating", on_ray=True)
        state["update"](done, total)

    def close() -> None:
        if "bar" in state:
            state.pop("bar")()

    return update, close


def _say(args: argparse.Namespace, started: float) -> Callable[[str], None]:
    if args.json:
        return lambda s: None
    return lambda s: print(f"[{time.perf_counter() - started:5.1f}s] {s}", file=sys.stderr)


def _run_on_ray(
    args: argparse.Namespace, address: str | None, started: float, store: Store, out: Path,
    redis_url: str | None,
) -> DemoResult:  # fmt: skip
    """Connect (or start) Ray, run the story on the actor pool and the improvement loop (Tune,
    Serve), leave Ray as we found it."""
    from actors.sandbox_pool import RayExecutor
    from cluster.demo_loop import run_demo_loop
    from twinloop.demo import reference_scenario
    from twinloop.demo.loop import loop_twin
    from twinloop.demo.story import run_story_world
    from twinloop.replication.replicates import executor_evaluate

    owns_ray = _connect_ray(address)
    executor = RayExecutor(num_cpus=1.0, label="demo")
    update, close = _progress(not args.no_progress and not args.json)
    say = _say(args, started)
    try:
        scenario = reference_scenario(small=args.small, seed=args.seed)
        try:
            result, world = run_story_world(
                scenario, executor, settings=load_settings(), progress=update, on_step=say
            )
            close()
            say("calibrating the loop's own twin (its own seed; production stays hidden)")
            twin = loop_twin(scenario, executor_evaluate(executor))
        finally:
            close()
            executor.shutdown()  # its workers' CPUs go to Tune's trials
        loop = run_demo_loop(result, world, twin, store, out, redis_url, say, ray_ends=owns_ray)
        return result.model_copy(update={"loop": loop})
    finally:
        if owns_ray:
            import ray

            ray.shutdown()


def run(args: argparse.Namespace) -> int:
    from cluster.store_factory import open_store
    from twinloop.report import summary_lines, write_report

    if args.seed < 0:
        raise InvalidInput("seed", f"must be >= 0, got {args.seed}")
    settings = load_settings()
    out = check_out(args.out)
    redis_url = args.redis_url or settings.redis_url
    try:
        store = open_store(redis_url, out)
    except StoreUnavailable as exc:
        raise InvalidInput("redis_url", f"the store is unavailable: {exc}") from exc
    with contextlib.closing(store):
        address = args.ray_address or settings.ray_address or None  # RAY_ADDRESS= means unset
        check_ray_address(address)
        started = time.perf_counter()
        result = _run_on_ray(args, address, started, store, out, redis_url)
        files = write_report(result, out)
        lines = summary_lines(result)
        store.put(STORE_KIND, f"seed-{args.seed}{'-small' if args.small else ''}", {
            "summary": lines, "report": str(files.html.resolve()),
            "timings": result.timings, "seed": args.seed, "small": args.small,
        })  # fmt: skip
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    print("\n".join(lines))
    print(f"report: {files.html.resolve()}  ({time.perf_counter() - started:.0f} s)")
    return 0


def main_checked(args: argparse.Namespace, prog: str) -> int:
    """Run with the CLI's error contract (one line on stderr, exit 2); for the job entrypoint."""
    try:
        return run(args)
    except TwinloopError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
