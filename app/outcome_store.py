"""Finding outcomes in the state store: findings posted, their outcomes, per-repo rule stats (any SQLAlchemy URL)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from app.db import database_url, ensure_tables, get_engine
from app.outcomes import Classification, Outcome, PostedFinding

metadata = MetaData()

finding_posts = Table(
    "finding_posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repo", String(200), nullable=False, index=True),  # "owner/name", lower case
    Column("pr_number", Integer, nullable=False),
    Column("finding_id", String(64), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("analyzer", String(100), nullable=False),
    Column("source", String(16), nullable=False),  # analyzer | llm
    Column("severity", String(16), nullable=False),
    Column("path", Text, nullable=False, default=""),
    Column("comment_id", BigInteger, nullable=True),  # GitHub ids outgrow 32 bits
    Column("posted_at", Float, nullable=False, index=True),
    UniqueConstraint("repo", "pr_number", "finding_id", name="uq_finding_posts"),
)

finding_outcomes = Table(
    "finding_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repo", String(200), nullable=False, index=True),
    Column("pr_number", Integer, nullable=False),
    Column("finding_id", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),  # applied | dismissed | disputed | unaddressed
    Column("reason", Text, nullable=False, default=""),
    Column("classified_at", Float, nullable=False, index=True),
    UniqueConstraint("repo", "pr_number", "finding_id", name="uq_finding_outcomes"),
)

pr_closures = Table(
    "pr_closures",
    metadata,
    Column("repo", String(200), primary_key=True),
    Column("pr_number", Integer, primary_key=True),
    Column("merged", Boolean, nullable=False, default=False),
    Column("closed_at", Float, nullable=False),
    Column("classified_at", Float, nullable=False),
    Column("opened_at", Float, nullable=True),  # the PR's created_at
    Column("first_review_at", Float, nullable=True),  # the bot's first review on GitHub, if any
)


@dataclass(frozen=True)
class OutcomeRow:
    """A posted finding joined with its outcome (None until its PR is classified)."""

    repo: str
    pr_number: int
    finding_id: str
    rule: str
    analyzer: str
    source: str
    severity: str
    posted_at: float
    outcome: str | None
    reason: str
    classified_at: float | None


@dataclass(frozen=True)
class RuleStats:
    repo: str
    rule: str
    samples: int  # classified findings
    applied: int
    dismissed: int
    disputed: int
    unaddressed: int

    @property
    def dismissal_rate(self) -> float:
        return self.dismissed / self.samples if self.samples else 0.0

    @property
    def acceptance_rate(self) -> float:
        return self.applied / self.samples if self.samples else 0.0


def iso_to_epoch(value: str | None, default: float | None = None) -> float:
    """GitHub's `2024-05-01T12:00:00Z` as seconds since the epoch; `default` (now) when absent or odd."""
    if value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time() if default is None else default


