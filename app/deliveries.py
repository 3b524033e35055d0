"""The delivery ledger: dedupe on X-GitHub-Delivery, job state and leases, per-PR locks and head order, dead letters.

Two backends share one protocol: SQLite (the huey queue file itself, so accepting a delivery and queueing its job
is one transaction) and Redis (next to RedisHuey's queue). States: queued → running → done | superseded | dead,
or running → retrying → running. A job whose lease runs out while `running` or `retrying` (its worker died) is
handed back by `reclaim_stale` with the payload the worker saved when it claimed it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from app.delivery import Delivery

if TYPE_CHECKING:
    from sqlalchemy import Engine, MetaData, Table

Encode = Callable[[Delivery], bytes]
RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class Head:
    """The newest review-triggering delivery seen for one pull request."""

    received_at: float
    delivery_id: str


class Ledger(Protocol):
    def accept(self, deliveries: Sequence[Delivery], encode: Encode) -> list[bool]: ...
    def claim(self, delivery_id: str, owner: str, lease: float, payload: bytes) -> bool: ...
    def renew(self, delivery_id: str, owner: str, lease: float) -> None: ...
    def retrying(self, delivery_id: str, until: float) -> None: ...
    def finish(self, delivery_id: str, state: str, error: str | None = None) -> None: ...
    def state(self, delivery_id: str) -> str | None: ...
    def reclaim_stale(self, now: float) -> list[bytes]: ...
    def prune(self, before: float) -> int: ...
    def acquire_lock(self, key: str, owner: str, lease: float) -> bool: ...
    def renew_lock(self, key: str, owner: str, lease: float) -> bool: ...
    def release_lock(self, key: str, owner: str) -> None: ...
    def note_head(self, key: str, head: Head) -> None: ...
    def newest(self, key: str) -> Head | None: ...
    def ping(self) -> None: ...


_SQLITE_DDL = (
    "create table if not exists delivery (id text primary key, event text not null, received_at real not null,"
    " state text not null, attempts integer not null default 0, owner text, lease_until real, payload blob,"
    " error text, updated_at real not null)",
    "create index if not exists delivery_lease on delivery (state, lease_until)",
    "create table if not exists lease (key text primary key, owner text not null, expires real not null)",
    "create table if not exists pr_head (key text primary key, received_at real not null, delivery_id text not null)",
)


class SqliteLedger:
    """Ledger tables inside huey's SQLite file; every write goes through huey's connection and lock."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self._queue = storage.name
        with storage.db(commit=True) as cur:
            for statement in _SQLITE_DDL:
                cur.execute(statement)

    def accept(self, deliveries: Sequence[Delivery], encode: Encode) -> list[bool]:
        """Dedupe and enqueue a batch in one transaction: durable on return (group commit)."""
        accepted: list[bool] = []
        now = time.time()
        with self._storage.db(commit=True) as cur:
            for d in deliveries:
                cur.execute(
                    "insert or ignore into delivery (id, event, received_at, state, updated_at)"
                    " values (?, ?, ?, 'queued', ?)",
                    (d.id, d.event, d.received_at, now),
                )
                fresh = cur.rowcount == 1
                if fresh:
                    cur.execute("insert into task (queue, data, priority) values (?, ?, 0)", (self._queue, encode(d)))
                accepted.append(fresh)
        return accepted

    def claim(self, delivery_id: str, owner: str, lease: float, payload: bytes) -> bool:
        now = time.time()
        with self._storage.db(commit=True) as cur:
            cur.execute(
                "insert or ignore into delivery (id, event, received_at, state, updated_at)"
                " values (?, '', ?, 'queued', ?)",
                (delivery_id, now, now),
            )
            cur.execute(
                "update delivery set state = 'running', owner = ?, lease_until = ?, payload = ?,"
                " attempts = attempts + 1, updated_at = ? where id = ? and state in ('queued', 'retrying')",
                (owner, now + lease, payload, now, delivery_id),
            )
            return cur.rowcount == 1

    def renew(self, delivery_id: str, owner: str, lease: float) -> None:
        self._storage.sql(
            "update delivery set lease_until = ? where id = ? and owner = ? and state = 'running'",
            (time.time() + lease, delivery_id, owner),
            commit=True,
        )

    def retrying(self, delivery_id: str, until: float) -> None:
        self._storage.sql(
            "update delivery set state = 'retrying', owner = null, lease_until = ?, updated_at = ? where id = ?",
            (until, time.time(), delivery_id),
            commit=True,
        )

    def finish(self, delivery_id: str, state: str, error: str | None = None) -> None:
        self._storage.sql(
            "update delivery set state = ?, error = ?, payload = null, owner = null, lease_until = null,"
            " updated_at = ? where id = ?",
            (state, error, time.time(), delivery_id),
            commit=True,
        )

    def state(self, delivery_id: str) -> str | None:
        rows = self._storage.sql("select state from delivery where id = ?", (delivery_id,), results=True)
        return rows[0][0] if rows else None

    def reclaim_stale(self, now: float) -> list[bytes]:
        with self._storage.db(commit=True) as cur:
            cur.execute(
                "select id, payload from delivery where state in ('running', 'retrying') and lease_until < ?"
                " and payload is not null",
                (now,),
            )
            rows = cur.fetchall()
            for delivery_id, _ in rows:
                cur.execute(
                    "update delivery set state = 'queued', owner = null, lease_until = null, updated_at = ?"
                    " where id = ?",
                    (now, delivery_id),
                )
            return [bytes(payload) for _, payload in rows]

    def prune(self, before: float) -> int:
        """Forget finished deliveries and PR heads last touched before `before` (the dedupe window)."""
        with self._storage.db(commit=True) as cur:
            cur.execute(
                "delete from delivery where state in ('done', 'superseded', 'dead') and updated_at < ?", (before,)
            )
            removed = int(cur.rowcount)
            cur.execute("delete from pr_head where received_at < ?", (before,))
            cur.execute("delete from lease where expires < ?", (before,))
        return removed

    def acquire_lock(self, key: str, owner: str, lease: float) -> bool:
        now = time.time()
        with self._storage.db(commit=True) as cur:
            cur.execute(
                "insert into lease (key, owner, expires) values (?, ?, ?) on conflict (key) do update"
                " set owner = excluded.owner, expires = excluded.expires where lease.expires < ? or lease.owner = ?",
                (key, owner, now + lease, now, owner),
            )
            return cur.rowcount == 1

    def renew_lock(self, key: str, owner: str, lease: float) -> bool:
        with self._storage.db(commit=True) as cur:
            cur.execute("update lease set expires = ? where key = ? and owner = ?", (time.time() + lease, key, owner))
            return cur.rowcount == 1

    def release_lock(self, key: str, owner: str) -> None:
        self._storage.sql("delete from lease where key = ? and owner = ?", (key, owner), commit=True)

    def note_head(self, key: str, head: Head) -> None:
        self._storage.sql(
            "insert into pr_head (key, received_at, delivery_id) values (?, ?, ?) on conflict (key) do update"
            " set received_at = excluded.received_at, delivery_id = excluded.delivery_id"
            " where excluded.received_at > pr_head.received_at",
            (key, head.received_at, head.delivery_id),
            commit=True,
        )

    def newest(self, key: str) -> Head | None:
        rows = self._storage.sql("select received_at, delivery_id from pr_head where key = ?", (key,), results=True)
        return Head(rows[0][0], rows[0][1]) if rows else None

    def ping(self) -> None:
        self._storage.sql("select 1", results=True)


