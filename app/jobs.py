"""Durable jobs with huey: SQLite by default, Redis by URL; per-PR lock, newest-push-wins, retries, dead letters.

Tasks are sync functions (huey runs them in worker threads) wrapping `asyncio.run` of the async dispatch.
A pull_request delivery that triggers a review first records itself as the PR's newest head, waits out a
short debounce, then runs under a per-PR lease lock; while it runs, a watcher renews the leases and cancels
it as soon as a newer delivery for the same PR shows up. Failures never sleep in a worker: they reschedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import socket
import sqlite3
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import app.huey_import  # noqa: F401  # isort: skip  (before huey: see the module)
from huey import RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from huey.serializer import Serializer
from huey.storage import SqliteStorage

from app.deliveries import RETENTION_SECONDS, DeadLetters, Head, Ledger, RedisLedger, SqliteLedger
from app.delivery import Delivery
from app.errors import ConfigError, PermanentError, RetryLater
from app.logs import log_context, set_repo
from app.settings import Settings

log = logging.getLogger("diffwise.jobs")

Dispatch = Callable[[Settings, Delivery], Awaitable[object]]
REVIEW_ACTIONS = frozenset({"opened", "reopened", "ready_for_review", "synchronize"})
TASK_NAME = "diffwise.process_delivery"


class HandlersFailed(Exception):
    """dispatch() reported that every handler for the delivery failed."""


@dataclass(frozen=True)
class JobPolicy:
    """Timing knobs; tests shrink them."""

    max_attempts: int = 6
    backoff_base: float = 5.0
    backoff_max: float = 900.0
    debounce: float = 2.0
    lock_retry: float = 2.0
    lease: float = 60.0
    poll: float = 0.5
    poll_max_delay: float = 1.0


@dataclass(frozen=True)
class PullTarget:
    """The PR a review-triggering delivery is about; `key` names its lock and head record."""

    repo: str
    number: int
    head_sha: str  # "" for a `review` slash command: it reviews whatever the head is when it runs
    command: bool = False

    @property
    def key(self) -> str:
        return f"{self.repo}#{self.number}"


def pull_target(delivery: Delivery, app_slug: str = "diffwise") -> PullTarget | None:
    """Parse just enough of a delivery to serialize reviews per PR; anything else → None.

    A push (pull_request opened/synchronize/...) and a `/diffwise review` comment on the same PR both
    review it, so both take the PR's lock: a re-review asked for while a push is being reviewed waits for
    it instead of posting the same comments a second time.
    """
    if delivery.event == "issue_comment":
        return _command_target(delivery, app_slug)
    if delivery.event != "pull_request":
        return None
    try:
        payload = json.loads(delivery.body)
        if payload.get("action") not in REVIEW_ACTIONS:
            return None
        pull = payload["pull_request"]
        repo = payload["repository"]["full_name"]
        return PullTarget(str(repo), int(pull["number"]), str(pull["head"]["sha"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _command_target(delivery: Delivery, app_slug: str) -> PullTarget | None:
    try:
        payload = json.loads(delivery.body)
        if payload.get("action") != "created" or not payload["issue"].get("pull_request"):
            return None
        body = payload["comment"]["body"]
        repo = str(payload["repository"]["full_name"])
        number = int(payload["issue"]["number"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    from app.commands import parse_command

    command = parse_command(body if isinstance(body, str) else None, app_slug)
    if command is None or command.name != "review":
        return None
    return PullTarget(repo, number, "", command=True)


def repo_of(delivery: Delivery) -> str | None:
    try:
        name = json.loads(delivery.body)["repository"]["full_name"]
    except (ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


class _QueueStorage(SqliteStorage):  # type: ignore[misc]
    """huey's SQLite storage tuned for group commit: WAL, checkpoints off the hot path, chosen fsync level.

    synchronous=NORMAL (default) makes a commit durable against a crash or `kill -9` of the process: the
    WAL is written before the commit returns. DIFFWISE_FSYNC=1 selects FULL: each commit also waits for the
    disk, which survives power loss and costs one fsync per group commit.
    """

    def __init__(self, *args: Any, fsync_commits: bool = False, **kwargs: Any) -> None:
        self._synchronous = "full" if fsync_commits else "normal"
        super().__init__(*args, **kwargs)

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute(f"pragma synchronous={self._synchronous}")
        conn.execute("pragma wal_autocheckpoint=0")  # JobQueue.maintain checkpoints from its own connection
        conn.execute("pragma journal_size_limit=67108864")
        return conn


def make_huey(settings: Settings, name: str = "diffwise") -> SqliteHuey | RedisHuey:
    """RedisHuey when REDIS_URL is set, else SqliteHuey in the state dir (see _QueueStorage for durability)."""
    if settings.redis_url:
        return RedisHuey(name, url=settings.redis_url, results=False, utc=True, blocking=True, read_timeout=1)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(
        name,
        filename=str(settings.state_dir / "queue.db"),
        results=False,
        utc=True,
        storage_class=_QueueStorage,
        fsync_commits=settings.fsync,
    )


def _job_timer() -> Callable[[str], contextlib.AbstractContextManager[None]]:
    """app.metrics times every job when it is installed."""
    try:
        from app.metrics import time_job
    except ImportError:
        return lambda _event: contextlib.nullcontext()
    return time_job


class _EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A consumer started from a non-main thread next to uvicorn: the server owns the signals."""

    def _set_signal_handlers(self) -> None:
        return None


