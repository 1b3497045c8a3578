"""Busy TCP ports: whether a port can be listened on, and which process holds it (Linux /proc).

Serve's proxy sets ``SO_REUSEPORT``, so a second ``twinloop serve`` on a port another Serve (or
any ``SO_REUSEPORT`` server) already holds would start anyway and the kernel would split the
connections between the two — writes landing in the other server's store. A plain bind, without
``SO_REUSEPORT``, fails on any port someone listens on; that is the check. Naming the holder is
best effort: ``/proc/net/tcp{,6}`` gives the listening socket's inode, ``/proc/<pid>/fd`` the
process that has it open (only processes we may look into: our own user's, or all as root).
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's state column


def port_is_free(host: str, port: int) -> bool:
    """True when a socket without SO_REUSEPORT can bind ``host:port`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR only skips TIME_WAIT leftovers; it never lets two listeners share a port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[str]:
    """Inodes of the sockets listening on ``port`` (any address, IPv4 and IPv6)."""
    inodes: set[str] = set()
    for name in ("tcp", "tcp6"):
        table = proc / "net" / name
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) <= 9 or fields[3] != LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holders(port: int, proc: Path = Path("/proc")) -> list[str]:
    """``pid N (command line)`` for each process we can see listening on ``port``, sorted."""
    targets = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    found: set[str] = set()
    if not targets:
        return []
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            if _links(pid_dir) & targets:
                raw = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                command = raw.decode(errors="replace")[:80] or pid_dir.name
                found.add(f"pid {pid_dir.name} ({command})")
        except OSError:
            continue  # another user's process, or one that just exited
    return sorted(found, key=lambda s: int(s.split()[1]))


def _links(pid_dir: Path) -> set[str]:
    """Targets of a process's open file descriptors (one may close while we read them)."""
    links = set()
    for fd in (pid_dir / "fd").iterdir():
        try:
            links.add(fd.readlink().as_posix())
        except OSError:
            continue
    return links


def busy_port_message(host: str, port: int) -> str | None:
    """None when ``host:port`` is free, else one line naming the port and what holds it."""
    if port_is_free(host, port):
        return None
    who = holders(port)
    held = f"held by {', '.join(who)}" if who else "held by a process this user cannot see"
    return f"{host}:{port} is already in use, {held}; stop it or choose another --port"
