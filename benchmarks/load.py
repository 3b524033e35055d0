"""Sustained load on `diffwise serve` (SQLite), then every accepted delivery found and processed exactly once.

Run: `python -m benchmarks.load [--duration 60] [--connections 32] [--prs 20] [--workers 2]`.

Phase 1: a real `diffwise serve --no-worker` process takes signed deliveries from an asyncio httpx client on
`--connections` keep-alive connections for `--duration` seconds, as fast as it answers (closed loop; with
`--rate` the client paces itself instead). Most deliveries are GitHub's `pull_request.labeled` example (a real
event no handler acts on, so the worker parses, routes and drops it); `--prs` of them are `pull_request.opened`
for PRs seeded in the fake GitHub; one in 50 repeats an earlier delivery id, which must be answered 200 as a
duplicate. Phase 2: every delivery answered 202 must be in the ledger and have a queued task. Phase 3:
`--workers` `diffwise worker` processes drain the queue; every accepted delivery must end `done` after exactly
one claim, the queue must be empty, and each seeded PR must have exactly one review. Prints a markdown section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
HOOK = "/api/github/webhooks"
DUPLICATE_EVERY = 50


@dataclass
class LoadResult:
    duration: float
    connections: int
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    per_second: list[int] = field(default_factory=list)  # 202s answered in each whole second of the run
    latencies: list[float] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    pr_deliveries: dict[str, int] = field(default_factory=dict)  # delivery id → PR number
    in_ledger: int = 0
    queued_tasks: int = 0
    drain_seconds: float = 0.0
    final_states: Counter[str] = field(default_factory=Counter)
    claimed_once: int = 0
    claimed_more: int = 0
    left_in_queue: int = 0
    reviews_per_pr: dict[int, int] = field(default_factory=dict)
    serve_rss_mib: float = 0.0
    anomalies: list[tuple[Any, ...]] = field(default_factory=list)  # (id, event, state, attempts, error) rows

    @property
    def rate(self) -> float:
        return self.statuses[202] / self.duration if self.duration else 0.0

    def problems(self) -> list[str]:
        out = []
        n = len(self.accepted)
        if self.in_ledger != n:
            out.append(f"{n} deliveries answered 202, {self.in_ledger} found in the ledger")
        if self.queued_tasks < n:
            out.append(f"{n} deliveries answered 202, only {self.queued_tasks} tasks queued")
        if self.final_states != Counter({"done": n}):
            out.append(f"final states of the accepted deliveries: {dict(self.final_states)}")
        if self.claimed_once != n:
            out.append(f"{self.claimed_once} of {n} processed exactly once; {self.claimed_more} more than once")
        if self.left_in_queue:
            out.append(f"{self.left_in_queue} tasks left in the queue")
        if any(count != 1 for count in self.reviews_per_pr.values()):
            out.append(f"reviews per PR: {self.reviews_per_pr}")
        if self.errors or set(self.statuses) - {200, 202}:
            out.append(f"answers other than 200/202: {dict(self.statuses)}, {self.errors} transport errors")
        return out


def _sign(secret: str, body: bytes) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: httpx costs ~3 ms of client CPU per request here,
    which caps a 32-connection httpx client near 200 requests/s, far below what the receiver takes."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"connection" and b"close" in value.lower():
                close = True
        await self.reader.readexactly(length)
        if close:
            await self.close()
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class _HttpxConnection:
    def __init__(self, host: str, port: int) -> None:
        self.base = f"http://{host}:{port}"
        self.client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=30)

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> int:
        return (await self.client.post(self.base + path, content=body, headers=headers)).status_code

    async def close(self) -> None:
        await self.client.aclose()


async def _drive(
    port: int,
    secret: str,
    result: LoadResult,
    cheap: bytes,
    prs: list[tuple[int, bytes]],
    rate: float | None,
    client: str,
) -> None:
    cheap_sig = _sign(secret, cheap)
    pr_bodies = [(number, body, _sign(secret, body)) for number, body in prs]
    started = time.monotonic()
    deadline = started + result.duration
    counter = 0
    # spread the PR deliveries over the first 80% of the run
    pr_at = {int(i * 0.8 * result.duration * 1000 / max(1, len(pr_bodies))): p for i, p in enumerate(pr_bodies)}
    pr_due = sorted(pr_at)
    seconds: Counter[int] = Counter()

    async def one(conn: _RawConnection | _HttpxConnection) -> None:
        nonlocal counter
        counter += 1
        body, sig, number = cheap, cheap_sig, None
        elapsed_ms = int((time.monotonic() - started) * 1000)
        if pr_due and pr_due[0] <= elapsed_ms:
            number, body, sig = pr_at[pr_due.pop(0)]
        expect_duplicate = number is None and counter % DUPLICATE_EVERY == 0 and bool(result.accepted)
        # a duplicate is a redelivery of an accepted delivery: same X-GitHub-Delivery
        fresh = f"load-pr-{number}-{uuid.uuid4()}" if number is not None else f"load-{uuid.uuid4()}"
        delivery = result.accepted[len(result.accepted) // 2] if expect_duplicate else fresh
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": delivery,
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": sig,
            "User-Agent": "GitHub-Hookshot/load",
        }
        t0 = time.monotonic()
        try:
            status = await conn.post(HOOK, headers, body)
        except (OSError, ConnectionError, httpx.HTTPError, asyncio.IncompleteReadError):
            result.errors += 1
            await conn.close()
            if number is not None:
                pr_due.insert(0, elapsed_ms)  # try that PR delivery again
                pr_at[elapsed_ms] = (number, body, sig)
            return
        result.latencies.append(time.monotonic() - t0)
        result.sent += 1
        result.statuses[status] += 1
        if status == 202:
            seconds[int(time.monotonic() - started)] += 1
            if expect_duplicate:
                result.errors += 1  # a duplicate must never be accepted twice
                return
            result.accepted.append(delivery)
            if number is not None:
                result.pr_deliveries[delivery] = number

    async def connection(k: int) -> None:
        conn: _RawConnection | _HttpxConnection
        conn = _RawConnection("127.0.0.1", port) if client == "raw" else _HttpxConnection("127.0.0.1", port)
        i = 0
        try:
            while time.monotonic() < deadline:
                if rate is not None:
                    due = started + (i * result.connections + k) / rate
                    i += 1
                    if due > time.monotonic():
                        await asyncio.sleep(due - time.monotonic())
                    if time.monotonic() >= deadline:
                        break
                await one(conn)
            while k == 0 and pr_due:  # a slow run may not have reached every PR delivery: send the rest now
                await one(conn)
        finally:
            await conn.close()

    await asyncio.gather(*(connection(k) for k in range(result.connections)))
    result.duration = time.monotonic() - started
    result.per_second = [seconds[s] for s in range(int(result.duration))]


def _ledger(db: Path, accepted: list[str], reviews: Collection[str] = ()) -> tuple[Counter[str], int, int]:
    """States of the accepted deliveries, how many were claimed exactly once, and more than once.

    A review-triggering delivery (in `reviews`) is claimed twice by design: once to note the PR's newest
    head, again after the debounce; it counts as once when it has at most two claims (its one review is
    checked on the fake GitHub).
    """
    with sqlite3.connect(db) as conn:
        conn.execute("create temp table wanted (id text primary key)")
        conn.executemany("insert or ignore into wanted values (?)", ((d,) for d in accepted))
        rows = conn.execute(
            "select d.state, d.attempts, count(*) from delivery d join wanted w on w.id = d.id group by 1, 2"
        ).fetchall()
        marks = ",".join("?" * len(reviews))
        query = f"select count(*) from delivery where attempts = 2 and id in ({marks})"
        debounced = int(conn.execute(query, list(reviews)).fetchone()[0]) if reviews else 0
    states: Counter[str] = Counter()
    once = more = 0
    for state, attempts, count in rows:
        states[state] += count
        once += count if attempts == 1 else 0
        more += count if attempts > 1 else 0
    return states, once + debounced, more - debounced


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_load(
    workdir: Path,
    *,
    duration: float = 60.0,
    connections: int = 32,
    prs: int = 20,
    workers: int = 2,
    rate: float | None = None,
    drain_timeout: float = 900.0,
    client: str = "raw",
) -> LoadResult:
    """Phases 1-3 of the module docstring against loopback processes; never raises on a failed check."""
    from tests.e2e.conftest import SECRET, webhook_payload
    from tests.fakes.github import FakeGitHub, free_port, serve_fake, shared_app_keys

    keys = shared_app_keys()
    fake = FakeGitHub(4747, keys.public_pem)
    repo = fake.add_repo("octo", "load", installation_id=47)
    vulnerable = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    pulls = [
        fake.add_pull(repo, i, base={"README.md": "x\n"}, head={f"svc/m{i}.py": vulnerable}, author="dev")
        for i in range(1, prs + 1)
    ]
    labeled = json.loads((FIXTURES / "pull_request.labeled.json").read_text())
    cheap = json.dumps(labeled, separators=(",", ":")).encode()
    pr_bodies = [(p.number, json.dumps(webhook_payload("pull_request.opened.2", repo, p)).encode()) for p in pulls]
    state = workdir / "state"
    result = LoadResult(duration=duration, connections=connections)
    with serve_fake(fake) as api_url:
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ANTHROPIC_API_KEY", "PRIVATE_KEY_PATH")},
            "PYTHONPATH": str(ROOT),
            "APP_ID": "4747",
            "PRIVATE_KEY": keys.private_pem.replace("\n", "\\n"),
            "WEBHOOK_SECRET": SECRET,
            "GITHUB_API_URL": api_url,
            "DIFFWISE_STATE_DIR": str(state),
            "DIFFWISE_FSYNC": "0",
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "json",
        }
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(workdir / "serve.log", "ab") as log:
            web = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=log,
            )
        children = [web]
        try:
            _wait_ready(url, web)
            asyncio.run(_drive(port, SECRET, result, cheap, pr_bodies, rate, client))
            result.serve_rss_mib = _rss_mib(web.pid)
            db = state / "queue.db"
            result.in_ledger = sum(_ledger(db, result.accepted)[0].values())
            result.queued_tasks = _count(db, "select count(*) from task")
            started = time.monotonic()
            for k in range(workers):
                with open(workdir / f"worker-{k}.log", "ab") as log:
                    children.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "app", "worker"],
                            env=env,
                            cwd=workdir,
                            stdout=log,
                            stderr=log,
                        )
                    )
            deadline = started + drain_timeout
            n = len(result.accepted)
            while time.monotonic() < deadline:
                states, _, _ = _ledger(db, result.accepted)
                if states["done"] + states["dead"] + states["superseded"] >= n:
                    break
                if any(c.poll() is not None for c in children):
                    break
                time.sleep(0.25)
            result.drain_seconds = time.monotonic() - started
            time.sleep(1.0)  # anything that would run twice has had time to
            result.final_states, result.claimed_once, result.claimed_more = _ledger(
                db, result.accepted, result.pr_deliveries
            )
            with sqlite3.connect(db) as conn:
                result.anomalies = conn.execute(
                    "select id, event, state, attempts, error from delivery"
                    " where state != 'done' or attempts > 2 or (attempts = 2 and id not like 'load-pr-%') limit 20"
                ).fetchall()
            result.left_in_queue = _count(db, "select count(*) from task") + _count(db, "select count(*) from schedule")
        finally:
            for child in children:
                _stop(child)
    by_sha = {p.head_sha: p.number for p in pulls}
    result.reviews_per_pr = dict(Counter(by_sha[r["commit_id"]] for r in repo.reviews))
    result.reviews_per_pr |= {p.number: 0 for p in pulls if p.number not in result.reviews_per_pr}
    return result


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"diffwise serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("diffwise serve did not become ready")


def report(result: LoadResult, args: Any) -> str:
    lat = sorted(result.latencies) or [0.0]

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1000

    client = "raw-stream" if args.client == "raw" else "httpx"
    pacing = f"paced at {args.rate:g}/s" if args.rate else "closed loop: as fast as it answers"
    steady = result.per_second[1:-1] or result.per_second or [0]
    n = len(result.accepted)
    lines = [
        "## Load: sustained deliveries, then exactly-once processing",
        "",
        f"`diffwise serve --no-worker` (SQLite queue, synchronous=NORMAL) under {result.duration:.0f} s of signed "
        f"deliveries from an asyncio {client} client on {result.connections} keep-alive connections "
        f"({pacing}); the client "
        f"shares the machine's {os.cpu_count()} CPUs with the server. Then {args.workers} `diffwise worker` "
        "processes drain the queue.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| deliveries sent | {result.sent:,} |",
        f"| accepted (202) | {n:,} |",
        f"| duplicates answered 200 | {result.statuses[200]:,} |",
        f"| other answers / transport errors | {sum(v for k, v in result.statuses.items() if k not in (200, 202))}"
        f" / {result.errors} |",
        f"| sustained rate (202/s, whole run) | {result.rate:,.0f} |",
        f"| per-second 202s: min / median / max (first and last second excluded) | {min(steady):,} / "
        f"{statistics.median(steady):,.0f} / {max(steady):,} |",
        f"| latency p50 / p99 / max (ms) | {pct(50):.1f} / {pct(99):.1f} / {lat[-1] * 1000:.1f} |",
        f"| accepted deliveries found in the ledger / tasks queued | {result.in_ledger:,} / {result.queued_tasks:,} |",
        f"| drain time / rate | {result.drain_seconds:.1f} s / {n / max(result.drain_seconds, 1e-9):,.0f} jobs/s |",
        f"| processed exactly once (done, one claim) | {result.claimed_once:,} of {n:,} |",
        f"| processed more than once | {result.claimed_more:,} |",
        f"| tasks left in the queue | {result.left_in_queue} |",
        f"| PRs with exactly one review | {sum(c == 1 for c in result.reviews_per_pr.values())}"
        f" of {len(result.reviews_per_pr)} |",
        f"| RSS of `diffwise serve` after the run | {result.serve_rss_mib:.0f} MiB |",
        "",
    ]
    problems = result.problems()
    lines += [f"- FAILED: {p}" for p in problems] or ["- every accepted delivery was queued and processed exactly once"]
    lines += [f"- claimed more than once or not done: `{row!r}`" for row in result.anomalies]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--prs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="`diffwise worker` processes for the drain")
    parser.add_argument("--rate", type=float, default=None, help="pace the client at this many deliveries/s")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load client (default: raw asyncio)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="diffwise-load-"))
    result = None
    try:
        result = run_load(
            workdir,
            duration=args.duration,
            connections=args.connections,
            prs=args.prs,
            workers=args.workers,
            rate=args.rate,
            drain_timeout=args.drain_timeout,
            client=args.client,
        )
    finally:
        if result is not None and not result.problems():
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"(logs and queue kept in {workdir})", file=sys.stderr)
    text = report(result, args)
    print(text)
    if result.problems():
        print(text, file=sys.stderr)  # `python -m benchmarks` shows stderr when a benchmark fails
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
