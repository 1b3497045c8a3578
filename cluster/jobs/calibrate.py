"""Ray job: calibrate the twin to a KPI history on the cluster and write the result JSON.

    ray job submit --working-dir . -- \
        python -m cluster.jobs.calibrate --history H.csv --domain sales

The history and the options are validated before Ray is touched, so bad input fails at once
with one line naming the field, having run and stored nothing. Candidate twins run on the
sandbox's actor pool (``--serial`` runs them in-process instead). The result goes to
``<data dir>/calibrations/<name>.json`` and, with the calibrated environment, into the state
store (kinds ``calibrations`` and ``environments``). Nothing happens at import time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cluster.commands.calibrate import add_options, settings_from
from twinloop.config import load_settings
from twinloop.errors import InvalidInput, TwinloopError
from twinloop.replication.calibration.calibrate import calibrate, save_calibration
from twinloop.replication.calibration.models import CalibrationResult
from twinloop.replication.history import read_history


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.jobs.calibrate", description="Calibrate the twin on Ray."
    )
    parser.add_argument("--history", type=Path, required=True, help="daily KPI history file")
    add_options(parser)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: TWINLOOP_DATA_DIR")
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: all CPUs)")
    parser.add_argument("--serial", action="store_true", help="run the twins in-process")
    return parser


def write(result: CalibrationResult, data_dir: Path, redis_url: str | None) -> Path:
    """The result JSON under ``<data_dir>/calibrations/``, and both documents in the store."""
    from cluster.store_factory import open_store

    folder = data_dir / "calibrations"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.environment.name}.json"
    path.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    store = open_store(redis_url, data_dir)
    try:
        save_calibration(store, result)
    finally:
        store.close()
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    evaluator: Any = None
    try:
        config = load_settings()
        settings = settings_from(args)
        if args.workers is not None and args.workers < 1:
            raise InvalidInput("workers", f"must be >= 1, got {args.workers}")
        history = read_history(args.history)
        started = time.perf_counter()
        if not args.serial:
            from actors.calibration import RayEvaluator
            from actors.sandbox_pool import ensure_ray

            ensure_ray(config.ray_address)
            evaluator = RayEvaluator(num_workers=args.workers)
        try:
            result = calibrate(history, settings, evaluate=evaluator)
        finally:
            if evaluator is not None:
                evaluator.shutdown()
        wall = time.perf_counter() - started
        path = write(result, Path(args.data_dir or config.data_dir), config.redis_url)
    except TwinloopError as exc:
        print(f"calibrate job: error: {exc}", file=sys.stderr)
        return 2
    mean_r = "n/a" if result.mean_pearson_r is None else f"{result.mean_pearson_r:.3f}"
    print(
        f"calibrate: {result.environment.name} fit {result.fit_quality}, mean r {mean_r}, "
        f"mean MAPE {result.mean_mape:.1%}; {result.simulations} twin runs in {wall:.1f} s"
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
