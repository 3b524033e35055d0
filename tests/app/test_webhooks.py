"""The receiver: every answer of the contract, durability on 202, group commit, and never a 5xx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from app.jobs import JobQueue
from app.main import create_app
from app.settings import Settings
from app.webhooks import GroupCommitter, WebhookReceiver
from tests.conftest import WEBHOOK_SECRET, sign, webhook_headers

HOOK = "/api/github/webhooks"


def pr_body(number: int = 1, sha: str = "a" * 40, pad: int = 0) -> bytes:
    payload = {
        "action": "opened",
        "number": number,
        "pull_request": {"number": number, "head": {"sha": sha}, "body": "x" * pad},
        "repository": {"full_name": "octo/repo"},
    }
    return json.dumps(payload).encode()


@pytest.fixture
def queue(settings: Settings) -> Iterator[JobQueue]:
    q = JobQueue(settings)
    yield q
    q.close()


@pytest.fixture
def client(settings: Settings, queue: JobQueue) -> Iterator[TestClient]:
    with TestClient(create_app(settings, queue=queue), raise_server_exceptions=False) as c:
        yield c


def post(client: TestClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return client.post(HOOK, content=body, headers=headers)


def test_signed_delivery_is_accepted_and_queued(client: TestClient, queue: JobQueue) -> None:
    body = pr_body()
    response = post(client, body, webhook_headers("pull_request", "d-1", body))
    assert response.status_code == 202
    assert queue.pending() == 1
    assert queue.ledger.state("d-1") == "queued"


def test_accepted_delivery_is_durable_for_a_fresh_process_view(settings: Settings, client: TestClient) -> None:
    body = pr_body(pad=20_000)
    assert post(client, body, webhook_headers("pull_request", "d-durable", body)).status_code == 202
    other = JobQueue(settings)  # a separate connection to the same files, as a restarted process would have
    try:
        assert other.pending() == 1
        assert other.ledger.state("d-durable") == "queued"
    finally:
        other.close()


def test_duplicate_delivery_is_200_and_not_queued_twice(client: TestClient, queue: JobQueue) -> None:
    body = pr_body()
    headers = webhook_headers("pull_request", "dup-1", body)
    assert post(client, body, headers).status_code == 202
    second = post(client, body, headers)
    assert second.status_code == 200
    assert "duplicate" in second.text
    assert queue.pending() == 1


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda h: h.pop("X-Hub-Signature-256"), 401),
        (lambda h: h.update({"X-Hub-Signature-256": sign(b"other body")}), 401),
        (lambda h: h.update({"X-Hub-Signature-256": "sha1=abc"}), 401),
        (lambda h: h.update({"X-Hub-Signature-256": sign(pr_body(), "wrong-secret")}), 401),
        (lambda h: h.pop("X-GitHub-Event"), 400),
        (lambda h: h.pop("X-GitHub-Delivery"), 400),
        (lambda h: h.update({"X-GitHub-Delivery": "bad id with spaces"}), 400),
    ],
)
def test_rejections(client: TestClient, queue: JobQueue, mutate: Any, status: int) -> None:
    body = pr_body()
    headers = webhook_headers("pull_request", "d-rej", body)
    mutate(headers)
    assert post(client, body, headers).status_code == status
    assert queue.pending() == 0


def test_ping_is_answered_without_a_job(client: TestClient, queue: JobQueue) -> None:
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    response = post(client, body, webhook_headers("ping", "p-1", body))
    assert response.status_code == 200
    assert queue.pending() == 0


def test_unhandled_event_is_accepted(client: TestClient, queue: JobQueue) -> None:
    body = b'{"action": "created", "starred_at": null}'
    assert post(client, body, webhook_headers("star", "s-1", body)).status_code == 202
    assert queue.pending() == 1


def test_only_post_is_allowed(client: TestClient) -> None:
    assert client.get(HOOK).status_code == 405


def test_probes_and_placeholder(client: TestClient) -> None:
    assert client.get("/healthz").text == "ok\n"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert "No GitHub App credentials" in client.get("/").text


def test_readyz_reports_an_unreachable_queue(tmp_path: Path) -> None:
    s = Settings.for_tests(state_dir=tmp_path, webhook_secret=WEBHOOK_SECRET, redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        response = c.get("/readyz")
        assert response.status_code == 503
        assert response.json()["ready"] is False
        body = pr_body()
        # The queue is down: the receiver says so with a 503, which is not about the client's input.
        assert post(c, body, webhook_headers("pull_request", "r-1", body)).status_code == 503


def test_without_webhook_secret_the_receiver_is_not_mounted(tmp_path: Path) -> None:
    s = Settings.for_tests(state_dir=tmp_path, webhook_secret=None)
    with TestClient(create_app(s)) as c:
        body = pr_body()
        assert post(c, body, webhook_headers("pull_request", "n-1", body)).status_code == 404
        assert "WEBHOOK_SECRET is not set" in c.get("/").text or "credentials" in c.get("/").text
        assert c.get("/readyz").json()["webhooks"] is False


def test_extra_routes_come_before_the_placeholder(settings: Settings, queue: JobQueue) -> None:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def setup_page(_: Any) -> PlainTextResponse:
        return PlainTextResponse("register")

    with TestClient(create_app(settings, [Route("/", setup_page)], queue=queue)) as c:
        assert c.get("/").text == "register"


class _Chunks:
    """An ASGI receive() that yields a body in chunks and counts how much was read."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk, self.left, self.read = chunk, count, 0

    async def __call__(self) -> dict[str, Any]:
        self.left -= 1
        self.read += 1
        return {"type": "http.request", "body": self.chunk, "more_body": self.left > 0}


