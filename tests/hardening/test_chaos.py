"""Faults: kill -9 of the worker mid-review, GitHub 502/403/timeouts, Anthropic 429/529/timeouts, Redis restarts."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from app.comments import SUMMARY_MARKER
from app.jobs import JobQueue
from app.settings import Settings
from benchmarks.chaos import WORKER_JOBS, run_kill_chaos
from tests.e2e.conftest import webhook_payload
from tests.fakes.anthropic import Fail, FakeAnthropic, Reply
from tests.fakes.github import free_port
from tests.hardening.conftest import (
    InProcess,
    bot_text,
    finding_markers,
    in_process,
    opened_body,
    post,
    process_stack,
    review_numbers,
    seed_pulls,
    wait_until,
)


def assert_one_review_each(result: dict[str, Any]) -> None:
    repo, pulls = result["repo"], result["pulls"]
    assert result["duplicate_comments"] == {}
    assert result["states"] == Counter({"done": len(pulls)})
    assert review_numbers(repo) == [p.number for p in pulls]  # exactly one review per PR
    assert all(r["event"] == "COMMENT" for r in repo.reviews)
    assert all(SUMMARY_MARKER in bot_text(repo, p.number) for p in pulls)
    for number, markers in result["markers"].items():
        assert markers, f"PR #{number} has no finding comment"
        assert len(markers) == len(set(markers)), f"PR #{number}: duplicate finding markers {markers}"
    assert result["fake"].count("POST", r"/pulls/\d+/reviews$") == len(pulls)


def test_kill_9_of_the_worker_during_10_reviews_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    result = run_kill_chaos(tmp_path, n=10, kills=3, seed=11)
    assert_one_review_each(result)
    assert result["kills"] >= 1


@pytest.mark.slow
def test_kill_9_of_the_worker_across_100_reviews(tmp_path: Path) -> None:
    result = run_kill_chaos(tmp_path, n=100, kills=25, seed=2026)
    assert_one_review_each(result)
    assert result["kills"] >= 10


# ---- GitHub answering 502, 403 secondary rate limits with Retry-After, and timeouts -------------------------


class Stall:
    """ASGI wrapper in front of the fake GitHub: the next `count` requests matching `path` wait `seconds` first."""

    def __init__(self, app: Any, path: str, count: int, seconds: float) -> None:
        self.app, self.path, self.remaining, self.seconds = app, re.compile(path), count, seconds
        self.stalled: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.remaining > 0 and self.path.search(scope["path"]):
            self.remaining -= 1
            self.stalled.append(scope["path"])
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


def attempts(h: InProcess, delivery_id: str) -> int:
    rows = h.queue.huey.storage.sql("select attempts from delivery where id = ?", (delivery_id,), results=True)
    return int(rows[0][0])


def _review_all(h: InProcess, n: int, *, timeout: float) -> tuple[Any, list[str]]:
    repo, pulls = seed_pulls(h.fake, n)
    deliveries = [h.send("pull_request", webhook_payload("pull_request.opened.2", repo, p))[0] for p in pulls]
    states = h.wait(*deliveries, timeout=timeout)
    assert set(states.values()) == {"done"}, states
    assert review_numbers(repo) == [p.number for p in pulls]
    return repo, deliveries


def test_github_502s_and_secondary_rate_limits_still_get_every_review_posted(tmp_path: Path) -> None:
    with in_process(tmp_path / "state") as h:
        fake = h.fake
        fake.fail_next(2, status=502, path=r"/pulls/1$")  # retried in the worker (1 s, 2 s backoff)
        fake.fail_next(1, status=502, path=r"/pulls/2/reviews$")
        # three secondary rate limits in a row: two short inline waits, then the job goes back to the queue
        # (RetryLater, at least 5 s) and runs again later
        fake.fail_next(3, status=403, retry_after=1, secondary=True, path=r"/repos/octo/svc/contents/svc/m3\.py$")
        repo, deliveries = _review_all(h, 3, timeout=45)
        assert all(f.remaining == 0 for f in fake.faults)
        assert len(repo.reviews) == 3
        assert [attempts(h, d) for d in deliveries] == [1, 1, 2]  # only the rate-limited job ran twice


@pytest.mark.slow
def test_github_timeouts_and_persistent_502s_reschedule_the_job(tmp_path: Path) -> None:
    stall: list[Stall] = []

    def slow(app: Any) -> Any:
        stall.append(Stall(app, r"/pulls/1/files$", 1, 31.0))  # past githubkit's 30 s read timeout
        return stall[0]

    with in_process(tmp_path / "state", github_app=slow) as h:
        h.fake.fail_next(3, status=502, path=r"/pulls/2$")  # two inline retries, then RetryLater(30 s)
        h.fake.fail_next(1, status=403, retry_after=11, secondary=True, path=r"/pulls/3/files$")  # > 10 s: requeued
        repo, _ = _review_all(h, 3, timeout=150)
        assert stall[0].stalled == ["/repos/octo/svc/pulls/1/files"]
        assert len(repo.reviews) == 3


# ---- Anthropic answering 429 / 529 / timing out: the analyzer review still goes out --------------------------


def _llm_failures(body: dict[str, Any]) -> Fail | Reply:
    """Per PR (by file name in the prompt): 429 with a long Retry-After, 529 overloaded, or a 500."""
    text = json.dumps(body)
    if "svc/m1.py" in text:
        return Fail(429, message="rate limited", retry_after=120)
    if "svc/m2.py" in text:
        return Fail(529, message="Overloaded")
    return Fail(500, message="internal")


def assert_analyzer_review_with_llm_note(repo: Any, pulls: list[Any]) -> None:
    assert review_numbers(repo) == [p.number for p in pulls]
    for p in pulls:
        text = bot_text(repo, p.number)
        assert "unavailable" in text or "timed out" in text, text
        assert "analyzers only" in text or "LLM" in text, text
    for p in pulls:
        assert finding_markers(repo, p.number), f"PR #{p.number}: no analyzer finding posted"


def test_anthropic_429_529_and_5xx_still_give_every_pr_the_analyzer_review(tmp_path: Path) -> None:
    with FakeAnthropic(default=_llm_failures) as llm, in_process(tmp_path / "state", anthropic_url=llm.base_url) as h:
        repo, _ = _review_all(h, 3, timeout=45)
        assert_analyzer_review_with_llm_note(repo, list(repo.pulls.values()))
        calls: dict[int, Counter[str]] = {}  # status → how often each distinct request body was sent
        for r in llm.messages_requests():
            status = _llm_failures(r.body).status  # type: ignore[union-attr]
            calls.setdefault(status, Counter())[json.dumps(r.body, sort_keys=True)] += 1
        assert set(calls[429].values()) == {1}  # a Retry-After past the 30 s cap is not waited for
        assert max(calls[529].values()) >= 2  # overloaded: retried
        assert max(calls[500].values()) >= 2


def test_anthropic_unreachable_still_gives_the_analyzer_review(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    with in_process(tmp_path / "state", anthropic_url=closed) as h:
        repo, _ = _review_all(h, 1, timeout=45)
        assert_analyzer_review_with_llm_note(repo, list(repo.pulls.values()))


@pytest.mark.slow
def test_anthropic_timeouts_still_give_the_analyzer_review(tmp_path: Path) -> None:
    with FakeAnthropic(default=lambda body: Reply(tool_input={"summary": "", "findings": []}, delay=125)) as llm:
        llm.push(Reply(tool_input={"summary": "", "findings": []}, delay=125), Fail(529), Fail(529))
        with in_process(tmp_path / "state", anthropic_url=llm.base_url) as h:
            repo, _ = _review_all(h, 1, timeout=400)
            assert_analyzer_review_with_llm_note(repo, list(repo.pulls.values()))


# ---- Redis restarted mid-run (AOF on, as deploy/docker-compose.yml runs it) ----------------------------------


class RestartableRedis:
    """A redis-server on a fixed loopback port and data dir, so a restart comes back with its append-only file."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        argv += ["--appendonly", "yes", "--daemonize", "no", "--loglevel", "warning"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        try:
            wait_until(lambda: _pings(client), 10, "redis-server to start")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # what `docker restart` sends: AOF is flushed on the way down
            self.process.wait(10)

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()
        self.restarts += 1


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _state(queue: JobQueue, delivery_id: str) -> str | None:
    try:
        return queue.ledger.state(delivery_id)
    except redis.RedisError:
        return None


