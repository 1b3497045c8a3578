"""Ray job: retrain a family after a failure on Ray Tune, keep the run, register the winner.

    ray job submit --working-dir . -- python -m cluster.jobs.retrain --spec retrain.json

The spec is a JSON object with the flags of ``twinloop retrain`` as keys: ``family`` and
``analysis`` (a stored analysis id or a file in the working dir) are required; ``samples``,
``seed``, ``data`` (labelled Parquet), ``rows``, ``register`` and ``storage`` (the Tune
experiment folder, for ``Tuner.restore``) are optional. A bad spec exits with status 2 and one
line naming the field. Nothing happens at import time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twinloop.errors import InvalidInput, TwinloopError

KEYS = {"family", "analysis", "samples", "seed", "data", "rows", "register", "storage"}


def namespace(spec: dict[str, Any]) -> argparse.Namespace:
    """The command's arguments from the spec document; unknown or missing keys are named."""
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise InvalidInput(unknown[0], f"unknown key; allowed: {sorted(KEYS)}")
    for key in ("family", "analysis"):
        if not isinstance(spec.get(key), str):
            raise InvalidInput(key, "required (a string)")
    return argparse.Namespace(
        family=spec["family"],
        analysis=spec["analysis"],
        samples=int(spec.get("samples", 8)),
        seed=int(spec.get("seed", 0)),
        data=Path(spec["data"]) if spec.get("data") else None,
        rows=int(spec.get("rows", 8_000)),
        no_register=not spec.get("register", True),
        ray=True,
        storage=Path(spec["storage"]) if spec.get("storage") else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.jobs.retrain")
    parser.add_argument("--spec", type=Path, required=True, help="retrain spec (JSON)")
    args = parser.parse_args(argv)
    try:
        from cluster.commands.retrain import render, run_args

        try:
            spec = json.loads(args.spec.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidInput("spec", f"not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(spec, dict):
            raise InvalidInput("spec", "must be a JSON object")
        run = run_args(namespace(spec))
    except (TwinloopError, OSError) as exc:
        print(f"retrain job: error: {exc}", file=sys.stderr)
        return 2
    print(render(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
