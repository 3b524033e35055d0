"""Per-pull-request state set by commands: paused automatic reviews and ignored findings or rules."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from app.db import ensure_tables

metadata = MetaData()

pr_flags = Table(
    "pr_flags",
    metadata,
    Column("repo", String(200), primary_key=True),  # "owner/name", lower case
    Column("number", Integer, primary_key=True),
    Column("paused", Boolean, nullable=False, default=False),
    Column("updated_by", String(100), nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
)

pr_suppressions = Table(
    "pr_suppressions",
    metadata,
    Column("repo", String(200), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("kind", String(16), primary_key=True),  # "finding" | "rule"
    Column("target", String(200), primary_key=True),
    Column("created_by", String(100), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
)

handled_commands = Table(
    "pr_handled_commands",
    metadata,
    Column("repo", String(200), primary_key=True),
    Column("comment_id", BigInteger, primary_key=True),  # GitHub ids outgrow 32 bits
    Column("handled_at", Float, nullable=False),
)


@dataclass(frozen=True)
class Suppressions:
    finding_ids: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()

    def suppresses(self, finding_id: str, rule: str) -> bool:
        return finding_id in self.finding_ids or rule in self.rules

    def __bool__(self) -> bool:
        return bool(self.finding_ids or self.rules)


class PrState:
    """The table pair behind `/diffwise pause|resume|ignore`; the review handler reads it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_tables(engine, metadata)

    def is_paused(self, repo: str, number: int) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(pr_flags.c.paused).where(and_(pr_flags.c.repo == repo.lower(), pr_flags.c.number == number))
            ).first()
        return bool(row[0]) if row is not None else False

    def set_paused(self, repo: str, number: int, paused: bool, by: str = "") -> bool:
        """Set the flag; returns whether it was already in that state."""
        key = and_(pr_flags.c.repo == repo.lower(), pr_flags.c.number == number)
        values = {"paused": paused, "updated_by": by, "updated_at": time.time()}
        with self.engine.begin() as conn:
            row = conn.execute(select(pr_flags.c.paused).where(key)).first()
            if row is None:
                conn.execute(insert(pr_flags).values(repo=repo.lower(), number=number, **values))
                return not paused
            conn.execute(update(pr_flags).where(key).values(**values))
            return bool(row[0]) == paused

    def suppress(self, repo: str, number: int, kind: str, target: str, by: str = "") -> bool:
        """Record an ignore; returns False when it was already there."""
        if kind not in ("finding", "rule"):
            raise ValueError(f"unknown suppression kind {kind!r}")
        row = {"repo": repo.lower(), "number": number, "kind": kind, "target": target, "created_by": by}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(pr_suppressions).values(**row, created_at=time.time()))
        except IntegrityError:
            return False
        return True

    def unsuppress(self, repo: str, number: int, kind: str, target: str) -> None:
        t = pr_suppressions.c
        with self.engine.begin() as conn:
            conn.execute(
                delete(pr_suppressions).where(
                    and_(t.repo == repo.lower(), t.number == number, t.kind == kind, t.target == target)
                )
            )

    def suppressions(self, repo: str, number: int) -> Suppressions:
        t = pr_suppressions.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.kind, t.target).where(and_(t.repo == repo.lower(), t.number == number))).all()
        return Suppressions(
            frozenset(target for kind, target in rows if kind == "finding"),
            frozenset(target for kind, target in rows if kind == "rule"),
        )

    def claim_command(self, repo: str, comment_id: int) -> bool:
        """True the first time a comment's command is run; a redelivered webhook then finds it claimed."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(handled_commands).values(repo=repo.lower(), comment_id=comment_id, handled_at=time.time())
                )
        except IntegrityError:
            return False
        return True

    def release_command(self, repo: str, comment_id: int) -> None:
        """Undo a claim when the job will be retried, so the retry runs the command."""
        t = handled_commands.c
        with self.engine.begin() as conn:
            conn.execute(delete(handled_commands).where(and_(t.repo == repo.lower(), t.comment_id == comment_id)))


def is_paused(engine: Engine, repo: str, number: int) -> bool:
    """For the review handler: has `/diffwise pause` stopped automatic reviews on this PR?"""
    return PrState(engine).is_paused(repo, number)


def suppressions(engine: Engine, repo: str, number: int) -> Suppressions:
    """For the review pipeline: findings and rules ignored on this PR with `/diffwise ignore`."""
    return PrState(engine).suppressions(repo, number)


def state_for(settings: object) -> PrState:
    """The store for a process's Settings (DIFFWISE_STATE_DIR or DIFFWISE_DATABASE_URL)."""
    from app.db import database_url, get_engine

    state_dir = getattr(settings, "state_dir", ".diffwise")
    return PrState(get_engine(database_url(state_dir, getattr(settings, "database_url", None))))