def test_redis_restarted_with_jobs_queued_and_while_receiving_loses_no_job(tmp_path: Path) -> None:
    run_redis_restart(tmp_path, mid_run=False)


@pytest.mark.slow
def test_redis_stopped_mid_review_loses_no_job(tmp_path: Path) -> None:
    """Jobs running when Redis goes away stay `running` until their lease ends and the minutely reclaim runs."""
    run_redis_restart(tmp_path, mid_run=True)


def run_redis_restart(tmp_path: Path, *, mid_run: bool) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not installed")
    (tmp_path / "redis").mkdir()
    server = RestartableRedis(binary, tmp_path / "redis")
    server.start()
    worker_env = {"HARDENING_JOB_POLICY": json.dumps(WORKER_JOBS)}
    try:
        with process_stack(tmp_path, REDIS_URL=server.url) as (fake, procs):
            url = procs.serve("web")
            repo, pulls = seed_pulls(fake, 8)
            bodies = {p.number: opened_body(repo, p) for p in pulls}
            accepted = {p.number: post(url, "pull_request", bodies[p.number]) for p in pulls[:4]}
            server.restart()  # 4 jobs waiting in the queue, no worker yet: the AOF brings them back
            if mid_run:
                procs.start("worker", module="tests.hardening.worker", env=worker_env)
            accepted |= {p.number: post(url, "pull_request", bodies[p.number]) for p in pulls[4:6]}
            if mid_run:
                wait_until(lambda: len(repo.reviews) >= 1, 30, "the first review", lambda: procs.check_alive("worker"))
            server.stop()  # the receiver keeps taking deliveries (and, mid-run, the worker is reviewing)
            refused = {p.number: post(url, "pull_request", bodies[p.number]) for p in pulls[6:]}
            time.sleep(1.0)
            server.start()
            if not mid_run:
                procs.start("worker", module="tests.hardening.worker", env=worker_env)
            # GitHub shows the refused deliveries as failed; a redelivery (same GUID) is accepted now
            for number, (delivery_id, _) in refused.items():
                accepted[number] = (delivery_id, post(url, "pull_request", bodies[number], delivery_id)[1])
            assert {status for _, status in accepted.values()} == {202}
            assert {status for _, status in refused.values()} <= {202, 503}
            if not mid_run:
                assert {status for _, status in refused.values()} == {503}  # never a 500, never a lie

            queue = JobQueue(Settings.for_tests(redis_url=server.url, state_dir=tmp_path / "state"))
            try:
                ids = [d for d, _ in accepted.values()]
                wait_until(
                    lambda: all(_state(queue, d) == "done" for d in ids),
                    100 if mid_run else 40,
                    "every accepted job to finish",
                    lambda: procs.check_alive("worker", "web"),
                )
            finally:
                queue.close()
            time.sleep(0.5)
            assert review_numbers(repo) == [p.number for p in pulls]  # every PR reviewed, none twice
            assert procs.alive("worker")
            assert procs.alive("web")
    finally:
        server.stop()


# ---- several workers starting at once on one state store --------------------------------------------------


def test_workers_starting_together_create_the_state_tables_without_errors(tmp_path: Path) -> None:
    """Seen in benchmarks/load.py: two `diffwise worker` processes, the first review of one failed on CREATE TABLE.

    Each thread has its own engine (as each process does) on one fresh SQLite file, released together.
    """
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine

    from app.db import ensure_tables

    failures: list[str] = []
    for trial in range(5):
        metadata = MetaData()
        for i in range(10):
            Table(f"t{i}", metadata, Column("id", Integer, primary_key=True), Column("v", String(10)))
        url = f"sqlite:///{tmp_path}/state-{trial}.db"
        barrier = threading.Barrier(4)

        def start(url: str = url, metadata: MetaData = metadata, barrier: threading.Barrier = barrier) -> None:
            engine = create_engine(url)
            barrier.wait()
            try:
                ensure_tables(engine, metadata)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            finally:
                engine.dispose()

        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
