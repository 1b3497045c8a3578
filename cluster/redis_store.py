"""The shared store: the Store contract on Redis, each write one atomic Lua script.

Key layout (``P`` is the configurable prefix, ``{kind}`` a hash tag so one kind's keys share a
Redis Cluster slot and a script may touch them together):

    P{kind}:doc:<id>     hash  v (version), doc (JSON), c / u (created / updated, Unix s),
                               e (expiry, Unix ms, "" = never)
    P{kind}:hist:<id>    list  superseded versions, oldest first, "<v>\\n<u>\\n<doc JSON>"
    P{kind}:index        zset  member <id>, score updated_at: lists a kind by time

Why Lua: a script runs atomically, so the version check, the history push, the document and the
index change together. Redis does not roll back a script that fails half-way, so each script
checks every key's type before its first write: a failing script has written nothing. Times come
from the server's clock (``TIME``), so TTLs and ordering agree across client machines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from twinloop.errors import CorruptDocument, InvalidInput, StoreError, StoreUnavailable
from twinloop.store.codec import DEFAULT_MAX_HISTORY, KEEP_TTL, TTL, Order, conflict, decode_doc
from twinloop.store.interface import Store, StoredDocument

PREFIX_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:-]{0,64}")
_BATCH: Final = 200  # documents fetched per round trip while listing

# KEYS: doc, hist, index. ARGV: id, body, expected (-1 = any), ttl ("none" | "keep" | ms),
# max_history (-1 = unbounded). Returns {"ok", v, c, u, e} | {"conflict", v} | {"corrupt", key}.
_WRITE: Final = """
local function wrong(key, want)
  local t = redis.call('TYPE', key)['ok']
  return t ~= 'none' and t ~= want
end
if wrong(KEYS[1], 'hash') then return {'corrupt', KEYS[1]} end
if wrong(KEYS[2], 'list') then return {'corrupt', KEYS[2]} end
if wrong(KEYS[3], 'zset') then return {'corrupt', KEYS[3]} end
local cur = redis.call('HMGET', KEYS[1], 'v', 'doc', 'c', 'u', 'e')
local version = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  version = tonumber(cur[1])
  if version == nil or not cur[2] or not cur[3] or not cur[4] then
    return {'corrupt', KEYS[1]}
  end
end
local expected = tonumber(ARGV[3])
if expected >= 0 and expected ~= version then return {'conflict', tostring(version)} end
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local e = ''
if ARGV[4] == 'keep' then
  if version > 0 and cur[5] then e = cur[5] end
elseif ARGV[4] ~= 'none' then
  e = string.format('%d', now_ms + tonumber(ARGV[4]))
end
-- every check passed: only writes from here, none of which can fail on type
local created = now
local max_history = tonumber(ARGV[5])
if version > 0 then
  created = cur[3]
  if max_history ~= 0 then
    redis.call('RPUSH', KEYS[2], cur[1] .. '\\n' .. cur[4] .. '\\n' .. cur[2])
    if max_history > 0 then redis.call('LTRIM', KEYS[2], -max_history, -1) end
  end
else
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], 'v', tostring(version + 1), 'doc', ARGV[2], 'c', created,
           'u', now, 'e', e)
if e ~= '' then
  redis.call('PEXPIREAT', KEYS[1], e)
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIREAT', KEYS[2], e) end
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
redis.call('ZADD', KEYS[3], now, ARGV[1])
return {'ok', tostring(version + 1), created, now, e}
"""

# KEYS: doc, hist, index. ARGV: id, expected (-1 = any). Returns {"ok"|"absent"|"conflict", v}.
_DELETE: Final = """
local it = redis.call('TYPE', KEYS[3])['ok']
if it ~= 'none' and it ~= 'zset' then return {'corrupt', KEYS[3]} end
local t = redis.call('TYPE', KEYS[1])['ok']
local version = 0
if t == 'hash' then
  version = tonumber(redis.call('HGET', KEYS[1], 'v')) or -1
elseif t ~= 'none' then
  version = -1
