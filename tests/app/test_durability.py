"""Durability with real processes: a 202 survives `kill -9`, runs once after restart, and never twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.delivery import Delivery
from app.jobs import JobQueue
from app.settings import Settings
from tests.conftest import WEBHOOK_SECRET, webhook_headers
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]

# A worker process whose dispatch records what it runs, so the test can count runs across processes.
WORKER_SCRIPT = """
import asyncio, os, sys
from app.jobs import JobPolicy, JobQueue
from app.settings import Settings

out, seconds, lease = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

def note(line):
    with open(out, "a") as f:
        f.write(line + "\\n")

async def record(settings, delivery):
    note(f"start {delivery.id} {os.getpid()}")
    await asyncio.sleep(seconds)
    note(f"end {delivery.id} {os.getpid()}")

settings = Settings.from_env(env_file=None)
policy = JobPolicy(debounce=0, lease=lease, poll=0.05, poll_max_delay=0.1)
JobQueue(settings, dispatch=record, policy=policy).run_worker(workers=2)
"""


class Processes:
    """Starts child processes with a given environment and makes sure they are gone at the end."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.workdir = workdir
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, *argv: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"proc-{len(self.children)}.log", "wb")
        child = subprocess.Popen([sys.executable, *argv], env=self.env, cwd=self.workdir, stdout=log, stderr=log)
        log.close()
        self.children.append(child)
        return child

    def serve(self, port: int) -> subprocess.Popen[bytes]:
        child = self.start("-m", "app", "serve", "--no-worker", "--port", str(port))
        wait_for(lambda: _healthy(port), what="the server to answer /healthz", child=child)
        return child

    def worker(self, out: Path, seconds: float = 0.0, lease: float = 30.0) -> subprocess.Popen[bytes]:
        return self.start("-c", WORKER_SCRIPT, str(out), str(seconds), str(lease))

    def stop_all(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait(10)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(
    condition: Callable[[], bool],
    timeout: float = 20.0,
    what: str = "condition",
    child: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if child is not None and child.poll() is not None:
            raise AssertionError(f"process exited with {child.returncode} while waiting for {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def lines(path: Path, kind: str) -> list[str]:
    if not path.exists():
        return []
    return [line.split()[1] for line in path.read_text().splitlines() if line.startswith(kind + " ")]


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    p = Processes({"WEBHOOK_SECRET": WEBHOOK_SECRET, "DIFFWISE_STATE_DIR": str(tmp_path / "state")}, tmp_path)
    yield p
    p.stop_all()


def post(port: int, delivery_id: str, event: str = "issues") -> int:
    body = json.dumps({"action": "opened", "repository": {"full_name": "octo/repo"}, "n": delivery_id}).encode()
    headers = webhook_headers(event, delivery_id, body)
    return httpx.post(f"http://127.0.0.1:{port}/api/github/webhooks", content=body, headers=headers).status_code


def test_a_202_survives_kill_9_and_runs_exactly_once_after_restart(procs: Processes, tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "runs.txt"
    server = procs.serve(port)
    assert [post(port, f"k-{i}") for i in range(3)] == [202, 202, 202]
    assert post(port, "k-0") == 200
    server.send_signal(signal.SIGKILL)
    server.wait(10)

    worker = procs.worker(out)
    wait_for(lambda: len(lines(out, "end")) == 3, what="the three jobs to run", child=worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)

    # After a restart the dedupe still holds, and a fresh worker finds nothing left to run.
    procs.serve(port)
    assert post(port, "k-1") == 200
    assert post(port, "k-new") == 202
    worker = procs.worker(out)
    wait_for(lambda: "k-new" in lines(out, "end"), what="the new job to run", child=worker)
    time.sleep(0.5)
    assert sorted(lines(out, "end")) == ["k-0", "k-1", "k-2", "k-new"]


def test_a_job_killed_mid_run_is_finished_once_after_its_lease(procs: Processes, tmp_path: Path) -> None:
    out = tmp_path / "runs.txt"
    settings = Settings.for_tests(state_dir=tmp_path / "state")
    queue = JobQueue(settings)
    try:
        body = b'{"action": "created", "repository": {"full_name": "octo/repo"}}'
        assert queue.submit(Delivery("mid-1", "issue_comment", body, "", time.time()))
    finally:
        queue.close()

    worker = procs.worker(out, seconds=2.0, lease=1.0)
    wait_for(lambda: lines(out, "start") == ["mid-1"], what="the job to start", child=worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    time.sleep(1.2)  # let the dead worker's lease run out

    worker = procs.worker(out, seconds=0.2, lease=1.0)
    wait_for(lambda: lines(out, "end") == ["mid-1"], what="the reclaimed job to finish", child=worker)
    time.sleep(0.5)
    assert lines(out, "start") == ["mid-1", "mid-1"]
    assert lines(out, "end") == ["mid-1"]


@pytest.mark.parametrize(
    ("command", "bad", "variable"),
    [
        ("serve", {"APP_ID": "twelve"}, "APP_ID"),
        (
            "worker",
            {"APP_ID": "12", "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nhunter2\n-----END RSA PRIVATE KEY-----"},
            "PRIVATE_KEY",
        ),
    ],
)
def test_bad_settings_stop_the_process_with_one_line(
    tmp_path: Path, command: str, bad: dict[str, str], variable: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WEBHOOK_SECRET": "do-not-print-me", **bad}
    done = subprocess.run(
        [sys.executable, "-m", "app", command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines_out = done.stderr.strip().splitlines()
    assert len(lines_out) == 1
    assert variable in lines_out[0]
    assert "do-not-print-me" not in done.stderr + done.stdout
    assert "hunter2" not in done.stderr + done.stdout


def test_a_receiver_and_a_separate_worker_share_the_sqlite_queue(procs: Processes, tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "runs.txt"
    procs.serve(port)
    worker = procs.worker(out)
    answers = [post(port, f"live-{i}") for i in range(40)]
    assert answers == [202] * 40
    wait_for(lambda: len(lines(out, "end")) == 40, what="40 jobs from a live receiver", child=worker)
    time.sleep(0.3)
    assert sorted(lines(out, "end")) == sorted(f"live-{i}" for i in range(40))