_REDIS_CLAIM = """
local state = redis.call('GET', KEYS[1])
if state and state ~= 'queued' and state ~= 'retrying' then return 0 end
redis.call('SET', KEYS[1], 'running', 'EX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
"""
_REDIS_ACCEPT = """
local out = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], 'queued', 'NX', 'EX', ARGV[1]) then
    redis.call('LPUSH', KEYS[1], ARGV[i])
    out[i - 1] = 1
  else
    out[i - 1] = 0
  end
end
return out
"""
_REDIS_RECLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local payload = redis.call('HGET', KEYS[2], id)
  if payload then
    redis.call('SET', ARGV[2] .. id, 'queued', 'KEEPTTL')
    table.insert(out, payload)
  end
end
return out
"""
_REDIS_RENEW_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_REDIS_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_REDIS_NOTE_HEAD = """
local current = redis.call('HGET', KEYS[1], 'at')
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'at', ARGV[1], 'id', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class RedisLedger:
    """Ledger keys next to RedisHuey's queue: SET NX for dedupe, a sorted set of leases, Lua for compare-and-set."""

    def __init__(self, storage: Any, prefix: str = "diffwise") -> None:
        self._storage = storage
        self._redis = storage.conn
        self._prefix = f"{prefix}:{storage.name}:"
        self._running = self._prefix + "running"
        self._payloads = self._prefix + "payload"
        self._accept = self._redis.register_script(_REDIS_ACCEPT)
        self._claim = self._redis.register_script(_REDIS_CLAIM)
        self._reclaim = self._redis.register_script(_REDIS_RECLAIM)
        self._renew_lock = self._redis.register_script(_REDIS_RENEW_LOCK)
        self._release_lock = self._redis.register_script(_REDIS_RELEASE_LOCK)
        self._note_head = self._redis.register_script(_REDIS_NOTE_HEAD)

    def _key(self, delivery_id: str) -> str:
        return f"{self._prefix}d:{delivery_id}"

    def accept(self, deliveries: Sequence[Delivery], encode: Encode) -> list[bool]:
        """Mark-and-push in one Lua call, so a delivery is never marked seen without its job queued."""
        keys = [self._storage.queue_key, *(self._key(d.id) for d in deliveries)]
        flags = self._accept(keys=keys, args=[RETENTION_SECONDS, *(encode(d) for d in deliveries)])
        return [bool(flag) for flag in flags]

    def claim(self, delivery_id: str, owner: str, lease: float, payload: bytes) -> bool:
        del owner  # the lease set is keyed by delivery id; one claim per state transition
        keys = [self._key(delivery_id), self._running, self._payloads]
        return bool(self._claim(keys=keys, args=[delivery_id, time.time() + lease, payload, RETENTION_SECONDS]))

    def renew(self, delivery_id: str, owner: str, lease: float) -> None:
        del owner
        self._redis.zadd(self._running, {delivery_id: time.time() + lease}, xx=True)

    def retrying(self, delivery_id: str, until: float) -> None:
        pipe = self._redis.pipeline()
        pipe.set(self._key(delivery_id), "retrying", keepttl=True)
        pipe.zadd(self._running, {delivery_id: until})
        pipe.execute()

    def finish(self, delivery_id: str, state: str, error: str | None = None) -> None:
        del error  # kept in the dead-letter table, not in Redis
        pipe = self._redis.pipeline()
        pipe.set(self._key(delivery_id), state, ex=RETENTION_SECONDS)
        pipe.zrem(self._running, delivery_id)
        pipe.hdel(self._payloads, delivery_id)
        pipe.execute()

    def state(self, delivery_id: str) -> str | None:
        value = self._redis.get(self._key(delivery_id))
        return value.decode() if isinstance(value, bytes) else value

    def reclaim_stale(self, now: float) -> list[bytes]:
        payloads = self._reclaim(keys=[self._running, self._payloads], args=[now, self._prefix + "d:"])
        return [bytes(p) for p in payloads]

    def prune(self, before: float) -> int:
        del before  # every Redis key carries its own TTL
        return 0

    def acquire_lock(self, key: str, owner: str, lease: float) -> bool:
        lock = self._prefix + "lock:" + key
        if self._redis.set(lock, owner, nx=True, px=int(lease * 1000)):
            return True
        current = self._redis.get(lock)
        return current is not None and current.decode() == owner

    def renew_lock(self, key: str, owner: str, lease: float) -> bool:
        return bool(self._renew_lock(keys=[self._prefix + "lock:" + key], args=[owner, int(lease * 1000)]))

    def release_lock(self, key: str, owner: str) -> None:
        self._release_lock(keys=[self._prefix + "lock:" + key], args=[owner])

    def note_head(self, key: str, head: Head) -> None:
        self._note_head(
            keys=[self._prefix + "head:" + key], args=[repr(head.received_at), head.delivery_id, RETENTION_SECONDS]
        )

    def newest(self, key: str) -> Head | None:
        values = self._redis.hmget(self._prefix + "head:" + key, ["at", "id"])
        if values[0] is None or values[1] is None:
            return None
        return Head(float(values[0]), values[1].decode())

    def ping(self) -> None:
        self._redis.ping()


