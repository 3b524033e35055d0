"""Scale-out on Redis: two `serve --no-worker` and two `worker` processes; N PRs, N reviews, none twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.jobs import JobQueue
from app.settings import Settings
from tests.e2e.conftest import SECRET, sign, webhook_payload
from tests.fakes.github import FakeGitHub, FakePull, FakeRepo, free_port, serve_fake, shared_app_keys
from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
APP_ID = 5150
VULNERABLE = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"


class Cluster:
    """Web and worker subprocesses sharing one Redis, one state dir and the fake GitHub; all killed at the end."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.web_urls: list[str] = []

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        with open(self.workdir / f"{name}.log", "wb") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "app", *argv], env=self.env, cwd=self.workdir, stdout=log, stderr=log
            )
        self.children.append((name, child))
        return child

    def web(self, name: str) -> str:
        port = free_port()
        self.start(name, "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        self.web_urls.append(url)
        return url

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            try:
                return all(httpx.get(u + "/readyz", timeout=1).status_code == 200 for u in self.web_urls)
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, "web processes to be ready", self)

    def check_alive(self) -> None:
        for name, child in self.children:
            if child.poll() is not None:
                log = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{name} exited with {child.returncode}:\n{log}")

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for _, child in self.children:
            if child.poll() is None:
                child.terminate()
        for _, child in self.children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        cluster.check_alive()
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def fake() -> FakeGitHub:
    return FakeGitHub(APP_ID, shared_app_keys().public_pem)


@pytest.fixture
def cluster(fake: FakeGitHub, tmp_path: Path, redis_url: str) -> Iterator[Cluster]:  # noqa: F811
    with serve_fake(fake) as api_url:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "PYTHONPATH": str(ROOT),
            "APP_ID": str(APP_ID),
            "PRIVATE_KEY": shared_app_keys().private_pem.replace("\n", "\\n"),
            "WEBHOOK_SECRET": SECRET,
            "GITHUB_API_URL": api_url,
            "REDIS_URL": redis_url,
            "DIFFWISE_STATE_DIR": str(tmp_path / "state"),
            "DIFFWISE_WORKERS": "2",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
        }
        c = Cluster(env, tmp_path)
        try:
            yield c
        finally:
            c.stop()


def seed(fake: FakeGitHub, n: int) -> tuple[FakeRepo, list[FakePull]]:
    repo = fake.add_repo("octo", "scale", installation_id=88)
    pulls = [
        fake.add_pull(repo, i, base={"README.md": "x\n"}, head={f"svc/m{i}.py": VULNERABLE}, author="dev")
        for i in range(1, n + 1)
    ]
    return repo, pulls


def post(url: str, delivery_id: str, body: bytes) -> int:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": "1",
        "X-Hub-Signature-256": sign(body),
    }
    return httpx.post(url + "/api/github/webhooks", content=body, headers=headers, timeout=10).status_code


def run_scale_out(fake: FakeGitHub, cluster: Cluster, n: int, timeout: float) -> None:
    web_a, web_b = cluster.web("web-a"), cluster.web("web-b")
    cluster.start("worker-1", "worker")
    cluster.start("worker-2", "worker")
    repo, pulls = seed(fake, n)
    cluster.wait_ready()

    deliveries: list[tuple[str, bytes]] = []
    for i, pull in enumerate(pulls):
        body = json.dumps(webhook_payload("pull_request.opened.2", repo, pull)).encode()
        delivery_id = str(uuid.uuid4())
        deliveries.append((delivery_id, body))
        first, second = (web_a, web_b) if i % 2 == 0 else (web_b, web_a)
        assert post(first, delivery_id, body) == 202
        assert post(second, delivery_id, body) == 200  # the same delivery at the other web process: a duplicate

    settings = Settings.for_tests(redis_url=cluster.env["REDIS_URL"], state_dir=Path(cluster.env["DIFFWISE_STATE_DIR"]))
    queue = JobQueue(settings)
    try:
        ids = [d for d, _ in deliveries]
        wait_until(lambda: all(queue.ledger.state(d) == "done" for d in ids), timeout, f"{n} jobs to finish", cluster)
        # A GitHub "redeliver" of a finished delivery keeps its id: refused at the door, never run again.
        assert post(web_b, deliveries[0][0], deliveries[0][1]) == 200
        time.sleep(1.0)  # anything that would run twice has had time to
    finally:
        queue.close()

    assert fake.count("POST", r"/pulls/\d+/reviews$") == n
    assert sorted(_number_of(repo, r) for r in repo.reviews) == [p.number for p in pulls]
    assert all(r["event"] == "COMMENT" for r in repo.reviews)
    worked = {name for name in ("worker-1", "worker-2") if "reviewed #" in cluster.log(name)}
    assert worked, "no worker logged a review"
    for name in ("web-a", "web-b"):
        assert "reviewed #" not in cluster.log(name)  # --no-worker really runs no jobs


def _number_of(repo: FakeRepo, review: dict[str, object]) -> int:
    commit = review["commit_id"]
    return next(p.number for p in repo.pulls.values() if p.head_sha == commit)


def test_two_web_and_two_worker_processes_review_each_pr_once(fake: FakeGitHub, cluster: Cluster) -> None:
    run_scale_out(fake, cluster, n=6, timeout=40.0)


@pytest.mark.slow
def test_scale_out_under_a_larger_batch(fake: FakeGitHub, cluster: Cluster) -> None:
    run_scale_out(fake, cluster, n=40, timeout=240.0)
