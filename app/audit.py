"""The LLM audit trail: one row per call (who, what prompt, which model, tokens, cost, findings kept/dropped)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, DateTime, Engine, Float, Integer, MetaData, String, Table, Text, func, select

from app.db import database_url, ensure_tables, get_engine

if TYPE_CHECKING:
    from app.llm_usage import LLMUsage

log = logging.getLogger(__name__)

metadata = MetaData()

llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # review | explain | ask
    Column("repo", String(200), nullable=False, default="", index=True),
    Column("pr_number", Integer, nullable=True),
    Column("head_sha", String(64), nullable=False, default=""),
    Column("prompt", String(200), nullable=False),
    Column("model", String(100), nullable=False),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cache_read_tokens", Integer, nullable=False, default=0),
    Column("cache_write_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("duration_ms", Integer, nullable=False, default=0),
    Column("files", Integer, nullable=False, default=0),
    Column("outcome", String(16), nullable=False),  # ok | malformed | error
    Column("error", Text, nullable=False, default=""),
    Column("returned", Integer, nullable=False, default=0),
    Column("kept", Integer, nullable=False, default=0),
    Column("dropped", Integer, nullable=False, default=0),
    Column("drop_reasons", Text, nullable=False, default="{}"),  # JSON {reason: count}
)


@dataclass(frozen=True)
class AuditEntry:
    kind: str
    prompt: str
    model: str
    repo: str = ""
    pr_number: int | None = None
    head_sha: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: int = 0
    files: int = 0
    outcome: str = "ok"
    error: str = ""
    returned: int = 0
    kept: int = 0
    dropped: int = 0
    drop_reasons: Mapping[str, int] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: int | None = None

    @classmethod
    def of_call(
        cls,
        kind: str,
        prompt: str,
        model: str,
        usage: LLMUsage,
        started: float,
        *,
        repo: str = "",
        pr_number: int | None = None,
        head_sha: str = "",
        files: int = 0,
        outcome: str = "ok",
        error: str = "",
        returned: int = 0,
        kept: int = 0,
        dropped: int = 0,
        drop_reasons: Mapping[str, int] | None = None,
    ) -> AuditEntry:
        """One LLM call's row: tokens and cost from its `usage`, the time since `started` (a `time.monotonic()`),
        the error clipped to 500 characters."""
        return cls(
            kind=kind,
            prompt=prompt,
            model=model,
            repo=repo,
            pr_number=pr_number,
            head_sha=head_sha,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cost_usd=usage.cost_usd,
            duration_ms=int((time.monotonic() - started) * 1000),
            files=files,
            outcome=outcome,
            error=error[:500],
            returned=returned,
            kept=kept,
            dropped=dropped,
            drop_reasons=dict(drop_reasons or {}),
        )

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["at"] = self.at.isoformat()
        data["drop_reasons"] = dict(self.drop_reasons)
        return data


@dataclass(frozen=True)
class AuditTotals:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    returned: int = 0
    kept: int = 0
    dropped: int = 0
    failures: int = 0
    reviews: int = 0  # distinct (repo, PR, head SHA) reviewed
    drop_reasons: Mapping[str, int] = field(default_factory=dict)
    by_model: Mapping[str, int] = field(default_factory=dict)

    @property
    def cache_hit_share(self) -> float:
        total = self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
        return self.cache_read_tokens / total if total else 0.0

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["drop_reasons"] = dict(self.drop_reasons)
        data["by_model"] = dict(self.by_model)
        data["cache_hit_share"] = round(self.cache_hit_share, 4)
        data["cost_usd"] = round(self.cost_usd, 6)
        return data


class AuditLog:
    """Writes and queries `llm_calls` in the state store (its own table on its own MetaData)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_tables(engine, metadata)

    @classmethod
    def from_settings(cls, settings: Any = None) -> AuditLog:
        def get(name: str) -> Any:
            return settings.get(name) if isinstance(settings, Mapping) else getattr(settings, name, None)

        state_dir = get("state_dir") or os.environ.get("DIFFWISE_STATE_DIR") or ".diffwise"
        url = get("database_url")
        return cls(get_engine(database_url(state_dir, url)))

    def record(self, entry: AuditEntry) -> None:
        """Never raises: an audit failure is logged, the review goes on."""
        row = entry.to_json()
        row.pop("id")
        row["at"] = entry.at
        row["drop_reasons"] = json.dumps(dict(entry.drop_reasons), sort_keys=True)
        try:
            with self.engine.begin() as conn:
                conn.execute(llm_calls.insert().values(**row))
        except Exception:
            log.exception("could not record an LLM audit entry")

    def query(
        self, repo: str | None = None, pr_number: int | None = None, limit: int = 50, kind: str | None = None
    ) -> list[AuditEntry]:
        """Newest first."""
        stmt = select(llm_calls).order_by(llm_calls.c.at.desc(), llm_calls.c.id.desc()).limit(max(1, limit))
        if repo:
            stmt = stmt.where(llm_calls.c.repo == repo)
        if pr_number is not None:
            stmt = stmt.where(llm_calls.c.pr_number == pr_number)
        if kind:
            stmt = stmt.where(llm_calls.c.kind == kind)
        with self.engine.connect() as conn:
            return [_entry(row._mapping) for row in conn.execute(stmt)]

    def totals(self, repo: str | None = None) -> AuditTotals:
        stmt = select(llm_calls)
        if repo:
            stmt = stmt.where(llm_calls.c.repo == repo)
        reasons: Counter[str] = Counter()
        models: Counter[str] = Counter()
        sums: Counter[str] = Counter()
        cost = 0.0
        reviews: set[tuple[str, int | None, str]] = set()
        with self.engine.connect() as conn:
            for row in conn.execute(stmt):
                m = row._mapping
                for name in (
                    "input_tokens",
                    "output_tokens",
                    "cache_read_tokens",
                    "cache_write_tokens",
                    "returned",
                    "kept",
                    "dropped",
                ):
                    sums[name] += int(m[name] or 0)
                sums["calls"] += 1
                sums["failures"] += m["outcome"] != "ok"
                cost += float(m["cost_usd"] or 0.0)
                models[m["model"]] += 1
                reasons.update(_reasons(m["drop_reasons"]))
                if m["kind"] == "review":
                    reviews.add((m["repo"], m["pr_number"], m["head_sha"]))
        return AuditTotals(
            calls=sums["calls"],
            input_tokens=sums["input_tokens"],
            output_tokens=sums["output_tokens"],
            cache_read_tokens=sums["cache_read_tokens"],
            cache_write_tokens=sums["cache_write_tokens"],
            cost_usd=cost,
            returned=sums["returned"],
            kept=sums["kept"],
            dropped=sums["dropped"],
            failures=sums["failures"],
            reviews=len(reviews),
            drop_reasons=dict(reasons),
            by_model=dict(models),
        )

    def repos(self) -> list[str]:
        with self.engine.connect() as conn:
            stmt = select(llm_calls.c.repo, func.count()).group_by(llm_calls.c.repo).order_by(llm_calls.c.repo)
            return [str(r[0]) for r in conn.execute(stmt)]


def _reasons(raw: str | None) -> dict[str, int]:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _entry(m: Any) -> AuditEntry:
    at = m["at"]
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # SQLite drops the zone; we always write UTC
    return AuditEntry(
        kind=m["kind"],
        prompt=m["prompt"],
        model=m["model"],
        repo=m["repo"] or "",
        pr_number=m["pr_number"],
        head_sha=m["head_sha"] or "",
        input_tokens=m["input_tokens"],
        output_tokens=m["output_tokens"],
        cache_read_tokens=m["cache_read_tokens"],
        cache_write_tokens=m["cache_write_tokens"],
        cost_usd=m["cost_usd"],
        duration_ms=m["duration_ms"],
        files=m["files"],
        outcome=m["outcome"],
        error=m["error"] or "",
        returned=m["returned"],
        kept=m["kept"],
        dropped=m["dropped"],
        drop_reasons=_reasons(m["drop_reasons"]),
        at=at,
        id=m["id"],
    )