async def _call(receiver: WebhookReceiver, headers: list[tuple[bytes, bytes]], receive: Any) -> int:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await receiver({"type": "http", "method": "POST", "headers": headers}, receive, send)
    return int(sent[0]["status"])


def _never_called(_: Any) -> list[bool]:
    raise AssertionError("an oversized body must not be enqueued")


def test_oversized_body_by_content_length_is_413_without_reading() -> None:
    receiver = WebhookReceiver(WEBHOOK_SECRET, GroupCommitter(_never_called))
    chunks = _Chunks(b"x" * 65536, 500)
    headers = [
        (b"x-hub-signature-256", sign(b"").encode()),
        (b"x-github-event", b"push"),
        (b"x-github-delivery", b"big-1"),
        (b"content-length", str(26 * 1024 * 1024).encode()),
    ]
    assert asyncio.run(_call(receiver, headers, chunks)) == 413
    assert chunks.read == 0


def test_oversized_streamed_body_stops_reading_at_the_cap() -> None:
    receiver = WebhookReceiver(WEBHOOK_SECRET, GroupCommitter(_never_called))
    chunks = _Chunks(b"x" * (1024 * 1024), 40)  # 40 MiB, no Content-Length (chunked)
    headers = [(b"x-hub-signature-256", sign(b"").encode()), (b"x-github-event", b"push"), (b"x-github-delivery", b"b")]
    assert asyncio.run(_call(receiver, headers, chunks)) == 413
    assert chunks.read == 26  # 25 MiB accepted, the 26th chunk crosses the cap, the rest is never read


