"""Ray job: analyse an A/B result (JSON or per-unit Parquet/CSV/Arrow) and write the analysis.

    ray job submit --working-dir . -- python -m cluster.jobs.analyze --input units.parquet \\
        --control model-v2 --dimensions segment,channel

Takes the flags of ``twinloop analyze``. The FailureAnalysis JSON goes to
``<data dir>/analyses/<experimentId>.json`` (or ``--output``) and, unless ``--no-store``, into
the state store (kind ``analyses``), where the HTTP API and later analyses find it. The input
is checked before anything is written; a bad input exits with status 2 and one line naming the
field. The analysis is a single-process numpy job (ten million rows take a few seconds), so it
needs no Ray actors. Nothing happens at import time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cluster.commands.analyze import add_input_arguments, analyze_args
from twinloop.config import load_settings
from twinloop.errors import TwinloopError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.jobs.analyze", description="Failure Analyzer job"
    )
    parser.add_argument(
        "--input", type=Path, required=True, help="A/B result JSON, or per-unit Parquet/CSV/Arrow"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the JSON (default: <data dir>/analyses/<id>.json)",
    )
    add_input_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        analysis = analyze_args(args, args.input)
        output = args.output or (
            Path(load_settings().data_dir) / "analyses" / f"{analysis.experiment_id}.json"
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(analysis.model_dump_json(indent=2), encoding="utf-8")
    except (TwinloopError, OSError) as exc:
        print(f"analyze job: error: {exc}", file=sys.stderr)
        return 2
    print(f"{analysis.experiment_id}: {analysis.decision.summary}")
    print(f"severity {analysis.severity}; analysis written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
