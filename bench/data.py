"""Where a benchmark's data comes from: the folder given on the command line, said out loud.

The real corpora (NAB, Squeeze B0, RobustSpot RS) are not in the repository — NAB is AGPL, and
they are large — so every benchmark takes its data folder as an argument, defaulting to
``../shared/benchmarks/<name>`` beside the checkout when it is there, and prints which folder
it read so a figure can always be traced back to its data.
"""

from __future__ import annotations

import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def default_dir(name: str) -> Path:
    """``../shared/benchmarks/<name>`` beside the checkout (it may not exist)."""
    return SHARED / name


def announce(folder: Path, flag: str) -> Path:
    """Print where the data comes from; exit 2 with one line when the folder is missing."""
    if not folder.is_dir():
        print(
            f"error: no benchmark data at {folder}; pass the folder with {flag} DIR "
            f"(it defaults to ../shared/benchmarks/… beside the checkout)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    print(f"data: {folder.resolve()}", file=sys.stderr)
    return folder
