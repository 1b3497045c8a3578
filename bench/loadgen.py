"""A lean closed-loop HTTP/1.1 load generator, run as its own process.

Run: ``.venv/bin/python -m bench.loadgen --port 8000 --path /healthz [--method POST
--body-file body.json] [--seconds 60] [--concurrency 16] [--warmup 5]``; prints one JSON object
(latencies in seconds, errors, the generator's own CPU seconds).

Why not httpx: on a 2-core machine the load generator shares the cores with the server it
measures, and an httpx ``AsyncClient`` spends about 1 ms of CPU per request — enough to move the
server's latency. This client writes one prepared request per keep-alive connection and reads the
status line, headers and a ``Content-Length`` body with asyncio streams: about 0.1-0.2 ms per
request, and it reports its own CPU so the reader can see what it cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class LoadResult:
    """What one load run saw; ``latencies_s`` holds only the measured (post-warm-up) requests."""

    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_s: float = 0.0


def request_bytes(method: str, path: str, body: bytes, host: str) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request and read its whole response; returns the status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            raise ValueError("chunked responses are not supported by this load generator")
    if length:
        await reader.readexactly(length)
    return status


async def drive(
    host: str,
    port: int,
    request: bytes,
    seconds: float,
    concurrency: int,
    warmup_s: float,
) -> LoadResult:
    """Keep ``concurrency`` connections busy: warm up, then measure for ``seconds``."""
    result = LoadResult()

    async def worker(until: float, record: bool) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < until:
                started = time.perf_counter()
                try:
                    status = await _exchange(reader, writer, request)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status = 0  # transport error: count it and open a new connection
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                if record:
                    result.latencies_s.append(time.perf_counter() - started)
                    key = str(status)
                    result.statuses[key] = result.statuses.get(key, 0) + 1
                    result.errors += 0 if 200 <= status < 300 else 1
        finally:
            writer.close()

    if warmup_s > 0:
        warm_until = time.perf_counter() + warmup_s
        await asyncio.gather(*(worker(warm_until, False) for _ in range(concurrency)))
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(worker(until, True) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    result.cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", required=True)
    parser.add_argument("--body-file", type=Path, help="JSON body to send with every request")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args(argv)
    body = args.body_file.read_bytes() if args.body_file else b""
    request = request_bytes(args.method, args.path, body, f"{args.host}:{args.port}")
    result = asyncio.run(
        drive(args.host, args.port, request, args.seconds, args.concurrency, args.warmup)
    )
    json.dump(asdict(result), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