@functools.cache
def _dead_letter_table() -> tuple[MetaData, Table]:
    """The table, built on first use: SQLAlchemy stays out of the receiver's import path."""
    from sqlalchemy import Column, Float, Integer, LargeBinary, MetaData, String, Table, Text

    metadata = MetaData()
    table = Table(
        "dead_letter",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("delivery_id", String(200), nullable=False, index=True),
        Column("event", String(100), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("error", Text, nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("created_at", Float, nullable=False),
    )
    return metadata, table


def __getattr__(name: str) -> Any:
    # `from app.deliveries import dead_letter` still works (app.metrics counts rows with it).
    if name == "dead_letter":
        return _dead_letter_table()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class DeadLetter:
    delivery_id: str
    event: str
    attempts: int
    error: str
    created_at: float


class DeadLetters:
    """Jobs that kept failing, with the error and the raw body, in the state store (app.db)."""

    def __init__(self, engine: Engine) -> None:
        from app.db import ensure_tables

        self._engine = engine
        metadata, self._table = _dead_letter_table()
        ensure_tables(engine, metadata)

    def record(self, delivery: Delivery, error: str) -> None:
        from sqlalchemy import insert

        with self._engine.begin() as conn:
            conn.execute(
                insert(self._table).values(
                    delivery_id=delivery.id,
                    event=delivery.event,
                    attempts=delivery.attempt + 1,
                    error=error[:10_000],
                    body=delivery.body,
                    created_at=time.time(),
                )
            )

    def recent(self, limit: int = 50) -> list[DeadLetter]:
        from sqlalchemy import select

        t = self._table
        query = select(t.c.delivery_id, t.c.event, t.c.attempts, t.c.error, t.c.created_at)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.id.desc()).limit(limit)).all()
        return [DeadLetter(r[0], r[1], r[2], r[3], r[4]) for r in rows]
