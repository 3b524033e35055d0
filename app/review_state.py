"""What diffwise reviewed: per PR and head SHA, with what it posted (the local side of idempotency)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, and_, insert, select
from sqlalchemy.engine import Engine

from app.db import ensure_tables

metadata = MetaData()

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repo", String(200), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("head_sha", String(64), nullable=False),
    Column("reviewed_at", Float, nullable=False),
    Column("opened_at", Float, nullable=True),
    Column("findings", Integer, nullable=False, default=0),
    Column("inline", Integer, nullable=False, default=0),
    Column("in_summary", Integer, nullable=False, default=0),
    Column("rejected", Integer, nullable=False, default=0),
    Column("api_calls", Integer, nullable=False, default=0),
    Column("incremental_from", String(64), nullable=True),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("status", String(32), nullable=False, default="reviewed"),  # reviewed | skipped:<reason>
    Column("posted_ids", Text, nullable=False, default="[]"),
)


@dataclass(frozen=True)
class ReviewRecord:
    repo: str
    number: int
    head_sha: str
    reviewed_at: float
    status: str
    posted_ids: tuple[str, ...]


class ReviewState:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_tables(engine, metadata)

    def record(
        self,
        repo: str,
        number: int,
        head_sha: str,
        *,
        findings: int = 0,
        inline: int = 0,
        in_summary: int = 0,
        rejected: int = 0,
        api_calls: int = 0,
        incremental_from: str | None = None,
        cost_usd: float = 0.0,
        status: str = "reviewed",
        posted_ids: list[str] | tuple[str, ...] = (),
        opened_at: float | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(reviews).values(
                    repo=repo,
                    number=number,
                    head_sha=head_sha,
                    reviewed_at=time.time(),
                    opened_at=opened_at,
                    findings=findings,
                    inline=inline,
                    in_summary=in_summary,
                    rejected=rejected,
                    api_calls=api_calls,
                    incremental_from=incremental_from,
                    cost_usd=cost_usd,
                    status=status,
                    posted_ids=json.dumps(list(posted_ids)),
                )
            )

    def last_reviewed(self, repo: str, number: int) -> ReviewRecord | None:
        """The most recent completed review of this PR (skips are not reviews)."""
        query = (
            select(reviews)
            .where(and_(reviews.c.repo == repo, reviews.c.number == number, reviews.c.status == "reviewed"))
            .order_by(reviews.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return ReviewRecord(
            row["repo"],
            row["number"],
            row["head_sha"],
            row["reviewed_at"],
            row["status"],
            tuple(json.loads(row["posted_ids"] or "[]")),
        )

    def was_reviewed(self, repo: str, number: int, head_sha: str) -> bool:
        query = select(reviews.c.id).where(
            and_(
                reviews.c.repo == repo,
                reviews.c.number == number,
                reviews.c.head_sha == head_sha,
                reviews.c.status == "reviewed",
            )
        )
        with self.engine.connect() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def all(self, repo: str | None = None) -> list[dict[str, object]]:
        query = select(reviews).order_by(reviews.c.id)
        if repo:
            query = query.where(reviews.c.repo == repo)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
