"""Dashboard sign-in sessions in the state database, so every web process (and a restart) sees the same ones.

The cookie holds only a random key; the table holds its SHA-256, never the key itself, so a copy of the
database does not sign anyone in. Signing out deletes the row, which ends the session everywhere at once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Column, Engine, Float, MetaData, String, Table, Text, delete, insert, select

from app.db import ensure_tables

SESSION_TTL = 8 * 3600

_metadata = MetaData()
sessions_table = Table(
    "dashboard_session",
    _metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("login", String(255), nullable=False),
    Column("repos", Text, nullable=True),  # JSON list of lower-case full names; NULL = every repository
    Column("expires", Float, nullable=False, index=True),
)


@dataclass(frozen=True)
class SessionViewer:
    login: str
    repos: frozenset[str] | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class StoredSessions:
    """create / get / drop, backed by a table; `engine` is called on first use (the store is opened lazily)."""

    engine: Callable[[], Engine]
    ttl: float = SESSION_TTL
    clock: Callable[[], float] = time.time
    _ready: bool = field(default=False, init=False)

    def _db(self) -> Engine:
        engine = self.engine()
        if not self._ready:
            ensure_tables(engine, _metadata)
            self._ready = True
        return engine

    def create(self, login: str, repos: frozenset[str] | None) -> str:
        now = self.clock()
        key = secrets.token_urlsafe(32)
        stored = None if repos is None else json.dumps(sorted(repos))
        with self._db().begin() as conn:
            conn.execute(delete(sessions_table).where(sessions_table.c.expires <= now))
            conn.execute(
                insert(sessions_table).values(key_hash=_hash(key), login=login, repos=stored, expires=now + self.ttl)
            )
        return key

    def get(self, key: str | None) -> SessionViewer | None:
        if not key or len(key) > 256:
            return None
        with self._db().connect() as conn:
            row = conn.execute(
                select(sessions_table.c.login, sessions_table.c.repos).where(
                    sessions_table.c.key_hash == _hash(key), sessions_table.c.expires > self.clock()
                )
            ).first()
        if row is None:
            return None
        repos = None if row.repos is None else frozenset(str(r) for r in json.loads(row.repos))
        return SessionViewer(str(row.login), repos)

    def drop(self, key: str | None) -> None:
        if not key or len(key) > 256:
            return
        with self._db().begin() as conn:
            conn.execute(delete(sessions_table).where(sessions_table.c.key_hash == _hash(key)))
