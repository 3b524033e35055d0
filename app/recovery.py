"""Missed-webhook recovery: find the App's failed deliveries and ask GitHub to redeliver them, once per GUID.

GitHub does not retry a failed webhook by itself. On start and every few minutes this lists the App's recent
deliveries (`GET /app/hook/deliveries`, App JWT, cursor pagination), keeps the GUIDs that have no successful
attempt, and asks for a redelivery (`POST /app/hook/deliveries/{id}/attempts`) of the newest failed attempt
of each. What was asked is remembered in the state store, so neither a restart nor a second web process asks
twice beyond the per-GUID bound. A redelivery keeps its GUID, which the receiver's ledger dedupes anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Engine, Float, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.db import database_url, ensure_tables, get_engine
from app.settings import Settings

log = logging.getLogger("diffwise.recovery")

RETENTION = 3 * 24 * 3600.0  # GitHub keeps hook deliveries for three days

metadata = MetaData()
redeliveries = Table(
    "recovery_redeliveries",
    metadata,
    Column("guid", String(100), primary_key=True),
    Column("event", String(100), nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_delivery_id", Integer, nullable=False),
    Column("requested_at", Float, nullable=False),
)
checkpoints = Table(
    "recovery_checkpoint",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("at", Float, nullable=False),
)


@dataclass(frozen=True)
class RecoveryPolicy:
    interval: float = 300.0  # seconds between runs
    initial_delay: float = 10.0  # let the receiver start listening before GitHub redelivers to it
    first_lookback: float = 24 * 3600.0  # how far back the very first run looks
    overlap: float = 900.0  # re-read this much before the last run (deliveries still being retried)
    per_page: int = 100
    max_pages: int = 30
    max_per_run: int = 100
    max_attempts_per_guid: int = 2


@dataclass(frozen=True)
class HookDelivery:
    id: int
    guid: str
    event: str
    status_code: int
    delivered_at: float
    redelivery: bool

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> HookDelivery:
        when = str(item.get("delivered_at") or "")
        try:
            delivered = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
        except ValueError:
            delivered = 0.0
        return cls(
            id=int(item["id"]),
            guid=str(item.get("guid") or ""),
            event=str(item.get("event") or ""),
            status_code=int(item.get("status_code") or 0),  # 0/None: no HTTP answer at all (down, timeout)
            delivered_at=delivered,
            redelivery=bool(item.get("redelivery")),
        )


@dataclass
class RecoveryReport:
    scanned: int = 0
    pages: int = 0
    failed: int = 0  # GUIDs with no successful attempt in the window
    requested: list[str] = field(default_factory=list)  # GUIDs asked to be redelivered this run
    already: int = 0  # failed GUIDs this store redelivered enough times before
    errors: list[str] = field(default_factory=list)
    complete: bool = False  # the window was read to its end


class RecoveryStore:
    """Which GUIDs were redelivered (and how often), and when the last complete run started."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_tables(engine, metadata)

    def last_run(self) -> float | None:
        with self.engine.connect() as conn:
            return conn.execute(select(checkpoints.c.at).where(checkpoints.c.name == "deliveries")).scalar()

    def set_last_run(self, at: float) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(update(checkpoints).where(checkpoints.c.name == "deliveries").values(at=at)).rowcount
            if not changed:
                conn.execute(insert(checkpoints).values(name="deliveries", at=at))

    def attempts(self, guid: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(redeliveries.c.attempts).where(redeliveries.c.guid == guid)).scalar()
        return int(value or 0)

    def claim(self, delivery: HookDelivery, max_attempts: int) -> bool:
        """Compare-and-set one more attempt for this GUID; False when another run took it or the bound is hit."""
        now = time.time()
        with self.engine.begin() as conn:
            current = conn.execute(select(redeliveries.c.attempts).where(redeliveries.c.guid == delivery.guid)).scalar()
            if current is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(redeliveries).values(
                                guid=delivery.guid,
                                event=delivery.event,
                                attempts=1,
                                last_delivery_id=delivery.id,
                                requested_at=now,
                            )
                        )
                except IntegrityError:
                    return False
                return True
            if current >= max_attempts:
                return False
            changed = conn.execute(
                update(redeliveries)
                .where(redeliveries.c.guid == delivery.guid, redeliveries.c.attempts == current)
                .values(attempts=current + 1, last_delivery_id=delivery.id, requested_at=now)
            ).rowcount
            return changed == 1

    def redelivered(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(redeliveries.c.guid, redeliveries.c.attempts)).all()
        return {guid: int(n) for guid, n in rows}


