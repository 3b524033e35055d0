"""End-to-end harness: the fake GitHub and the real app (receiver + embedded worker) on loopback ports."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.fakes.github import FakeGitHub, FakePull, FakeRepo, serve_asgi, serve_fake, shared_app_keys

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"
APP_ID = 4242
INSTALLATION_ID = 77
SECRET = "e2e-webhook-secret"
TERMINAL = frozenset({"done", "superseded", "dead"})


def webhook_payload(name: str, repo: FakeRepo, pull: FakePull, **pr_overrides: Any) -> dict[str, Any]:
    """A real GitHub payload (from @octokit/webhooks-examples) pointed at seeded fake data."""
    payload = copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))
    payload["installation"] = {"id": repo.installation_id, "node_id": "MDIz"}
    repository = payload["repository"]
    repository.update(
        {"id": repo.id, "name": repo.name, "full_name": repo.full_name, "default_branch": repo.default_branch}
    )
    repository["owner"]["login"] = repo.owner
    pr = payload["pull_request"]
    pr.update({"number": pull.number, "state": pull.state, "draft": pull.draft, "title": pull.title, "body": pull.body})
    pr["user"] = {"login": pull.author, "id": 1, "type": "User"}
    pr["head"].update({"sha": pull.head_sha, "ref": pull.head_ref})
    pr["base"].update({"sha": pull.base_sha, "ref": pull.base_ref})
    for side in ("head", "base"):
        if isinstance(pr[side].get("repo"), dict):
            pr[side]["repo"]["full_name"] = repo.full_name
    pr["labels"] = [{"name": label} for label in pull.labels]
    pr.update(pr_overrides)
    payload["number"] = pull.number
    return payload


def comment_payload(
    repo: FakeRepo, pull: FakePull, body: str, login: str, comment_id: int | None = None
) -> dict[str, Any]:
    """A real issue_comment.created payload: `login` wrote `body` on the PR's conversation."""
    payload = copy.deepcopy(json.loads((FIXTURES / "issue_comment.created.json").read_text()))
    payload["installation"] = {"id": repo.installation_id, "node_id": "MDIz"}
    payload["repository"].update(
        {"id": repo.id, "name": repo.name, "full_name": repo.full_name, "default_branch": repo.default_branch}
    )
    payload["repository"]["owner"]["login"] = repo.owner
    payload["issue"].update({"number": pull.number, "state": pull.state, "pull_request": {"url": "x"}})
    user = {"login": login, "id": 2, "type": "User"}
    payload["comment"].update({"id": comment_id or 900_000 + pull.number, "body": body, "user": user})
    payload["sender"] = user
    return payload


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Harness:
    fake: FakeGitHub
    app_url: str
    settings: Settings
    queue: Any  # app.jobs.JobQueue

    def send(self, event: str, payload: dict[str, Any], *, delivery_id: str | None = None) -> tuple[str, int]:
        body = json.dumps(payload).encode()
        delivery_id = delivery_id or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": sign(body),
            "User-Agent": "GitHub-Hookshot/e2e",
        }
        response = httpx.post(self.app_url + self.settings.webhook_path, content=body, headers=headers, timeout=10)
        return delivery_id, response.status_code

    def wait(self, *delivery_ids: str, timeout: float = 45.0) -> dict[str, str | None]:
        """Block until every delivery reached a terminal state in the job ledger."""
        deadline = time.monotonic() + timeout
        while True:
            states = {d: self.queue.ledger.state(d) for d in delivery_ids}
            if all(s in TERMINAL for s in states.values()):
                return states
            if time.monotonic() > deadline:
                raise AssertionError(f"deliveries not finished in {timeout}s: {states}")
            time.sleep(0.05)


@contextlib.contextmanager
def running_harness(state_dir: Path, *, prefix: str = "") -> Iterator[Harness]:
    """The fake GitHub (GHES-like under `prefix`) and the app, configured from the environment as in production."""
    jobs = pytest.importorskip("app.jobs")
    main = pytest.importorskip("app.main")
    keys = shared_app_keys()
    fake = FakeGitHub(APP_ID, keys.public_pem, prefix=prefix)
    with serve_fake(fake) as api_url:
        env = {
            "APP_ID": str(APP_ID),
            "PRIVATE_KEY": keys.private_pem,
            "WEBHOOK_SECRET": SECRET,
            "DIFFWISE_STATE_DIR": str(state_dir),
            "LOG_LEVEL": "warning",
        }
        if prefix == "/api/v3":
            host = api_url.split("://", 1)[1].split("/", 1)[0]
            env |= {"GHE_HOST": host, "GHE_PROTOCOL": "http"}
        else:
            env["GITHUB_API_URL"] = api_url
        settings = Settings.from_env(env, env_file=None)
        assert settings.github_api_url.rstrip("/") == api_url
        policy = jobs.JobPolicy(debounce=0.0, poll=0.05, poll_max_delay=0.1, backoff_base=0.2, lock_retry=0.2)
        queue = jobs.JobQueue(settings, policy=policy)
        app = main.create_app(settings, queue=queue, worker=True)
        try:
            with serve_asgi(app, lifespan="on") as app_url:
                yield Harness(fake, app_url, settings, queue)
        finally:
            queue.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with running_harness(tmp_path / "state") as h:
        yield h
