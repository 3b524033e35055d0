"""A sliding one-hour limit on costly commands, per user and per pull request, kept in the state store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, and_, delete, func, insert, select
from sqlalchemy.engine import Engine

from app.db import ensure_tables

WINDOW_SECONDS = 3600.0

metadata = MetaData()

command_usage = Table(
    "command_usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(300), nullable=False, index=True),  # "user:<login>" | "pr:<owner/repo>#<n>"
    Column("at", Float, nullable=False, index=True),
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until one more call would be allowed
    scope: str = ""  # which limit refused it


@dataclass(frozen=True)
class Limits:
    per_user: int
    per_pr: int

    @classmethod
    def from_hourly(cls, per_hour: int) -> Limits:
        """A user gets `per_hour`; a pull request, shared by everyone on it, twice that."""
        return cls(per_user=per_hour, per_pr=per_hour * 2)


class RateLimiter:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        ensure_tables(engine, metadata)

    def acquire(self, user: str, repo: str, number: int, limits: Limits) -> Decision:
        """Count one call against both scopes if both have room; otherwise refuse and record nothing."""
        now = self.clock()
        since = now - WINDOW_SECONDS
        scopes = ((f"user:{user.lower()}", limits.per_user), (f"pr:{repo.lower()}#{number}", limits.per_pr))
        t = command_usage.c
        with self.engine.begin() as conn:
            conn.execute(delete(command_usage).where(t.at < since))
            for scope, limit in scopes:
                count, oldest = conn.execute(
                    select(func.count(), func.min(t.at)).where(and_(t.scope == scope, t.at >= since))
                ).one()
                if count >= limit:
                    retry = (oldest + WINDOW_SECONDS - now) if oldest is not None else WINDOW_SECONDS
                    return Decision(False, max(retry, 1.0), scope)
            conn.execute(insert(command_usage), [{"scope": scope, "at": now} for scope, _ in scopes])
        return Decision(True)
