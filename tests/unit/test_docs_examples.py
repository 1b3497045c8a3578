"""The ``twinloop`` commands shown in docs/ that run in-process print exactly their shown output.

Every fenced block of ``docs/*.md`` whose lines start with ``$ twinloop`` is a candidate; its
output is the rest of the block, or the plain block right after a block of bare commands. A
command runs here when it needs neither Ray nor data outside the repository: the analyzer,
calibration, correlations, what-if, synthetic, root-cause and anomaly commands; the sandbox with
``--serial`` or when the shown output is a validation error (refused before Ray). Wall-clock
figures ("in 4.2 s", "(7.27 M/s)") are masked; a line ``...`` in the docs stands for lines
trimmed there. ``/tmp/`` in a command and its output is the test's temporary folder.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
IN_PROCESS = {
    "analyze", "calibrate", "correlations", "what-if", "synthetic", "rootcause", "anomalies",
    "sandbox",
}  # fmt: skip
FILE_SUFFIXES = {".json", ".csv", ".parquet", ".gz", ".yaml"}
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```\n", re.S | re.M)
SECONDS = re.compile(r"\b\d+(?:\.\d+)? s\b")
RATE = re.compile(r"\(\d+(?:\.\d+)? M/s\)")


@dataclass(frozen=True)
class Example:
    where: str
    argv: list[str]
    shown: str


def _blocks(text: str) -> list[tuple[int, str]]:
    """(line, body) of each block with commands; a bare-command block takes the next block."""
    found, out, i = list(FENCE.finditer(text)), [], 0
    while i < len(found):
        m, i = found[i], i + 1
        if m.group(1) not in ("", "console", "text") or "\n$ " not in "\n" + m.group(2):
            continue
        body = m.group(2)
        bare = all(line.startswith(("$ ", " ")) for line in body.splitlines())
        if bare and i < len(found) and found[i].start() == m.end() and found[i].group(1) == "":
            body, i = body + found[i].group(2), i + 1
        out.append((text[: m.start()].count("\n") + 2, body))
    return out


def _commands(path: Path) -> list[tuple[str, str, str]]:
    """(where, command, shown output) of every ``$`` line of the file's blocks."""
    result = []
    for first, body in _blocks(path.read_text(encoding="utf-8")):
        lines, i = body.splitlines(), 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            command, j = lines[i][2:], i + 1
            while command.endswith("\\"):
                command, j = command[:-1] + " " + lines[j].strip(), j + 1
            end = j
            while end < len(lines) and not lines[end].startswith("$ "):
                end += 1
            result.append((f"{path.name}:{first + i}", command, "\n".join(lines[j:end])))
            i = end
    return result


def _runnable(argv: list[str], shown: str) -> bool:
    if len(argv) < 2 or argv[0] != "twinloop" or argv[1] not in IN_PROCESS:
        return False
    for before, arg in itertools.pairwise(argv[1:]):
        is_file = "/" in arg or Path(arg).suffix in FILE_SUFFIXES
        if before == "--out" or not is_file or arg.startswith("-"):
            continue
        if arg.startswith("/tmp/") or not (ROOT / arg).exists():
            return False  # data outside the repository, or a file an earlier step made
    if argv[1] == "sandbox" and "--serial" not in argv:
        return shown.startswith("twinloop sandbox: error:")
    return True


def examples() -> list[Example]:
    found = []
    for path in sorted(DOCS.glob("*.md")):
        for where, command, shown in _commands(path):
            if any(c in command for c in "|>;&"):
                continue
            try:
                argv = shlex.split(command.split("  #")[0])
            except ValueError:
                continue
            if _runnable(argv, shown):
                found.append(Example(where, argv, shown))
    return found


EXAMPLES = examples()


def _pattern(shown: str) -> re.Pattern[str]:
    """The shown output as a regex: masked timings, ``...`` for any run of lines."""
    parts = []
    for line in shown.rstrip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(re.escape(_mask(line)) + r"\n")
    return re.compile("".join(parts) + r"\Z")


def _mask(text: str) -> str:
    return RATE.sub("(<rate>)", SECONDS.sub("<t> s", text))


def test_the_docs_have_runnable_examples() -> None:
    """The collector finds the in-process examples (a parser that finds none would pass)."""
    commands = {e.argv[1] for e in EXAMPLES}
    assert len(EXAMPLES) >= 20
    assert {"analyze", "calibrate", "correlations", "what-if", "rootcause", "sandbox"} <= commands


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_example_prints_its_shown_output(
    example: Example,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command, run in-process from the repository root, prints what the docs show."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("TWINLOOP_DATA_DIR", str(tmp_path / "data"))
    for name in ("TWINLOOP_REDIS_URL", "TWINLOOP_CONFIG", "TWINLOOP_RAY_ADDRESS", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    argv = [a.replace("/tmp/", f"{tmp_path}/") for a in example.argv[1:]]
    main(argv)
    captured = capsys.readouterr()
    printed = _mask(captured.out + captured.err).replace(f"{tmp_path}/", "/tmp/")
    shown = example.shown.replace(f"{tmp_path}/", "/tmp/")
    assert _pattern(shown).match(printed.rstrip("\n") + "\n"), f"{example.where}\n{printed}"