end
local expected = tonumber(ARGV[2])
if expected >= 0 and expected ~= version then return {'conflict', tostring(version)} end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if t == 'none' then return {'absent', '0'} end
return {'ok', tostring(version)}
"""

# KEYS: doc, index. ARGV: id. Drops an index entry whose document expired - only if it is
# still gone, so a concurrent re-creation keeps its entry.
_FORGET: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.call('ZREM', KEYS[2], ARGV[1]) end
return 0
"""


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, fit for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisStore(Store):
    """The Store contract on one Redis server; every write is one atomic script."""

    def __init__(
        self,
        url: str,
        prefix: str = "twinloop:",
        max_history: int | None = DEFAULT_MAX_HISTORY,
        connect_timeout_s: float = 2.0,
        socket_timeout_s: float = 5.0,
    ) -> None:
        super().__init__()
        if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
            raise InvalidInput("prefix", f"{prefix!r} must match {PREFIX_PATTERN.pattern}")
        if max_history is not None and (not isinstance(max_history, int) or max_history < 0):
            raise InvalidInput("max_history", f"{max_history!r} must be an int >= 0 or None")
        for name, value in (
            ("connect_timeout_s", connect_timeout_s),
            ("socket_timeout_s", socket_timeout_s),
        ):
            if not isinstance(value, int | float) or not 0 < value <= 300:
                raise InvalidInput(name, f"{value!r} must be in (0, 300] seconds")
        self.url = url
        self.prefix = prefix
        self.max_history = max_history
        self.connect_timeout_s = float(connect_timeout_s)
        self.socket_timeout_s = float(socket_timeout_s)
        self.description = f"Redis store {redact(url)} (prefix {prefix!r})"
        try:
            # No automatic retries: a retried write script could apply twice, and a down server
            # should be reported at once; update() retries at the level where that is safe.
            self._client = redis.Redis.from_url(
                url,
                socket_connect_timeout=self.connect_timeout_s,
                socket_timeout=self.socket_timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise InvalidInput("redis_url", f"{redact(url)!r} is not a Redis URL: {exc}") from exc
        self._write_script = self._client.register_script(_WRITE)
        self._delete_script = self._client.register_script(_DELETE)
        self._forget_script = self._client.register_script(_FORGET)

    def __reduce__(self) -> tuple[Any, ...]:
        args = (
            self.url,
            self.prefix,
            self.max_history,
            self.connect_timeout_s,
            self.socket_timeout_s,
        )
        return (type(self), args)

    # keys and errors ---------------------------------------------------------------------------

    def _keys(self, kind: str, ident: str) -> tuple[str, str, str]:
        base = f"{self.prefix}{{{kind}}}:"
        return f"{base}doc:{ident}", f"{base}hist:{ident}", f"{base}index"

    @contextmanager
    def _guard(self, what: str, kind: str = "", ident: str = "") -> Iterator[None]:
        """Translate redis-py errors into the project's, naming the server (never its password)."""
        try:
            yield
        except redis.exceptions.ConnectionError as exc:  # includes refused, auth, loading
            raise StoreUnavailable(f"{self.description} is unavailable ({what}): {exc}") from exc
        except redis.exceptions.TimeoutError as exc:
            raise StoreUnavailable(
                f"{self.description} did not answer within {self.socket_timeout_s:g} s ({what})"
            ) from exc
        except redis.exceptions.ResponseError as exc:
            if "WRONGTYPE" in str(exc) and kind:
                raise CorruptDocument(
                    f"{kind} {ident!r} in {self.description} is not a document hash: {exc}"
                ) from exc
            raise StoreError(f"{self.description} rejected {what}: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"{self.description} failed ({what}): {exc}") from exc

    def _corrupt(self, kind: str, ident: str, detail: str) -> CorruptDocument:
        return CorruptDocument(f"{kind} {ident!r} in {self.description}: {detail}")

    def _document(self, kind: str, ident: str, fields: list[Any]) -> StoredDocument | None:
        """Build a document from HMGET v, doc, c, u, e; None when the key does not exist."""
        if all(f is None for f in fields):
            return None
        version, raw, created, updated, expires = fields
        try:
            return StoredDocument(
                kind=kind,
                id=ident,
                version=int(version),
                doc=decode_doc(raw, kind, ident, self.description),
                created_at=float(created),
                updated_at=float(updated),
                expires_at=float(expires) / 1000.0 if expires else None,
            )
        except (TypeError, ValueError) as exc:
            raise self._corrupt(kind, ident, f"bad version or timestamps {fields[:1]}") from exc

    # lifecycle ---------------------------------------------------------------------------------

    def ping(self) -> None:
        with self._guard("PING"):
            self._client.ping()

    def close(self) -> None:
        self._client.close()

    # primitives --------------------------------------------------------------------------------

    def _read(self, kind: str, ident: str) -> StoredDocument | None:
        doc_key = self._keys(kind, ident)[0]
        with self._guard("read", kind, ident):
            fields = self._client.hmget(doc_key, ["v", "doc", "c", "u", "e"])
        return self._document(kind, ident, list(fields))

    def _write(
        self, kind: str, ident: str, body: str, expected_version: int | None, ttl: TTL
    ) -> StoredDocument:
        if ttl is KEEP_TTL:
            ttl_arg = "keep"
        elif ttl is None:
            ttl_arg = "none"
        else:
            ttl_arg = str(max(1, round(ttl * 1000)))
        args: list[str | int] = [
            ident,
            body,
            -1 if expected_version is None else expected_version,
            ttl_arg,
            -1 if self.max_history is None else self.max_history,
        ]
        with self._guard("write", kind, ident):
            reply = self._write_script(keys=list(self._keys(kind, ident)), args=args)
        status = _text(reply[0])
        if status == "conflict":
            raise conflict(kind, ident, expected_version or 0, int(reply[1]))
        if status == "corrupt":
            raise self._corrupt(kind, ident, f"key {_text(reply[1])} has the wrong type")
        version, created, updated, expires = (_text(x) for x in reply[1:])
        return StoredDocument(
            kind=kind,
            id=ident,
            version=int(version),
            doc=decode_doc(body, kind, ident, self.description),
            created_at=float(created),
            updated_at=float(updated),
            expires_at=float(expires) / 1000.0 if expires else None,
        )

    def _delete(self, kind: str, ident: str, expected_version: int | None) -> bool:
        args: list[str | int] = [ident, -1 if expected_version is None else expected_version]
        with self._guard("delete", kind, ident):
            reply = self._delete_script(keys=list(self._keys(kind, ident)), args=args)
        status = _text(reply[0])
        if status == "conflict":
            raise conflict(kind, ident, expected_version or 0, int(reply[1]))
        if status == "corrupt":
            raise self._corrupt(kind, ident, f"key {_text(reply[1])} has the wrong type")
        return status == "ok"

    def _scan(self, kind: str, order: Order) -> Iterator[StoredDocument]:
        # The ids are read once (a consistent snapshot of the index), the documents in batches;
        # a document deleted or expired in between is skipped.
        index = self._keys(kind, "x")[2]
        with self._guard("list", kind):
            ids = [_text(m) for m in self._client.zrange(index, 0, -1, desc=order == "newest")]
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            with self._guard("list", kind, batch[0]):
                pipe = self._client.pipeline(transaction=False)
                for ident in batch:
                    pipe.hmget(self._keys(kind, ident)[0], ["v", "doc", "c", "u", "e"])
                replies = pipe.execute(raise_on_error=False)
            for ident, fields in zip(batch, replies, strict=True):
                if isinstance(fields, redis.exceptions.ResponseError):
                    raise self._corrupt(kind, ident, f"not a document hash: {fields}")
                stored = self._document(kind, ident, list(fields))
                if stored is None:
                    self._forget(kind, ident)
                else:
                    yield stored

    def _forget(self, kind: str, ident: str) -> int:
        doc_key, _, index = self._keys(kind, ident)
        with self._guard("index cleanup", kind, ident):
            return int(self._forget_script(keys=[doc_key, index], args=[ident]))

    def _history(self, kind: str, ident: str) -> list[StoredDocument] | None:
        doc_key, hist_key, _ = self._keys(kind, ident)
        with self._guard("history", kind, ident):
            pipe = self._client.pipeline(transaction=True)  # MULTI: one consistent snapshot
            pipe.hmget(doc_key, ["v", "doc", "c", "u", "e"])
            pipe.lrange(hist_key, 0, -1)
            fields, entries = pipe.execute()
        current = self._document(kind, ident, list(fields))
        if current is None:
            return None
        versions = []
        for entry in entries:
            parts = bytes(entry).split(b"\n", 2)
            if len(parts) != 3:
                raise self._corrupt(kind, ident, f"history entry {bytes(entry)[:40]!r} is garbled")
            version, updated, raw = parts
            old = self._document(kind, ident, [version, raw, fields[2], updated, None])
            if old is not None:
                versions.append(old)
        return [*versions, current]

    def purge_expired(self) -> int:
        removed = 0
        with self._guard("purge"):
            indexes = [_text(k) for k in self._client.scan_iter(match=f"{self.prefix}{{*}}:index")]
        for index in indexes:
            kind = index[len(self.prefix) + 1 : index.index("}", len(self.prefix))]
            with self._guard("purge", kind):
                ids = [_text(m) for m in self._client.zrange(index, 0, -1)]
            for start in range(0, len(ids), _BATCH):
                batch = ids[start : start + _BATCH]
                with self._guard("purge", kind):
                    pipe = self._client.pipeline(transaction=False)
                    for ident in batch:
                        pipe.exists(self._keys(kind, ident)[0])
                    alive = pipe.execute()
                for ident, exists in zip(batch, alive, strict=True):
                    if not exists:
                        removed += self._forget(kind, ident)
        return removed
