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
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

SESSION_TTL = 8 * 3600


@cache
def _table() -> Any:
    """The table, built on first use: importing this module (every web process does) loads no SQLAlchemy."""
    from sqlalchemy import Column, Float, MetaData, String, Table, Text

    return Table(
        "dashboard_session",
        MetaData(),
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
        from app.db import ensure_tables

        engine = self.engine()
        if not self._ready:
            ensure_tables(engine, _table().metadata)
            self._ready = True
        return engine

    def create(self, login: str, repos: frozenset[str] | None) -> str:
        now = self.clock()
        key = secrets.token_urlsafe(32)
        from sqlalchemy import delete, insert

        stored = None if repos is None else json.dumps(sorted(repos))
        table = _table()
        with self._db().begin() as conn:
            conn.execute(delete(table).where(table.c.expires <= now))
            conn.execute(insert(table).values(key_hash=_hash(key), login=login, repos=stored, expires=now + self.ttl))
        return key

    def get(self, key: str | None) -> SessionViewer | None:
        if not key or len(key) > 256:
            return None
        from sqlalchemy import select

        table = _table()
        with self._db().connect() as conn:
            row = conn.execute(
                select(table.c.login, table.c.repos).where(
                    table.c.key_hash == _hash(key), table.c.expires > self.clock()
                )
            ).first()
        if row is None:
            return None
        repos = None if row.repos is None else frozenset(str(r) for r in json.loads(row.repos))
        return SessionViewer(str(row.login), repos)

    def drop(self, key: str | None) -> None:
        if not key or len(key) > 256:
            return
        from sqlalchemy import delete

        table = _table()
        with self._db().begin() as conn:
            conn.execute(delete(table).where(table.c.key_hash == _hash(key)))