class OutcomeStore:
    """The three outcome tables on their own MetaData; every method opens its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_tables(engine, metadata)

    @classmethod
    def from_settings(cls, settings: Any = None) -> OutcomeStore:
        state_dir = getattr(settings, "state_dir", None) or os.environ.get("DIFFWISE_STATE_DIR") or ".diffwise"
        return cls(get_engine(database_url(state_dir, getattr(settings, "database_url", None))))

    # ---- writes ---------------------------------------------------------------------------------
    def record_posted(self, repo: str, pr_number: int, findings: Iterable[PostedFinding]) -> int:
        """Remember findings as posted (first time only); returns how many were new."""
        repo = repo.lower()
        new = 0
        for f in findings:
            row = {
                "repo": repo,
                "pr_number": pr_number,
                "finding_id": f.finding_id,
                "rule": f.rule,
                "analyzer": f.analyzer,
                "source": f.source,
                "severity": f.severity,
                "path": f.path,
                "comment_id": f.comment_id or None,
                "posted_at": iso_to_epoch(f.posted_at),
            }
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(finding_posts).values(**row))
                new += 1
            except IntegrityError:
                continue
        return new

    def record_outcomes(
        self,
        repo: str,
        pr_number: int,
        classifications: Iterable[Classification],
        *,
        merged: bool = False,
        closed_at: float | None = None,
        opened_at: float | None = None,
        first_review_at: float | None = None,
    ) -> None:
        """Replace this PR's outcomes (a later classification of the same PR wins); with `closed_at`, its closure too.

        Without `closed_at` (an on-demand classification of an open PR) no closure is recorded.
        """
        items = list(classifications)
        self.record_posted(repo, pr_number, (c.finding for c in items))
        repo = repo.lower()
        now = time.time()
        key = and_(finding_outcomes.c.repo == repo, finding_outcomes.c.pr_number == pr_number)
        with self.engine.begin() as conn:
            conn.execute(delete(finding_outcomes).where(key))
            if items:
                conn.execute(
                    insert(finding_outcomes),
                    [
                        {
                            "repo": repo,
                            "pr_number": pr_number,
                            "finding_id": c.finding.finding_id,
                            "outcome": c.outcome.value,
                            "reason": c.reason,
                            "classified_at": now,
                        }
                        for c in {c.finding.finding_id: c for c in items}.values()
                    ],
                )
            if closed_at is None:
                return
            conn.execute(
                delete(pr_closures).where(and_(pr_closures.c.repo == repo, pr_closures.c.pr_number == pr_number))
            )
            conn.execute(
                insert(pr_closures).values(
                    repo=repo,
                    pr_number=pr_number,
                    merged=merged,
                    closed_at=closed_at,
                    classified_at=now,
                    opened_at=opened_at,
                    first_review_at=first_review_at,
                )
            )

    # ---- reads ----------------------------------------------------------------------------------
    def rows(self, repo: str | None = None, since: float | None = None) -> list[OutcomeRow]:
        p, o = finding_posts.c, finding_outcomes.c
        join = finding_posts.outerjoin(
            finding_outcomes, and_(o.repo == p.repo, o.pr_number == p.pr_number, o.finding_id == p.finding_id)
        )
        stmt = select(
            p.repo,
            p.pr_number,
            p.finding_id,
            p.rule,
            p.analyzer,
            p.source,
            p.severity,
            p.posted_at,
            o.outcome,
            o.reason,
            o.classified_at,
        ).select_from(join)
        if repo:
            stmt = stmt.where(p.repo == repo.lower())
        if since is not None:
            stmt = stmt.where(p.posted_at >= since)
        with self.engine.connect() as conn:
            return [_row(r._mapping) for r in conn.execute(stmt.order_by(p.posted_at, p.id))]

    def rule_stats(self, repo: str | None = None, since: float | None = None) -> list[RuleStats]:
        """Per repository and rule: classified findings by outcome (one GROUP BY, any backend)."""
        p, o = finding_posts.c, finding_outcomes.c
        join = finding_posts.join(
            finding_outcomes, and_(o.repo == p.repo, o.pr_number == p.pr_number, o.finding_id == p.finding_id)
        )
        stmt = (
            select(p.repo, p.rule, o.outcome, func.count())
            .select_from(join)
            .group_by(p.repo, p.rule, o.outcome)
            .order_by(p.repo, p.rule)
        )
        if repo:
            stmt = stmt.where(p.repo == repo.lower())
        if since is not None:
            stmt = stmt.where(p.posted_at >= since)
        counts: dict[tuple[str, str], dict[str, int]] = {}
        with self.engine.connect() as conn:
            for r_repo, rule, outcome, n in conn.execute(stmt):
                counts.setdefault((r_repo, rule), {})[outcome] = int(n)
        return [_stats(r_repo, rule, c) for (r_repo, rule), c in counts.items()]

    def closures(self, repo: str | None = None) -> list[dict[str, Any]]:
        stmt = select(pr_closures).order_by(pr_closures.c.closed_at)
        if repo:
            stmt = stmt.where(pr_closures.c.repo == repo.lower())
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def repos(self) -> list[str]:
        with self.engine.connect() as conn:
            stmt = select(finding_posts.c.repo).distinct().order_by(finding_posts.c.repo)
            return [str(r[0]) for r in conn.execute(stmt)]


def _stats(repo: str, rule: str, counts: Mapping[str, int]) -> RuleStats:
    return RuleStats(
        repo=repo,
        rule=rule,
        samples=sum(counts.values()),
        applied=counts.get(Outcome.APPLIED.value, 0),
        dismissed=counts.get(Outcome.DISMISSED.value, 0),
        disputed=counts.get(Outcome.DISPUTED.value, 0),
        unaddressed=counts.get(Outcome.UNADDRESSED.value, 0),
    )


def _row(m: Any) -> OutcomeRow:
    return OutcomeRow(
        repo=m["repo"],
        pr_number=int(m["pr_number"]),
        finding_id=m["finding_id"],
        rule=m["rule"],
        analyzer=m["analyzer"],
        source=m["source"],
        severity=m["severity"],
        posted_at=float(m["posted_at"]),
        outcome=m["outcome"],
        reason=m["reason"] or "",
        classified_at=m["classified_at"],
    )
