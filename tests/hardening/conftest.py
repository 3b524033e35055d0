"""Hardening harness: the real `diffwise` processes (or the in-process app) against the fake GitHub and Anthropic."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SECRET, sign, webhook_payload
from tests.fakes.github import FakeGitHub, FakePull, FakeRepo, free_port, serve_fake, shared_app_keys

ROOT = Path(__file__).resolve().parents[2]
APP_ID = 6161
INSTALLATION_ID = 91
HOOK = "/api/github/webhooks"
TERMINAL = frozenset({"done", "superseded", "dead"})
VULNERABLE = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"


def signed_headers(event: str, body: bytes, delivery_id: str | None = None, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
        "X-Hub-Signature-256": sign(body, secret),
        "User-Agent": "GitHub-Hookshot/hardening",
    }


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, check: Callable[[], None] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if check is not None:
            check()
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Processes:
    """`python -m app ...` (or any module) children sharing one environment; logs in the work dir."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.runs: dict[str, int] = {}

    def start(self, name: str, *argv: str, module: str = "app", env: dict[str, str] | None = None) -> int:
        """Start (or restart) `name`; its log file gets every run appended."""
        self.runs[name] = self.runs.get(name, 0) + 1
        with open(self.workdir / f"{name}.log", "ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", module, *argv],
                env={**self.env, **(env or {})},
                cwd=self.workdir,
                stdout=log,
                stderr=log,
            )
        self.children[name] = child
        return child.pid

    def serve(self, name: str = "web", *, worker: bool = False) -> str:
        port = free_port()
        argv = ["serve", "--host", "127.0.0.1", "--port", str(port)] + ([] if worker else ["--no-worker"])
        self.start(name, *argv)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(url), 30, f"{name} to be ready", lambda: self.check_alive(name))
        return url

    def kill9(self, name: str) -> None:
        child = self.children[name]
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(10)

    def alive(self, name: str) -> bool:
        return name in self.children and self.children[name].poll() is None

    def check_alive(self, *names: str) -> None:
        for name in names or tuple(self.children):
            child = self.children[name]
            if child.poll() is not None and child.returncode not in (0, -signal.SIGKILL):
                raise AssertionError(f"{name} exited with {child.returncode}:\n{self.log(name)[-3000:]}")

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, name: str) -> None:
        child = self.children.get(name)
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)

    def stop_all(self) -> None:
        for name in list(self.children):
            self.stop(name)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def base_env(api_url: str, state_dir: Path, home: Path, **extra: str) -> dict[str, str]:
    """The production environment of a diffwise process pointed at the loopback fakes (no real network)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "APP_ID": str(APP_ID),
        "PRIVATE_KEY": shared_app_keys().private_pem.replace("\n", "\\n"),
        "WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": api_url,
        "DIFFWISE_STATE_DIR": str(state_dir),
        "DIFFWISE_WORKERS": "2",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def process_stack(workdir: Path, **extra_env: str) -> Iterator[tuple[FakeGitHub, Processes]]:
    """The fake GitHub on loopback and a process group for `diffwise serve` / `diffwise worker` children."""
    fake = FakeGitHub(APP_ID, shared_app_keys().public_pem)
    with serve_fake(fake) as api_url:
        procs = Processes(base_env(api_url, workdir / "state", workdir, **extra_env), workdir)
        try:
            yield fake, procs
        finally:
            procs.stop_all()


def seed_pulls(fake: FakeGitHub, n: int, *, name: str = "svc", start: int = 1) -> tuple[FakeRepo, list[FakePull]]:
    repo = fake.repos.get(f"octo/{name}") or fake.add_repo("octo", name, installation_id=INSTALLATION_ID)
    pulls = [
        fake.add_pull(repo, i, base={"README.md": "x\n"}, head={f"svc/m{i}.py": VULNERABLE}, author="dev")
        for i in range(start, start + n)
    ]
    return repo, pulls


def opened_body(repo: FakeRepo, pull: FakePull) -> bytes:
    return json.dumps(webhook_payload("pull_request.opened.2", repo, pull)).encode()


def post(url: str, event: str, body: bytes, delivery_id: str | None = None, **kwargs: Any) -> tuple[str, int]:
    headers = signed_headers(event, body, delivery_id)
    response = httpx.post(url + HOOK, content=body, headers=headers, timeout=30, **kwargs)
    return headers["X-GitHub-Delivery"], response.status_code


def review_numbers(repo: FakeRepo) -> list[int]:
    """The PR number of every review the repo received (by the head SHA it reviewed)."""
    by_sha = {p.head_sha: p.number for p in repo.pulls.values()}
    return sorted(by_sha[r["commit_id"]] for r in repo.reviews)


def finding_markers(repo: FakeRepo, number: int) -> list[str]:
    """Every finding marker the bot wrote on PR `number` (inline comments and review bodies)."""
    import re

    pull = repo.pulls[number]
    review_ids = {r["id"] for r in repo.reviews if r["commit_id"] == pull.head_sha}
    bodies = [c["body"] for c in repo.review_comments if c.get("pull_request_review_id") in review_ids]
    return [m for body in bodies for m in re.findall(r"<!-- diffwise:finding:([^ ]+) -->", body)]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[FakeGitHub, Processes]]:
    with process_stack(tmp_path) as pair:
        yield pair


# ---- the app in this process (receiver + embedded worker threads), for fault and hostile-input tests -------


FAST_JOBS: dict[str, float] = {
    "debounce": 0.0,
    "poll": 0.05,
    "poll_max_delay": 0.1,
    "backoff_base": 0.2,
    "lock_retry": 0.2,
}


class InProcess:
    """The real app (create_app + JobQueue + embedded worker) on a loopback port; fakes for GitHub and Anthropic."""

    def __init__(self, fake: FakeGitHub, app_url: str, settings: Any, queue: Any) -> None:
        self.fake = fake
        self.app_url = app_url
        self.settings = settings
        self.queue = queue

    def send(self, event: str, payload: dict[str, Any] | bytes, *, delivery_id: str | None = None) -> tuple[str, int]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return post(self.app_url, event, body, delivery_id)

    def wait(self, *delivery_ids: str, timeout: float = 60.0) -> dict[str, str | None]:
        states: dict[str, str | None] = {}

        def finished() -> bool:
            states.update({d: self.queue.ledger.state(d) for d in delivery_ids})
            return all(s in TERMINAL for s in states.values())

        wait_until(finished, timeout, f"deliveries to finish ({len(delivery_ids)})")
        return states


@contextlib.contextmanager
def in_process(
    state_dir: Path,
    *,
    anthropic_url: str | None = None,
    github_app: Callable[[Any], Any] | None = None,
    jobs: dict[str, float] | None = None,
) -> Iterator[InProcess]:
    """`github_app` wraps the fake's ASGI app (to add latency); `anthropic_url` turns the LLM review on."""
    from app.jobs import JobPolicy, JobQueue
    from app.main import create_app
    from app.settings import Settings
    from tests.fakes.github import serve_asgi

    keys = shared_app_keys()
    fake = FakeGitHub(APP_ID, keys.public_pem)
    served = github_app(fake.app) if github_app is not None else fake.app
    with serve_asgi(served) as api_url:
        options: dict[str, Any] = {
            "app_id": APP_ID,
            "private_key": keys.private_pem,
            "webhook_secret": SECRET,
            "github_api_url": api_url,
            "state_dir": state_dir,
        }
        if anthropic_url is not None:
            options |= {"anthropic_api_key": "sk-ant-fake-key-for-tests", "anthropic_base_url": anthropic_url}
        settings = Settings.for_tests(**options)
        queue = JobQueue(settings, policy=JobPolicy(**(FAST_JOBS | (jobs or {}))))  # type: ignore[arg-type]
        app = create_app(settings, queue=queue, worker=True)
        try:
            with serve_asgi(app, lifespan="on") as app_url:
                yield InProcess(fake, app_url, settings, queue)
        finally:
            queue.close()


def bot_text(repo: FakeRepo, number: int) -> str:
    """Everything the bot said about PR `number`: review bodies, inline comments, and its PR conversation comments."""
    reviews = [r for r in repo.reviews if r.get("pull_number") == number]
    ids = {r["id"] for r in reviews}
    parts = [r.get("body") or "" for r in reviews]
    parts += [c["body"] for c in repo.review_comments if c.get("pull_request_review_id") in ids]
    parts += [c["body"] for c in repo.issue_comments if c["issue_number"] == number]
    return "\n".join(parts)