def failed_guids(deliveries: list[HookDelivery]) -> list[HookDelivery]:
    """Per GUID with no successful attempt: its newest failed attempt; oldest GUID first (original order)."""
    by_guid: dict[str, list[HookDelivery]] = {}
    for d in deliveries:
        if d.guid:
            by_guid.setdefault(d.guid, []).append(d)
    newest_failures = [
        max(attempts, key=lambda d: (d.delivered_at, d.id))
        for attempts in by_guid.values()
        if not any(a.ok for a in attempts)
    ]
    first_seen = {guid: min(a.delivered_at for a in attempts) for guid, attempts in by_guid.items()}
    return sorted(newest_failures, key=lambda d: (first_seen[d.guid], d.id))


class Recovery:
    """One run = list the window, pick failed GUIDs, redeliver within the bounds. `gh` is an App (JWT) client."""

    def __init__(self, gh: Any, store: RecoveryStore, policy: RecoveryPolicy | None = None) -> None:
        self.gh = gh
        self.store = store
        self.policy = policy or RecoveryPolicy()

    def _pages(self, since: float, report: RecoveryReport) -> Iterator[list[HookDelivery]]:
        params: dict[str, Any] = {"per_page": self.policy.per_page}
        while report.pages < self.policy.max_pages:
            response = self.gh.request("GET", "/app/hook/deliveries", params=params)
            report.pages += 1
            items = [HookDelivery.from_json(item) for item in response.json() or []]
            report.scanned += len(items)
            yield items
            cursor = _next_cursor(response.raw_response)
            if not items or cursor is None or min(d.delivered_at for d in items) < since:
                report.complete = True
                return
            params = {"per_page": self.policy.per_page, "cursor": cursor}

    def run_once(self, now: float | None = None) -> RecoveryReport:
        """One pass; the client's connection pool is kept for the pass (githubkit's context manager)."""
        enter = getattr(self.gh, "__enter__", None)
        if enter is None:
            return self._run_once(now)
        with self.gh:
            return self._run_once(now)

    def _run_once(self, now: float | None) -> RecoveryReport:
        from app import metrics

        now = time.time() if now is None else now
        report = RecoveryReport()
        last = self.store.last_run()
        since = (last - self.policy.overlap) if last is not None else now - self.policy.first_lookback
        since = max(since, now - RETENTION)
        window: list[HookDelivery] = []
        try:
            for page in self._pages(since, report):
                window += [d for d in page if d.delivered_at >= since]
        except Exception as exc:
            report.errors.append(f"listing deliveries failed: {exc.__class__.__name__}: {exc}")
            log.warning("recovery: %s", report.errors[-1])
        failed = failed_guids(window)
        report.failed = len(failed)
        for delivery in failed:
            if len(report.requested) >= self.policy.max_per_run:
                break
            if not self.store.claim(delivery, self.policy.max_attempts_per_guid):
                report.already += 1
                continue
            try:
                self.gh.request("POST", f"/app/hook/deliveries/{delivery.id}/attempts")
            except Exception as exc:
                report.errors.append(f"redelivery of {delivery.guid} failed: {exc.__class__.__name__}")
                metrics.count_redelivery("failed")
                continue
            report.requested.append(delivery.guid)
            metrics.count_redelivery("requested")
        if report.complete and not report.errors:
            self.store.set_last_run(now)
        if report.requested or report.errors:
            log.info(
                "recovery: %d deliveries scanned, %d failed GUIDs, %d redelivered, %d already, %d errors",
                report.scanned,
                report.failed,
                len(report.requested),
                report.already,
                len(report.errors),
            )
        return report


def _next_cursor(response: Any) -> str | None:
    link = getattr(response, "links", {}).get("next")
    if not link:
        return None
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(link["url"]).query).get("cursor")
    return values[0] if values else None


def build_recovery(settings: Settings, policy: RecoveryPolicy | None = None) -> Recovery:
    from app.github import GitHubApp

    gh = GitHubApp(settings).app_client()
    engine = get_engine(database_url(settings.state_dir, settings.database_url))
    return Recovery(gh, RecoveryStore(engine), policy)


def run_forever(recovery: Recovery, stop: threading.Event) -> None:
    """Run at start (after the initial delay) and then every `interval` seconds until `stop` is set."""
    if stop.wait(recovery.policy.initial_delay):
        return
    while True:
        try:
            recovery.run_once()
        except Exception:
            log.exception("recovery run failed")
        if stop.wait(recovery.policy.interval):
            return


def start_recovery(
    settings: Settings, stop: threading.Event | None = None, policy: RecoveryPolicy | None = None
) -> threading.Thread | None:
    """Start the recovery thread for a web process (daemon; ends with `stop` or the process). None without an App."""
    if not settings.has_app_credentials or not settings.webhook_secret:
        return None
    recovery = build_recovery(settings, policy)
    thread = threading.Thread(
        target=run_forever, args=(recovery, stop or threading.Event()), name="diffwise-recovery", daemon=True
    )
    thread.start()
    return thread