@pytest.mark.parametrize(
    ("fsync", "mode", "inline"),
    [(False, "auto", True), (True, "auto", False), (False, "thread", False), (True, "inline", True)],
    ids=["inline-commit", "thread-commit-for-fsync", "thread-commit-by-setting", "inline-commit-by-setting"],
)
def test_concurrent_deliveries_share_commits_and_duplicates_race_safely(
    tmp_path: Path, fsync: bool, mode: str, inline: bool
) -> None:
    settings = Settings.for_tests(
        webhook_secret=WEBHOOK_SECRET, state_dir=tmp_path / "state", fsync=fsync, group_commit=mode
    )
    queue = JobQueue(settings)

    async def run() -> tuple[list[int], list[int]]:
        app = create_app(settings, queue=queue)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            bodies = [pr_body(number=i, pad=2000) for i in range(60)]
            distinct = await asyncio.gather(
                *(
                    c.post(HOOK, content=b, headers=webhook_headers("pull_request", f"c-{i}", b))
                    for i, b in enumerate(bodies)
                )
            )
            same = bodies[0]
            dups = await asyncio.gather(
                *(c.post(HOOK, content=same, headers=webhook_headers("pull_request", "same", same)) for _ in range(20))
            )
        committer = app.state.diffwise["committer"]
        assert committer._inline is inline
        assert committer.items == 80
        assert committer.batches < 80  # concurrent requests were grouped into shared transactions
        return [r.status_code for r in distinct], [r.status_code for r in dups]

    try:
        distinct, dups = asyncio.run(run())
        assert distinct == [202] * 60
        assert sorted(dups) == [200] * 19 + [202]
        assert queue.pending() == 61
    finally:
        queue.close()


_header_names = st.sampled_from(
    ["X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID", "Content-Type", "X-Other"]
)
_header_values = st.binary(max_size=80).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00").strip())


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, JobQueue]]:
    s = Settings.for_tests(webhook_secret=WEBHOOK_SECRET, state_dir=tmp_path_factory.mktemp("fuzz"))
    q = JobQueue(s)
    with TestClient(create_app(s, queue=q), raise_server_exceptions=False) as c:
        yield c, q
    q.close()


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=2000),
    headers=st.dictionaries(_header_names, _header_values, max_size=6),
    valid_signature=st.booleans(),
    event=st.sampled_from(["pull_request", "ping", "push", "issue_comment", ""]),
)
def test_arbitrary_requests_never_get_a_5xx(
    fuzz_client: tuple[TestClient, JobQueue], body: bytes, headers: dict[str, bytes], valid_signature: bool, event: str
) -> None:
    client, _ = fuzz_client
    sent: dict[str, Any] = dict(headers)
    if valid_signature:
        sent["X-Hub-Signature-256"] = sign(body)
        if event:
            sent["X-GitHub-Event"] = event
    response = client.post(HOOK, content=body, headers=sent)
    assert response.status_code < 500
    assert response.status_code in (200, 202, 400, 401, 413)


def test_every_answer_is_reported_to_the_observer() -> None:
    seen: list[tuple[int, bytes]] = []

    def submit(batch: Any) -> list[bool]:
        return [True] * len(batch)

    receiver = WebhookReceiver(
        WEBHOOK_SECRET, GroupCommitter(submit, inline=True), observe=lambda s, t: seen.append((s, t))
    )
    body = b"{}"

    async def send_one(headers: list[tuple[bytes, bytes]]) -> int:
        return await _call(receiver, headers, _Chunks(body, 1))

    good = [(b"x-hub-signature-256", sign(body).encode()), (b"x-github-event", b"push"), (b"x-github-delivery", b"o-1")]
    assert asyncio.run(send_one(good)) == 202
    assert asyncio.run(send_one(good[1:])) == 401
    assert [s for s, _ in seen] == [202, 401]


def test_route_providers_are_collected_and_missing_ones_skipped(settings: Settings) -> None:
    from app import web_routes

    routes = web_routes.collect(settings, ("app.not_written_yet:routes", "app.metrics:routes"))
    assert [getattr(r, "path", None) for r in routes] == ["/metrics"]
    with pytest.raises(AttributeError):
        web_routes.collect(settings, ("app.metrics:no_such_function",))


def test_other_routes_get_the_same_body_cap(settings: Settings, queue: JobQueue) -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    with TestClient(create_app(settings, [Route("/echo", echo, methods=["POST"])], queue=queue)) as c:
        assert c.post("/echo", content=b"x" * 1000).text == "1000"
        assert c.post("/echo", content=b"x" * (25 * 1024 * 1024 + 1)).status_code == 413