class JobQueue:
    """The queue both sides share: the receiver calls `submit_many`, workers run `process`."""

    def __init__(
        self,
        settings: Settings,
        *,
        dispatch: Dispatch | None = None,
        policy: JobPolicy | None = None,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy or JobPolicy()
        self.huey = make_huey(settings)
        self.ledger: Ledger = RedisLedger(self.huey.storage) if settings.redis_url else SqliteLedger(self.huey.storage)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._dispatch = dispatch
        self._dead_letters = dead_letters
        self._time_job = _job_timer()
        self._task = self.huey.task(name=TASK_NAME)(self.process)
        self._template = self._message_template()
        self.huey.periodic_task(crontab(), name="diffwise.reclaim")(self.reclaim)

    # -- producer side -------------------------------------------------------------------------------------

    def submit_many(self, deliveries: Sequence[Delivery]) -> list[bool]:
        """Durably dedupe and enqueue; True per delivery that is new. Blocking: call from a thread."""
        return self.ledger.accept(deliveries, self._encode)

    def submit(self, delivery: Delivery) -> bool:
        return self.submit_many([delivery])[0]

    def ping(self) -> None:
        self.ledger.ping()

    def pending(self) -> int:
        return int(self.huey.pending_count()) + int(self.huey.scheduled_count())

    def _encode(self, delivery: Delivery, debounced: bool = False) -> bytes:
        if self._template is not None:
            message = self._template._replace(
                id=os.urandom(16).hex(), args=(delivery,), kwargs={"debounced": debounced}
            )
            return pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        task = self._task.s(delivery, debounced=debounced)
        return bytes(self.huey.serialize_task(task))

    def _message_template(self) -> Any:
        """huey's message for our task, to fill in per delivery: the receiver's encode drops from ~11 to ~3 µs.

        Used only if huey reads a filled-in template back exactly as its own encoding (plain pickle,
        same task, same arguments); otherwise `_encode` goes through huey's Task and serializer.
        """
        try:
            sample = Delivery("template", "ping", b"{}", "", 0.0)
            template = self.huey._registry.create_message(self._task.s(sample))
            if type(self.huey.serializer) is not Serializer or self.huey.serializer.comp:
                return None
            probe = template._replace(id="probe", args=(sample,), kwargs={"debounced": True})
            task = self.huey.deserialize_task(pickle.dumps(probe, pickle.HIGHEST_PROTOCOL))
            ok = (task.id, task.args, task.kwargs, task.name) == ("probe", (sample,), {"debounced": True}, TASK_NAME)
        except Exception:
            return None
        return template if ok else None

    # -- consumer side -------------------------------------------------------------------------------------

    def consumer(self, workers: int | None = None, *, embedded: bool = False) -> Consumer:
        cls = _EmbeddedConsumer if embedded else Consumer
        return cls(
            self.huey,
            workers=workers or self.settings.workers,
            worker_type="thread",
            periodic=True,
            initial_delay=0.05,
            backoff=1.3,
            max_delay=self.policy.poll_max_delay,
            check_worker_health=True,
            # SIGTERM (Kubernetes, compose, systemd) finishes running jobs first, for up to 25 s; whatever is
            # still running after that is requeued by its lease, never lost.
            graceful_signal="TERM",
            shutdown_timeout=25.0,
        )

    def run_worker(self, workers: int | None = None) -> None:
        """Blocking worker for `diffwise worker` (main thread: handles SIGINT/SIGTERM)."""
        self.reclaim()
        stop = threading.Event()
        maintainer = threading.Thread(target=self.maintain, args=(stop,), name="diffwise-maintain", daemon=True)
        maintainer.start()
        try:
            self.consumer(workers).run()
        finally:
            stop.set()
            maintainer.join(5)

    def maintain(
        self, stop: threading.Event, interval: float = 1.0, wal_limit: int = 4 << 30, busy_interval: float = 0.1
    ) -> None:
        """Checkpoint the SQLite WAL from a separate connection until `stop` is set (no-op on Redis).

        A PASSIVE checkpoint never blocks the receiver's commits, so it runs every tick. Shrinking the WAL
        needs the writers held off, which would stall the receiver under load, so a TRUNCATE only runs
        once no commit happened during a whole tick (`data_version` unchanged), or as a safety valve when
        the WAL passes `wal_limit` under sustained load.

        While commits keep coming the tick is `busy_interval`, not `interval`: each checkpoint ends with an
        fsync, and on ext4 a commit appending to the WAL can wait for that flush. Flushing a tenth of a second
        of deliveries at a time instead of a whole second cut the receiver's p99 at full load from ~27 ms to
        ~8 ms (benchmarks/receiver.py); an idle queue is still looked at once a second.
        """
        if self.settings.redis_url:
            return
        path = self.settings.state_dir / "queue.db"
        wal = path.with_name(path.name + "-wal")
        conn = sqlite3.connect(str(path), timeout=0.25, check_same_thread=False)
        seen, truncated, tick = -1, False, busy_interval
        try:
            while not stop.wait(tick):
                try:
                    version = conn.execute("pragma data_version").fetchone()[0]
                    idle, seen = version == seen, version
                    if idle and truncated:
                        tick = interval  # nothing new and the WAL is empty: look again in a while
                        continue
                    tick = busy_interval  # commits are coming, or the WAL still needs shrinking
                    conn.execute("pragma wal_checkpoint(PASSIVE)").fetchall()
                    size = wal.stat().st_size if wal.exists() else 0
                    truncated = False
                    if idle or size > wal_limit:
                        busy = conn.execute("pragma wal_checkpoint(TRUNCATE)").fetchone()[0]
                        truncated = idle and not busy
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed: %s", exc)
                    tick = interval
            conn.execute("pragma wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("final WAL checkpoint failed: %s", exc)
        finally:
            conn.close()

    def start_embedded(self, workers: int | None = None) -> Consumer:
        """Start worker threads inside the server process; call `.stop(graceful=True)` on shutdown."""
        self.reclaim()
        consumer = self.consumer(workers, embedded=True)
        consumer.start()
        return consumer

    def reclaim(self) -> int:
        """Requeue jobs whose worker died mid-run (lease expired); runs at start and every minute.

        Also forgets finished deliveries older than the dedupe window (GitHub redelivers for 3 days).
        """
        now = time.time()
        self.ledger.prune(now - RETENTION_SECONDS)
        payloads = self.ledger.reclaim_stale(now)
        for payload in payloads:
            self.huey.storage.enqueue(payload, 0)
        if payloads:
            log.warning("requeued %d job(s) whose worker stopped before finishing", len(payloads))
        return len(payloads)

    def process(self, delivery: Delivery, debounced: bool = False) -> None:
        """The huey task: claim once, run, and turn the outcome into done / retry / dead letter."""
        with log_context(delivery_id=delivery.id):
            payload = self._encode(delivery, debounced)
            if not self.ledger.claim(delivery.id, self.owner, self.policy.lease, payload):
                log.info("delivery %s is %s; not running it again", delivery.id, self.ledger.state(delivery.id))
                return
            set_repo(repo_of(delivery))
            try:
                with self._time_job(delivery.event):
                    self._run(delivery, debounced)
            except RetryLater as exc:
                self._retry(delivery, exc.delay, f"RetryLater: {exc}")
            except (PermanentError, ConfigError) as exc:
                self._bury(delivery, f"{exc.__class__.__name__}: {exc}")
            except Exception as exc:
                delay = min(self.policy.backoff_max, self.policy.backoff_base * 2**delivery.attempt)
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                log.warning("job failed: %s", detail, exc_info=exc)
                self._retry(delivery, delay, detail)

    def _run(self, delivery: Delivery, debounced: bool) -> None:
        target = pull_target(delivery, str(getattr(self.settings, "app_slug", None) or "diffwise"))
        if target is None:
            asyncio.run(self._run_watched(delivery, None))
            self.ledger.finish(delivery.id, "done")
            return
        if not debounced and not target.command:  # a comment names no head: it never supersedes a push
            self.ledger.note_head(target.key, Head(delivery.received_at, delivery.id))
        if self._superseded(target, delivery):
            return
        if not debounced and not target.command and self.policy.debounce > 0:
            self._reschedule(delivery, self.policy.debounce, debounced=True)
            return
        if not self.ledger.acquire_lock(target.key, self.owner, self.policy.lease):
            log.info("another review of %s is running; trying again in %.1fs", target.key, self.policy.lock_retry)
            self._reschedule(delivery, self.policy.lock_retry, debounced=True)
            return
        try:
            outcome = asyncio.run(self._run_watched(delivery, target))
        finally:
            self.ledger.release_lock(target.key, self.owner)
        if outcome == "done":
            self.ledger.finish(delivery.id, "done")

    async def _run_watched(self, delivery: Delivery, target: PullTarget | None) -> str:
        """Run dispatch while renewing the job's lease; for a PR review, cancel it once a newer push arrives."""
        job = asyncio.ensure_future(self._call_dispatch(delivery))
        renew_every, last_renew = self.policy.lease / 3, time.monotonic()
        while True:
            done, _ = await asyncio.wait({job}, timeout=self.policy.poll)
            if done:
                job.result()
                return "done"
            if target is not None and await asyncio.to_thread(self._superseded, target, delivery):
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
                return "superseded"
            if time.monotonic() - last_renew >= renew_every:
                last_renew = time.monotonic()
                await asyncio.to_thread(self._renew, delivery, target)

    def _renew(self, delivery: Delivery, target: PullTarget | None) -> None:
        self.ledger.renew(delivery.id, self.owner, self.policy.lease)
        if target is not None:
            self.ledger.renew_lock(target.key, self.owner, self.policy.lease)

    def _superseded(self, target: PullTarget, delivery: Delivery) -> bool:
        newest = self.ledger.newest(target.key)
        if newest is None or newest.delivery_id == delivery.id or newest.received_at <= delivery.received_at:
            return False
        log.info(
            "review of %s at %s superseded by delivery %s",
            target.key,
            target.head_sha[:12] or "its current head",
            newest.delivery_id,
        )
        self.ledger.finish(delivery.id, "superseded")
        return True

    async def _call_dispatch(self, delivery: Delivery) -> None:
        dispatch = self._dispatch
        if dispatch is None:
            try:
                from app.dispatch import dispatch as default_dispatch  # type: ignore[import-not-found,unused-ignore]
            except ImportError as exc:
                raise PermanentError(f"no event dispatcher is installed ({exc})") from exc
            dispatch = default_dispatch
        outcome = await dispatch(self.settings, delivery)
        if getattr(outcome, "status", None) == "failed":
            # Every handler raised: retry like any other failure (handlers are idempotent), then dead-letter.
            errors = "; ".join(getattr(outcome, "errors", ()) or ("all handlers failed",))
            raise HandlersFailed(errors)

    def _reschedule(self, delivery: Delivery, delay: float, *, debounced: bool) -> None:
        # Mark first, then schedule: if we die in between, the lease runs out and `reclaim` requeues it.
        self.ledger.retrying(delivery.id, time.time() + delay + self.policy.lease)
        self._task.schedule(args=(delivery,), kwargs={"debounced": debounced}, delay=delay)

    def _retry(self, delivery: Delivery, delay: float, error: str) -> None:
        if delivery.attempt + 1 >= self.policy.max_attempts:
            self._bury(delivery, f"gave up after {delivery.attempt + 1} attempts; last error: {error}")
            return
        log.warning("attempt %d failed (%s); retrying in %.1fs", delivery.attempt + 1, error, delay)
        self._reschedule(delivery.next_attempt(), delay, debounced=True)

    def _bury(self, delivery: Delivery, error: str) -> None:
        log.error("dead letter: %s delivery %s: %s", delivery.event, delivery.id, error)
        self.dead_letters.record(delivery, error)
        self.ledger.finish(delivery.id, "dead", error)

    @property
    def dead_letters(self) -> DeadLetters:
        if self._dead_letters is None:
            from app.db import database_url, get_engine

            url = database_url(self.settings.state_dir, self.settings.database_url)
            self._dead_letters = DeadLetters(get_engine(url))
        return self._dead_letters

    def close(self) -> None:
        storage: Any = self.huey.storage
        with contextlib.suppress(Exception):
            storage.close()
