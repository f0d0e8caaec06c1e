"""``RedisSessionDatabase``: sessions in Redis, shared by every app instance."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .._clock import as_interval, as_utc, from_microseconds, to_microseconds, utcnow
from .._device import Device, stored_device
from .._errors import ConfigurationError, DuplicateSessionError
from .._models import Session
from .._user_ids import UserId, stored_user_id
from .redis_scripts import LIBRARY, SCRIPTS
from .server import deadline, purge_periodically, store_unavailable

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_PURGE_BATCH = 500
# A server that cannot answer right now: the operation may be retried later.
_UNAVAILABLE = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.ReadOnlyError,
    rex.OutOfMemoryError,
    rex.ClusterDownError,
    rex.TryAgainError,
    OSError,
)


@contextmanager
def _unavailable(timeout: float | None = None) -> Iterator[None]:
    # redis-py drops a connection whose command was cancelled: none goes back half-read.
    try:
        with deadline("redis", timeout):
            yield
    except _UNAVAILABLE as exc:
        raise store_unavailable("redis", exc) from exc


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _encode(session: Session) -> str:
    device = session.device
    return json.dumps(
        {
            "id": str(session.id),
            "user_id": str(session.user_id),
            "token_digest": session.token_digest,
            "created_at": session.created_at.isoformat(),
            "expires_at": _iso(session.expires_at),
            "idle_timeout_us": to_microseconds(session.idle_timeout),
            "last_seen_at": session.seen_at.isoformat(),
            "user_agent": session.user_agent,
            "ip_address": session.ip_address,
            "refresh_digest": session.refresh_digest,
            "refresh_generation": session.refresh_generation,
            "access_expires_at": _iso(session.access_expires_at),
            "refreshed_at": _iso(session.refreshed_at),
            "rotation_seal": session.rotation_seal,
            "authenticated_at": session.authenticated.isoformat(),
            "device": None if device is None else dataclasses.asdict(device),
        },
        separators=(",", ":"),
    )


def _decode(raw: bytes | str) -> Session:
    data: dict[str, Any] = json.loads(raw)
    return Session.from_store(
        id=UUID(data["id"]),
        user_id=stored_user_id(data["user_id"]),
        token_digest=data["token_digest"],
        created_at=datetime.fromisoformat(data["created_at"]),
        expires_at=_datetime(data["expires_at"]),
        idle_timeout=from_microseconds(data["idle_timeout_us"]),
        last_seen_at=datetime.fromisoformat(data["last_seen_at"]),
        user_agent=data["user_agent"],
        ip_address=data["ip_address"],
        # Absent from records written before refresh tokens: read as none.
        refresh_digest=data.get("refresh_digest"),
        refresh_generation=data.get("refresh_generation") or 0,
        access_expires_at=_datetime(data.get("access_expires_at")),
        refreshed_at=_datetime(data.get("refreshed_at")),
        rotation_seal=data.get("rotation_seal"),
        # Absent before step-up and device names: the login was the last proof; no device.
        authenticated_at=_datetime(data.get("authenticated_at")),
        device=None if (device := data.get("device")) is None else _device(device),
    )


def _device(fields: dict[str, str | None]) -> Device | None:
    return stored_device(fields["browser"], fields["os"], fields["kind"], fields["label"])


class RedisSessionDatabase:
    """Sessions in Redis (``redis.asyncio``), shared by every process that uses the prefix.

    ``url_or_client`` is a Redis URL (the store then owns the client it creates, with up to
    1,000 connections, ``?max_connections=`` in the URL to change it; ``aclose`` closes it)
    or an existing ``redis.asyncio.Redis`` (left open by ``aclose``). A client made from a
    URL waits ``timeout`` seconds at most to connect and for each reply (``?socket_timeout=``
    in the URL overrides it); a client you pass keeps its own settings. Either way, every
    operation but ``clear`` fails after ``timeout`` seconds in all.
    Every key starts with ``key_prefix``; stores with different prefixes never meet.

    Keys (``P`` is the prefix; no raw token is ever written, only its SHA-256 digest):

    - ``P s2:<digest>``: the session as JSON, read by ``get_by_token_digest`` in one GET
      (a rotation of its tokens moves it to the key of the new access token's digest);
    - ``P id:<session id>``: ``<digest>:<user id>``, for look-ups and deletes by id;
    - ``P u:<user id>``: sorted set of the user's session ids, scored by ``created_at``;
    - ``P deadlines``: sorted set of ``<session id>:<user id>``, scored by deadline.

    User ids are opaque (``str()`` of the id, any characters), so they come last in every
    compound value, after parts of fixed length. The session key is ``s2:`` because the
    earlier layout (``s:``, user id first, UUIDs only) changed: its sessions are never
    read, so none can outlive a revocation; users sign in again (or flush the prefix).

    A session with a deadline gets a native TTL (``PXAT``) on both of its keys at its
    deadline plus ``expired_grace`` (seconds or a timedelta, default one hour), moved by
    ``touch``: how long an expired session's record is kept for ``pop_expired``; run
    purges more often than this. Until then the record is still there but never returned
    by a read (each one checks ``Session.is_active``); ``pop_expired`` takes it, so its
    expiry can be reported. Every change is one Lua script, so the keys and both indexes
    change together: a create refuses a taken id or digest, two concurrent deletes or pops
    of one session end it exactly once, and no delete leaves a key or index entry behind.
    Index entries of sessions whose keys TTL removed (the grace is over) are dropped, and
    not reported, when their user's sessions are listed or deleted and by
    ``pop_expired``/``purge_expired``: run ``SessionManager.purge_periodically()`` (or
    this store's ``purge_periodically()``, which only counts) in a task.

    Redis Cluster: pass a ``redis.asyncio.RedisCluster``, or a URL of any node with
    ``cluster=True``. Scripts reach keys derived from their arguments, so every key of the
    store must live in one hash slot: the prefix must hold a hash tag (``"{sessions}:"``),
    else ``ConfigurationError``. One store then lives on one shard; spread the load with
    several stores (prefixes with different tags). Connection and timeout errors raise
    ``StoreUnavailableError``.

    Example:

        store = RedisSessionDatabase("redis://127.0.0.1:6379/0", key_prefix="myapp:")
        manager = SessionManager(session_db=store)
        app.include_router(manager.router, prefix="/auth/sessions")
        purger = asyncio.create_task(manager.purge_periodically(600))  # at start-up
        await store.aclose()  # at shutdown
        cluster = RedisSessionDatabase("redis://10.0.0.5:7000", cluster=True, key_prefix="{myapp}:")
    """

    def __init__(
        self,
        url_or_client: str | aioredis.Redis | aioredis.RedisCluster,
        *,
        key_prefix: str = "asgi_kit:",
        cluster: bool = False,
        timeout: float = 5.0,
        expired_grace: timedelta | float = 3600,
    ) -> None:
        if not key_prefix:
            raise ConfigurationError("key_prefix must not be empty (clear() deletes by prefix)")
        cluster = cluster or isinstance(url_or_client, aioredis.RedisCluster)
        if cluster and not _hash_tag(key_prefix):
            raise ConfigurationError(
                f"key_prefix {key_prefix!r} has no hash tag: on Redis Cluster every key of the "
                'store must share one slot, so put a tag first in the prefix, e.g. "{sessions}:"'
            )
        self.key_prefix = key_prefix
        """The prefix of every key of this store."""
        self.expired_grace = as_interval(expired_grace, "expired_grace")
        """How long an expired session's keys outlive its deadline, for ``pop_expired``."""
        self._grace_ms = -(-self.expired_grace // timedelta(milliseconds=1))
        self._owned = isinstance(url_or_client, str)
        self._timeout = timeout
        if isinstance(url_or_client, str):
            # redis-py's pool refuses commands beyond its cap (100 by default): allow bursts.
            # (A BlockingConnectionPool would queue them instead, at ~15% of a GET's latency.)
            # One immediate retry on a broken connection (a restarted server), none after a
            # timeout: redis-py's default of ten retries would keep a request 50 s or more.
            # (RedisCluster retries once after any error it may retry, timeouts included,
            # re-reading the slot map; max_connections is then per node.)
            options: dict[str, Any] = {
                "max_connections": 1000,
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
                "retry": Retry(NoBackoff(), 1, supported_errors=(rex.ConnectionError,)),
            }
            self._redis: aioredis.Redis | aioredis.RedisCluster = (
                aioredis.RedisCluster.from_url(url_or_client, **options)
                if cluster
                else aioredis.Redis.from_url(url_or_client, **options)
            )
        else:
            self._redis = url_or_client
        self._scripts = {
            name: self._redis.register_script(LIBRARY + body) for name, body in SCRIPTS.items()
        }

    async def create(self, session: Session) -> None:
        """Store a new session; raise ``DuplicateSessionError`` if its id or token is taken."""
        keys = [*self._keys(session), self._user_key(session.user_id)]
        args = [*self._payload(session), str(session.id), _micros(session.created_at)]
        if not await self._run("create", keys, args):
            raise DuplicateSessionError("a session with this id or token already exists")

    async def get_by_token_digest(self, digest: str) -> Session | None:
        """Return the active session whose token has this SHA-256 hex digest, or None."""
        with _unavailable(self._timeout):
            await self._read_slot_map()
            raw = await self._redis.get(self._session_key(digest))
        return _active(raw)

    async def get(self, session_id: UUID) -> Session | None:
        """Return the active session with this id, or None."""
        return _active(await self._run("get", [f"{self.key_prefix}id:{session_id}"], []))

    async def list_for_user(self, user_id: UserId) -> list[Session]:
        """Return the user's active sessions, newest first (dropping expired index entries)."""
        return _all_active(await self._run("list", [self._user_key(user_id)], [str(user_id)]))

    async def touch(self, session: Session, last_seen_at: datetime) -> Session | None:
        """Record activity on ``session`` and move its TTL; return it updated (None if gone)."""
        updated = session.replace(token="", last_seen_at=last_seen_at)
        touched = await self._run("touch", self._keys(session), self._payload(updated))
        return updated if touched else None

    async def rotate(self, session: Session, rotated: Session) -> bool:
        """Replace ``session`` by ``rotated`` (its next tokens) unless it rotated since read.

        One script: it checks the stored refresh digest, moves the session to the key of
        its new access token and rewrites the id key, so of concurrent rotations of one
        session exactly one wins, and the old access token stops resolving at once.
        """
        keys = [*self._keys(session), self._session_key(rotated.token_digest)]
        expected = [f"{session.token_digest}:{session.user_id}", session.refresh_digest or ""]
        done = await self._run("rotate", keys, [*self._payload(rotated), *expected])
        if done == -1:
            raise DuplicateSessionError("a session with this token already exists")
        return bool(done)

    async def record_authentication(self, session_id: UUID, at: datetime) -> Session | None:
        """Set the active session's ``authenticated_at`` to ``at``; return it (None if none).

        One script rewrites that field alone in the stored value (keeping its TTL), and
        ``touch`` and ``rotate`` carry the stored one over: neither undoes it.
        """
        field = json.dumps({"authenticated_at": as_utc(at).isoformat()}, separators=(",", ":"))
        field = field[1:-1]
        key = f"{self.key_prefix}id:{session_id}"
        args: list[str | int] = [field, str(session_id), _micros(utcnow())]
        return _active(await self._run("record_authentication", [key], args))

    async def delete(self, session_id: UUID) -> Session | None:
        """Delete one session; return it if it existed and was active, else None."""
        key = f"{self.key_prefix}id:{session_id}"
        return _active(await self._run("delete", [key], [str(session_id)]))

    async def delete_for_user(self, user_id: UserId, *, keep: Sequence[UUID] = ()) -> list[Session]:
        """Delete all of a user's sessions except those in ``keep``; return the active ones."""
        args = [str(user_id), *map(str, keep)]
        return _all_active(await self._run("delete_for_user", [self._user_key(user_id)], args))

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete sessions whose deadline is at or before ``now``; return how many.

        TTL has already removed the data of most of them. What is counted is every expired
        session the store still tracked (its keys or its index entries), each once; entries
        already dropped by ``list_for_user`` or ``delete_for_user`` are not counted again.
        """
        args = [_micros(now or utcnow()), _PURGE_BATCH]
        total = 0
        while True:
            removed = int(await self._run("purge", [f"{self.key_prefix}deadlines"], args))
            total += removed
            if removed < _PURGE_BATCH:
                return total

    async def pop_expired(self, now: datetime | None = None, *, limit: int = 500) -> list[Session]:
        """Delete and return up to ``limit`` sessions due by ``now``, earliest deadline first.

        Index entries whose keys are already gone (expired longer ago than
        ``expired_grace``) are dropped on the way and not returned: nothing is left to
        report. Each script run looks at no more entries than it still has room for.
        """
        key, as_of = f"{self.key_prefix}deadlines", _micros(now or utcnow())
        popped: list[Session] = []
        while len(popped) < limit:
            wanted = limit - len(popped)
            looked_at, *raws = await self._run("pop_expired", [key], [as_of, wanted])
            popped += map(_decode, raws)
            if looked_at < wanted:
                break
        return popped

    async def purge_periodically(self, interval: float = 3600) -> None:
        """Run ``purge_expired`` every ``interval`` seconds, forever (start it in a task).

        It deletes expired sessions and drops the index entries of those whose keys TTL
        removed, without reporting them; an outage is logged and does not stop the loop.
        """
        await purge_periodically(self.purge_expired, interval)

    async def clear(self) -> None:
        """Delete every key under the prefix (with SCAN, never KEYS); for tests and operations."""
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.key_prefix) + "*"
        with _unavailable():
            await self._read_slot_map()
            batch: list[Any] = []
            async for key in self._redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    await self._redis.unlink(*batch)
                    batch.clear()
            if batch:
                await self._redis.unlink(*batch)

    async def aclose(self) -> None:
        """Close the Redis client if this store created it from a URL; else leave it open."""
        if self._owned:
            await self._redis.aclose()

    async def _run(self, script: str, keys: list[str], args: Sequence[str | int]) -> Any:
        with _unavailable(self._timeout):
            await self._read_slot_map()
            return await self._scripts[script](keys=keys, args=[self.key_prefix, *args])

    async def _read_slot_map(self) -> None:
        # redis-py's RedisCluster (8.1) picks a command's node before it has read the slot
        # map, so its first commands go to random nodes; a burst of them fails (the MOVED
        # replies reset connections other calls use, and a create retried after it ran
        # reports a duplicate). initialize() reads the map once, then returns at once; it
        # raises RedisClusterException when no node answers.
        if isinstance(self._redis, aioredis.RedisCluster):
            try:
                await self._redis.initialize()
            except rex.RedisClusterException as exc:
                raise store_unavailable("redis", exc) from exc

    def _session_key(self, digest: str) -> str:
        return f"{self.key_prefix}s2:{digest}"

    def _keys(self, session: Session) -> list[str]:
        return [self._session_key(session.token_digest), f"{self.key_prefix}id:{session.id}"]

    def _user_key(self, user_id: UserId) -> str:
        return f"{self.key_prefix}u:{user_id}"

    def _payload(self, session: Session) -> list[str | int]:
        """value, id-key ref, PXAT (ms, rounded up, plus the grace), deadline (us), member."""
        ref = f"{session.token_digest}:{session.user_id}"
        deadline = session.deadline
        if deadline is None:
            return [_encode(session), ref, "", 0, ""]
        micros = _micros(deadline)
        member = f"{session.id}:{session.user_id}"
        # Kept the grace after the deadline, or after now for a session written already
        # ended (expires_at in the past): pop_expired must still find it to report it.
        expire_ms = max(-(-micros // 1000), int(time.time() * 1000)) + self._grace_ms
        return [_encode(session), ref, expire_ms, micros, member]


def _hash_tag(key_prefix: str) -> str:
    """The hash tag Redis Cluster hashes every key under ``key_prefix`` by ("" if none).

    Redis hashes what lies between a key's first "{" and the first "}" after it, if not
    empty. Both must be in the prefix: else a user id later in the key could pick the slot.
    """
    start = key_prefix.find("{")
    end = key_prefix.find("}", start + 1)
    return key_prefix[start + 1 : end] if 0 <= start < end - 1 else ""


def _active(raw: bytes | str | None) -> Session | None:
    session = None if raw is None else _decode(raw)
    return session if session is not None and session.is_active() else None


def _all_active(raws: list[bytes | str]) -> list[Session]:
    now = utcnow()
    return [s for s in map(_decode, raws) if s.is_active(now)]
