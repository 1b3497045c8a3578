"""One entry point for every sandbox spec: dispatch on its kind, and write a result to files.

``run_sandbox`` is what the CLI, the Ray job and (later) the HTTP API call. ``write_result``
stores a result as Parquet (the replicate-level tables) plus a JSON summary (everything else,
with the fingerprint) in a folder of its own, so a job's output is self-describing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from twinloop.config import Settings
from twinloop.errors import InvalidInput
from twinloop.sandbox.abtest import prepare_ab, run_ab_test
from twinloop.sandbox.executor import Executor, ProgressCallback
from twinloop.sandbox.grid import prepare_grid, run_grid
from twinloop.sandbox.headtohead import prepare_compare, run_head_to_head
from twinloop.sandbox.montecarlo import prepare_test, run_test
from twinloop.sandbox.results import (
    AbTestResult,
    GridResult,
    HeadToHeadResult,
    SandboxResult,
    SandboxTestResult,
)
from twinloop.sandbox.specs import AbTestSpec, GridSpec, HeadToHeadSpec, SandboxTestSpec

TABLE_FIELDS = ("table", "tests")


def run_sandbox(
    spec: SandboxTestSpec | HeadToHeadSpec | GridSpec | AbTestSpec,
    *,
    settings: Settings | None = None,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
) -> SandboxResult:
    """Run any sandbox spec (test, compare, grid, ab_test) on the given executor."""
    kwargs: dict[str, Any] = {"settings": settings, "executor": executor, "progress": progress}
    if isinstance(spec, SandboxTestSpec):
        return run_test(spec, **kwargs)
    if isinstance(spec, HeadToHeadSpec):
        return run_head_to_head(spec, **kwargs)
    if isinstance(spec, GridSpec):
        return run_grid(spec, **kwargs)
    if isinstance(spec, AbTestSpec):
        return run_ab_test(spec, **kwargs)
    raise InvalidInput("spec", f"not a sandbox spec: {type(spec).__name__}")


def check_spec(
    spec: SandboxTestSpec | HeadToHeadSpec | GridSpec | AbTestSpec, settings: Settings
) -> None:
    """Every check a run makes before its first replicate, without running anything.

    Callers that must set up costly machinery first (a Ray cluster, an actor pool) call this
    so bad input fails before that; the runners make the same checks themselves.
    """
    if isinstance(spec, SandboxTestSpec):
        prepare_test(spec, settings)
    elif isinstance(spec, HeadToHeadSpec):
        prepare_compare(spec, settings)
    elif isinstance(spec, GridSpec):
        prepare_grid(spec, settings)
    else:
        prepare_ab(spec, settings)


def planned_replicates(
    spec: SandboxTestSpec | HeadToHeadSpec | GridSpec | AbTestSpec, settings: Settings
) -> int:
    """Replicate tasks the spec asks for at most (a progress bar's total)."""
    n = spec.replicates or settings.monte_carlo_runs
    early = getattr(spec, "early_stop", None)
    if early is not None:
        n = max(n, early.max_replicates)
    if isinstance(spec, HeadToHeadSpec):
        return 2 * n
    if isinstance(spec, GridSpec):
        return n * len(spec.scenarios) * len(spec.models)
    return n


def summary_dict(result: SandboxResult) -> dict[str, Any]:
    """The result as JSON-ready data without its replicate tables, plus its fingerprint."""
    data: dict[str, Any] = result.model_dump(mode="json", exclude=set(TABLE_FIELDS))
    data["fingerprint"] = result.fingerprint()
    return data


def write_result(result: SandboxResult, folder: Path) -> dict[str, Path]:
    """Write ``summary.json`` and one Parquet file per replicate table into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in TABLE_FIELDS:
        table = getattr(result, name, None)
        if isinstance(table, pa.Table):
            paths[name] = folder / f"{'replicates' if name == 'table' else name}.parquet"
            pq.write_table(table, paths[name])
    paths["summary"] = folder / "summary.json"
    summary = summary_dict(result)
    summary["files"] = {k: p.name for k, p in paths.items()}
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return paths


def result_folder_name(result: SandboxResult) -> str:
    """``<kind>-<first 12 hex of the fingerprint>``: equal runs land in the same folder."""
    return f"{result.kind}-{result.fingerprint()[:12]}"


__all__ = [
    "AbTestResult",
    "GridResult",
    "HeadToHeadResult",
    "SandboxTestResult",
    "check_spec",
    "planned_replicates",
    "result_folder_name",
    "run_sandbox",
    "summary_dict",
    "write_result",
]
