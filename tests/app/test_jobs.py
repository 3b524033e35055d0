"""Jobs: exactly-once runs, retries by rescheduling, dead letters, per-PR lock, newest push wins, reclaim.

Every test runs on the backend the `job_settings` fixture gives: SQLite here; test_jobs_redis.py re-runs
the same tests against a real redis-server. `drain` executes queued tasks with huey's own executor and a
clock set far ahead, so rescheduled work runs at once instead of after its delay.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import logging
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from app.deliveries import Head
from app.delivery import Delivery
from app.errors import PermanentError, RetryLater
from app.jobs import JobPolicy, JobQueue, pull_target
from app.logs import setup_logging
from app.settings import Settings

FAST = JobPolicy(max_attempts=3, backoff_base=7.0, debounce=5.0, lock_retry=3.0, lease=30.0, poll=0.05)
FAR_FUTURE = datetime.datetime(2100, 1, 1)


@pytest.fixture
def job_settings(tmp_path: Path) -> Settings:
    return Settings.for_tests(state_dir=tmp_path / "state")


class Recorder:
    """An injectable dispatch: records every call; `behaviour` decides what the call does."""

    def __init__(self, behaviour: Callable[[Delivery], None] | None = None) -> None:
        self.calls: list[Delivery] = []
        self.behaviour = behaviour
        self.lock = threading.Lock()

    async def __call__(self, settings: Settings, delivery: Delivery) -> None:
        with self.lock:
            self.calls.append(delivery)
        if self.behaviour is not None:
            self.behaviour(delivery)

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.calls]


@pytest.fixture
def make_queue(job_settings: Settings) -> Iterator[Callable[..., JobQueue]]:
    made: list[JobQueue] = []

    def make(dispatch: Recorder, policy: JobPolicy = FAST) -> JobQueue:
        q = JobQueue(job_settings, dispatch=dispatch, policy=policy)
        made.append(q)
        return q

    yield make
    for q in made:
        q.close()


def drain(q: JobQueue, limit: int = 200) -> int:
    ran = 0
    for _ in range(limit):
        # Check first: RedisHuey's dequeue blocks for a second on an empty queue.
        task = q.huey.dequeue() if q.huey.pending_count() else None
        if task is None:
            return ran
        q.huey.execute(task, FAR_FUTURE)
        ran += 1
    raise AssertionError("queue did not drain")


def scheduled_delays(q: JobQueue) -> list[float]:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return [round((t.eta - now).total_seconds()) for t in q.huey.pending() if t.eta is not None]


def delivery(
    delivery_id: str, event: str = "issues", body: dict[str, object] | None = None, at: float = 0.0
) -> Delivery:
    raw = json.dumps(body or {"action": "opened", "repository": {"full_name": "octo/repo"}}).encode()
    return Delivery(delivery_id, event, raw, "sha256=" + "0" * 64, at or time.time(), "1")


def pr_delivery(delivery_id: str, sha: str, at: float, number: int = 7, action: str = "synchronize") -> Delivery:
    body = {
        "action": action,
        "number": number,
        "pull_request": {"number": number, "head": {"sha": sha}},
        "repository": {"full_name": "octo/repo"},
    }
    return delivery(delivery_id, "pull_request", body, at)


def test_a_job_runs_once_and_duplicates_never_run(make_queue: Callable[..., JobQueue]) -> None:
    rec = Recorder()
    q = make_queue(rec)
    d = delivery("once-1")
    assert q.submit_many([d, d]) == [True, False]
    assert q.submit(d) is False
    assert drain(q) == 1
    assert rec.ids == ["once-1"]
    assert q.ledger.state("once-1") == "done"
    # The same task message delivered again (e.g. a redelivery by the queue) is refused by the ledger.
    q.huey.storage.enqueue(q._encode(d), 0)
    drain(q)
    assert rec.ids == ["once-1"]


def test_retry_later_reschedules_after_its_delay_without_sleeping(make_queue: Callable[..., JobQueue]) -> None:
    def flaky(d: Delivery) -> None:
        if d.attempt == 0:
            raise RetryLater("rate limited", delay=42)

    rec = Recorder(flaky)
    q = make_queue(rec)
    q.submit(delivery("retry-1"))
    task = q.huey.dequeue()
    started = time.monotonic()
    q.huey.execute(task, FAR_FUTURE)
    assert time.monotonic() - started < 5
    assert scheduled_delays(q) == [42]
    assert q.ledger.state("retry-1") == "retrying"
    drain(q)
    assert [d.attempt for d in rec.calls] == [0, 1]
    assert q.ledger.state("retry-1") == "done"


def test_unexpected_errors_back_off_then_dead_letter(
    make_queue: Callable[..., JobQueue], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: Delivery) -> None:
        raise ValueError("handler exploded")

    rec = Recorder(broken)
    q = make_queue(rec)
    q.submit(delivery("dead-1"))
    delays = []
    with caplog.at_level(logging.WARNING, logger="diffwise.jobs"):
        for _ in range(FAST.max_attempts):
            task = q.huey.dequeue()
            q.huey.execute(task, FAR_FUTURE)
            delays += scheduled_delays(q)
    assert delays == [7, 14]  # exponential backoff from backoff_base
    assert len(rec.calls) == FAST.max_attempts
    assert q.huey.pending_count() == 0
    assert q.ledger.state("dead-1") == "dead"
    [letter] = q.dead_letters.recent()
    assert letter.delivery_id == "dead-1"
    assert letter.attempts == FAST.max_attempts
    assert "handler exploded" in letter.error
    assert any(r.levelno == logging.ERROR and "dead letter" in r.getMessage() for r in caplog.records)


def test_permanent_errors_go_straight_to_dead_letters(make_queue: Callable[..., JobQueue]) -> None:
    def gone(_: Delivery) -> None:
        raise PermanentError("404 repository gone")

    q = make_queue(Recorder(gone))
    q.submit(delivery("perm-1"))
    drain(q)
    assert q.ledger.state("perm-1") == "dead"
    assert q.dead_letters.recent()[0].attempts == 1


def test_pushes_in_quick_succession_review_only_the_latest_head(make_queue: Callable[..., JobQueue]) -> None:
    rec = Recorder()
    q = make_queue(rec)
    t = time.time()
    pushes = [pr_delivery(f"push-{i}", sha=f"{i}" * 40, at=t + i) for i in range(4)]
    other_pr = pr_delivery("other-pr", sha="f" * 40, at=t, number=8)
    q.submit_many([*pushes, other_pr])
    drain(q)
    assert sorted(rec.ids) == ["other-pr", "push-3"]
    assert [pull_target(d).head_sha for d in rec.calls if d.id == "push-3"] == ["3" * 40]  # type: ignore[union-attr]
    assert [q.ledger.state(p.id) for p in pushes] == ["superseded"] * 3 + ["done"]


def test_a_push_arriving_out_of_order_does_not_undo_a_newer_one(make_queue: Callable[..., JobQueue]) -> None:
    rec = Recorder()
    q = make_queue(rec)
    t = time.time()
    q.submit(pr_delivery("new", sha="b" * 40, at=t + 10))
    q.submit(pr_delivery("old", sha="a" * 40, at=t))
    drain(q)
    assert rec.ids == ["new"]
    assert q.ledger.newest("octo/repo#7") == Head(t + 10, "new")


def test_a_locked_pr_reschedules_instead_of_running_concurrently(make_queue: Callable[..., JobQueue]) -> None:
    rec = Recorder()
    q = make_queue(rec)
    assert q.ledger.acquire_lock("octo/repo#7", "someone-else", 30)
    q.submit(pr_delivery("locked", sha="c" * 40, at=time.time()))
    for _ in range(2):  # first pass: debounce; second: the lock is taken
        q.huey.execute(q.huey.dequeue(), FAR_FUTURE)
    assert rec.ids == []
    assert scheduled_delays(q) == [FAST.lock_retry]
    q.ledger.release_lock("octo/repo#7", "someone-else")
    drain(q)
    assert rec.ids == ["locked"]
    assert q.ledger.acquire_lock("octo/repo#7", "next", 30)  # released after the run


def test_a_running_review_is_cancelled_by_a_newer_push(make_queue: Callable[..., JobQueue]) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def slow_review(settings: Settings, d: Delivery) -> None:
        rec.calls.append(d)
        if d.id == "first":
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    rec = Recorder()
    q = make_queue(slow_review, JobPolicy(debounce=0, lease=30, poll=0.05))
    t = time.time()
    q.submit(pr_delivery("first", sha="1" * 40, at=t))
    runner = threading.Thread(target=drain, args=(q,))
    runner.start()
    assert started.wait(10)
    second = pr_delivery("second", sha="2" * 40, at=t + 1)
    q.ledger.note_head("octo/repo#7", Head(second.received_at, second.id))  # what the second job does first
    assert cancelled.wait(10)
    runner.join(10)
    assert q.ledger.state("first") == "superseded"
    q.submit(second)
    drain(q)
    assert [d.id for d in rec.calls] == ["first", "second"]
    assert q.ledger.state("second") == "done"


def test_a_job_whose_worker_died_is_reclaimed_after_its_lease(make_queue: Callable[..., JobQueue]) -> None:
    rec = Recorder()
    q = make_queue(rec)
    d = delivery("orphan")
    q.submit(d)
    q.huey.dequeue()  # a worker took it ...
    assert q.ledger.claim(d.id, "dead-worker", 0.05, q._encode(d))  # ... claimed it, and was killed
    time.sleep(0.1)
    drain(q)
    assert rec.ids == []
    assert q.reclaim() == 1
    drain(q)
    assert rec.ids == ["orphan"]
    assert q.reclaim() == 0


def test_embedded_consumer_runs_submitted_jobs(make_queue: Callable[..., JobQueue]) -> None:
    done = threading.Event()
    rec = Recorder(lambda d: done.set() if len(rec.calls) == 5 else None)
    q = make_queue(rec, JobPolicy(debounce=0, poll_max_delay=0.1))
    consumer = q.start_embedded(workers=2)
    try:
        assert q.submit_many([delivery(f"emb-{i}") for i in range(5)]) == [True] * 5
        assert done.wait(15)
    finally:
        consumer.stop(graceful=True)
    assert sorted(rec.ids) == [f"emb-{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("event", "body", "expected"),
    [
        (
            "pull_request",
            b'{"action":"opened","pull_request":{"number":3,"head":{"sha":"abc"}},"repository":{"full_name":"o/r"}}',
            ("o/r#3", "abc"),
        ),
        ("pull_request", b'{"action":"closed","pull_request":{"number":3,"head":{"sha":"abc"}}}', None),
        ("pull_request", b"not json", None),
        ("pull_request", b'{"action":"opened","pull_request":[]}', None),
        ("issues", b'{"action":"opened"}', None),
    ],
)
def test_pull_target(event: str, body: bytes, expected: tuple[str, str] | None) -> None:
    target = pull_target(Delivery("x", event, body, "", 0.0))
    assert (None if target is None else (target.key, target.head_sha)) == expected


def comment_delivery(delivery_id: str, text: str, at: float, number: int = 7, on_pr: bool = True) -> Delivery:
    issue: dict[str, object] = {"number": number}
    if on_pr:
        issue["pull_request"] = {"url": f"https://api.github.com/repos/octo/repo/pulls/{number}"}
    body = {"action": "created", "issue": issue, "comment": {"body": text}, "repository": {"full_name": "octo/repo"}}
    return delivery(delivery_id, "issue_comment", body, at)


@pytest.mark.parametrize(
    ("text", "on_pr", "locks"),
    [
        ("/diffwise review", True, True),
        ("please look again\n/DIFFWISE review --full", True, True),
        ("@diffwise review", True, True),
        ("/diffwise explain abcdef12", True, False),
        ("> /diffwise review", True, False),  # quoting someone else's command never re-runs it
        ("/diffwise review", False, False),  # an issue, not a PR
        ("looks good", True, False),
    ],
)
def test_a_review_command_targets_its_pr_lock(text: str, on_pr: bool, locks: bool) -> None:
    target = pull_target(comment_delivery("c", text, time.time(), on_pr=on_pr))
    assert (target is not None) == locks
    if target is not None:
        assert (target.key, target.head_sha, target.command) == ("octo/repo#7", "", True)


def test_a_review_command_waits_for_the_running_review_of_its_pr(make_queue: Callable[..., JobQueue]) -> None:
    """A push and a `/diffwise review` on one PR never review it at the same time (no duplicate comments)."""
    rec = Recorder()
    q = make_queue(rec)
    assert q.ledger.acquire_lock("octo/repo#7", "push-review", 30)  # a push's review is running
    q.submit(comment_delivery("again", "/diffwise review", at=time.time()))
    q.huey.execute(q.huey.dequeue(), FAR_FUTURE)  # no debounce for a command: straight to the lock
    assert rec.ids == []
    assert scheduled_delays(q) == [FAST.lock_retry]
    assert q.ledger.newest("octo/repo#7") is None  # a comment names no head: it supersedes no push
    q.ledger.release_lock("octo/repo#7", "push-review")
    drain(q)
    assert rec.ids == ["again"]
    assert q.ledger.state("again") == "done"
    assert q.ledger.acquire_lock("octo/repo#7", "next", 30)  # released after the run


def test_other_commands_do_not_wait_for_the_pr_lock(make_queue: Callable[..., JobQueue]) -> None:
    rec = Recorder()
    q = make_queue(rec)
    assert q.ledger.acquire_lock("octo/repo#7", "push-review", 30)
    q.submit(comment_delivery("explain", "/diffwise explain abcdef12", at=time.time()))
    drain(q)
    assert rec.ids == ["explain"]


def test_job_log_lines_carry_delivery_and_repo_and_mask_secrets(
    make_queue: Callable[..., JobQueue], job_settings: Settings
) -> None:
    token = "ghs_" + "A1b2" * 9

    def leaky(_: Delivery) -> None:
        raise PermanentError(f"bad credentials {token} with secret {job_settings.webhook_secret}")

    stream, root = io.StringIO(), logging.getLogger()
    level = root.level
    setup_logging("info", "json", job_settings.secrets, stream=stream)
    try:
        q = make_queue(Recorder(leaky))
        q.submit(delivery("log-1"))
        drain(q)
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_diffwise", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    [dead] = [e for e in entries if e["level"] == "error"]
    assert dead["delivery_id"] == "log-1"
    assert dead["repo"] == "octo/repo"
    assert "dead letter" in dead["msg"]
    assert token not in stream.getvalue()
    assert str(job_settings.webhook_secret) not in stream.getvalue()
    assert "***" in dead["msg"]


@given(
    st.builds(
        Delivery,
        id=st.text(max_size=40),
        event=st.text(max_size=20),
        body=st.binary(max_size=300),
        signature=st.text(max_size=71),
        received_at=st.floats(allow_nan=False),
        hook_id=st.none() | st.text(max_size=10),
        attempt=st.integers(0, 100),
    )
)
def test_a_delivery_survives_the_queue_encoding(d: Delivery) -> None:
    assert pickle.loads(pickle.dumps(d)) == d
    assert d.next_attempt().attempt == d.attempt + 1
    assert str(len(d.body)) in repr(d)
    assert repr(d.body) not in repr(d) or not d.body


def test_a_dispatch_reporting_all_handlers_failed_is_retried(make_queue: Callable[..., JobQueue]) -> None:
    @dataclass(frozen=True)
    class Outcome:
        status: str
        errors: tuple[str, ...]

    calls: list[int] = []

    async def dispatch(settings: Settings, d: Delivery) -> Outcome:
        calls.append(d.attempt)
        return Outcome("failed", ("review: boom",)) if d.attempt == 0 else Outcome("handled", ())

    q = make_queue(dispatch)
    q.submit(delivery("outcome-1"))
    drain(q)
    assert calls == [0, 1]
    assert q.ledger.state("outcome-1") == "done"


def test_maintain_checkpoints_the_wal_and_shrinks_it_once_idle(tmp_path: Path) -> None:
    settings = Settings.for_tests(state_dir=tmp_path / "wal")
    q = JobQueue(settings, dispatch=Recorder())
    stop = threading.Event()
    maintainer = threading.Thread(target=q.maintain, args=(stop, 0.02))
    try:
        wal = settings.state_dir / "queue.db-wal"
        body = b"x" * 20_000
        for batch in range(10):
            q.submit_many([Delivery(f"w-{batch}-{i}", "issues", body, "", 0.0) for i in range(20)])
        assert wal.stat().st_size > 4_000_000  # the receiver's connection never checkpoints by itself
        maintainer.start()
        deadline = time.monotonic() + 10
        while wal.stat().st_size > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert wal.stat().st_size == 0  # idle: checkpointed and truncated while still running
        q.submit(Delivery("after", "issues", body, "", 0.0))
        assert q.pending() == 201
    finally:
        stop.set()
        if maintainer.is_alive():
            maintainer.join(10)
        q.close()


def test_maintain_ticks_fast_while_commits_come_and_slowly_once_idle(tmp_path: Path) -> None:
    """Under load the WAL is checkpointed every busy tick (small fsyncs); an idle queue is looked at rarely."""
    settings = Settings.for_tests(state_dir=tmp_path / "wal")
    q = JobQueue(settings, dispatch=Recorder())
    stop = threading.Event()
    maintainer = threading.Thread(target=q.maintain, args=(stop,), kwargs={"interval": 60.0, "busy_interval": 0.02})
    wal = settings.state_dir / "queue.db-wal"
    try:
        q.submit(Delivery("first", "issues", b"x" * 20_000, "", 0.0))
        maintainer.start()
        for batch in range(5):
            q.submit_many([Delivery(f"b-{batch}-{i}", "issues", b"x" * 20_000, "", 0.0) for i in range(20)])
            time.sleep(0.03)
        deadline = time.monotonic() + 5  # far less than the 60 s idle tick
        while wal.stat().st_size > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert wal.stat().st_size == 0
    finally:
        stop.set()
        maintainer.join(70)
        q.close()


def test_finished_deliveries_are_forgotten_after_the_dedupe_window(make_queue: Callable[..., JobQueue]) -> None:
    q = make_queue(Recorder())
    old, fresh = delivery("old-1"), delivery("fresh-1")
    q.submit_many([old, fresh])
    drain(q)
    assert q.ledger.prune(time.time() - 3600) == 0  # both finished just now
    removed = q.ledger.prune(time.time() + 1)
    if q.settings.redis_url:
        assert removed == 0  # Redis keys expire by TTL instead
        assert q.submit(old) is False
    else:
        assert removed == 2
        assert q.submit(old) is True  # outside the window a redelivery is new again


def test_the_fast_encoding_is_what_huey_itself_would_read(make_queue: Callable[..., JobQueue]) -> None:
    q = make_queue(Recorder())
    assert q._template is not None  # the fast path is in use with this huey
    d = delivery("enc-1")
    fast = q.huey.deserialize_task(q._encode(d, debounced=True))
    template, q._template = q._template, None
    slow = q.huey.deserialize_task(q._encode(d, debounced=True))
    q._template = template
    assert (fast.name, fast.args, fast.kwargs, fast.eta, fast.retries) == (
        slow.name,
        slow.args,
        slow.kwargs,
        slow.eta,
        slow.retries,
    )
    assert fast.id != q.huey.deserialize_task(q._encode(d)).id  # a fresh id per message


@settings_(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=6), max_size=6))
def test_accept_is_true_exactly_once_per_delivery_id(
    make_queue: Callable[..., JobQueue], batches: list[list[str]]
) -> None:
    q = make_queue(Recorder())
    prefix = uuid.uuid4().hex[:8]  # each example gets its own ids on the shared queue
    seen: set[str] = set()
    pending_before = q.pending()
    for batch in batches:
        flags = q.submit_many([delivery(f"{prefix}-{name}") for name in batch])
        expected = []
        for name in batch:
            expected.append(name not in seen)
            seen.add(name)
        assert flags == expected
    assert q.pending() - pending_before == len(seen)


def test_huey_is_imported_without_psycopg_which_still_imports_afterwards() -> None:
    """huey would load libpq for its PostgresHuey; diffwise hides psycopg from it, not from itself."""
    import subprocess
    import sys

    code = (
        "import sys, app.jobs\n"
        "assert 'psycopg' not in sys.modules, 'huey pulled in psycopg'\n"
        "assert 'huey.storage' in sys.modules\n"
        "import psycopg\n"
        "print(psycopg.__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "psycopg"
