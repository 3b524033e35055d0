"""Router matching and composition, tolerant event models on real payloads, and the dispatcher's error policy."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.context import Context
from app.delivery import Delivery
from app.dispatch import Outcome, dispatch
from app.errors import RetryLater
from app.events import PayloadError, parse_event
from app.github import GitHubApp
from app.routing import Router
from app.settings import Settings
from tests.fakes.github import FakeGitHub, shared_app_keys

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"
ALL_FIXTURES = sorted(FIXTURES.glob("*.json"))


def delivery(event: str, payload: Any, delivery_id: str = "d-1") -> Delivery:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Delivery(delivery_id, event, body, "sha256=unused", time.time())


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def run(settings: Settings, d: Delivery, router: Router, **kwargs: Any) -> Outcome:
    return asyncio.run(dispatch(settings, d, router=router, **kwargs))


# ---- router ------------------------------------------------------------------------------------


async def _noop(ctx: Context) -> None:
    return None


def test_keys_match_event_action_bare_event_and_wildcard() -> None:
    router = Router()
    calls: list[str] = []

    async def opened(ctx: Context) -> None:
        calls.append("opened")

    async def any_pr(ctx: Context) -> None:
        calls.append("any")

    router.on("pull_request.opened", "pull_request.reopened")(opened)
    router.on("pull_request")(any_pr)
    router.on("*")(_noop)
    assert router.handlers_for("pull_request", "opened") == [opened, any_pr, _noop]
    assert router.handlers_for("pull_request", "closed") == [any_pr, _noop]
    assert router.handlers_for("issues", "opened") == [_noop]
    assert not Router().handles("pull_request", "opened")


def test_a_handler_under_several_matching_keys_runs_once() -> None:
    router = Router()
    router.on("pull_request", "pull_request.opened")(_noop)
    assert router.handlers_for("pull_request", "opened") == [_noop]


def test_routers_compose_in_order() -> None:
    first, second = Router(), Router()

    async def a(ctx: Context) -> None: ...

    async def b(ctx: Context) -> None: ...

    first.on("issue_comment.created")(a)
    second.on("issue_comment")(b)
    assert Router(first, second).handlers_for("issue_comment", "created") == [a, b]
    assert Router(first, second).keys == {"issue_comment.created", "issue_comment"}


@pytest.mark.parametrize("key", ["", "pull_request.", "pull request", ".opened", "a.b.c"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="bad event key"):
        Router().on(key)


# ---- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.stem)
def test_every_fixture_parses(path: Path) -> None:
    raw = json.loads(path.read_text())
    event = parse_event(raw)
    assert event.action == raw.get("action")
    if "pull_request" in raw:
        assert event.pull_request is not None
        assert event.pull_request.number == raw["pull_request"]["number"]
        assert event.pull_request.head.sha == raw["pull_request"]["head"]["sha"]
        assert event.pull_number == raw["pull_request"]["number"]
    if "installation" in raw:
        assert event.installation_id == raw["installation"]["id"]
    if "comment" in raw:
        assert event.comment is not None
        assert event.comment.body == raw["comment"]["body"]


def test_issue_comment_on_a_pull_request_knows_its_pull() -> None:
    raw = fixture("issue_comment.created")
    raw["issue"]["pull_request"] = {"url": "https://api.github.com/repos/x/y/pulls/1"}
    event = parse_event(raw)
    assert event.pull_number == raw["issue"]["number"]
    raw["issue"].pop("pull_request")
    assert parse_event(raw).pull_number is None


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=20,
    )
)
def test_parse_event_accepts_or_raises_payload_error_only(value: Any) -> None:
    try:
        parse_event(value)
    except PayloadError:
        pass


# ---- dispatch ----------------------------------------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    return Settings.for_tests()


def test_context_helpers_on_a_real_payload(settings: Settings) -> None:
    seen: list[Context] = []
    router = Router()

    @router.on("pull_request.synchronize")
    async def capture(ctx: Context) -> None:
        seen.append(ctx)

    payload = fixture("pull_request.synchronize")
    outcome = run(settings, delivery("pull_request", payload, "sync-1"), router)
    assert outcome.status == "handled"
    [ctx] = seen
    assert ctx.key == "pull_request.synchronize"
    assert ctx.delivery_id == "sync-1"
    assert ctx.repo() == {"owner": "Codertocat", "repo": "Hello-World"}
    assert ctx.pull(per_page=5) == {"owner": "Codertocat", "repo": "Hello-World", "pull_number": 2, "per_page": 5}
    assert ctx.raw["after"] == payload["after"]
    assert ctx.installation_id == payload["installation"]["id"]


def test_malformed_json_and_unhandled_events_are_dropped(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    router = Router()
    router.on("pull_request")(_noop)
    with caplog.at_level(logging.WARNING):
        outcome = run(settings, delivery("pull_request", b"{not json", "bad-1"), router)
    assert outcome.status == "malformed"
    assert "bad-1" in caplog.text  # named in the message, whatever the log format
    assert run(settings, delivery("pull_request", b"[1, 2]"), router).status == "malformed"
    assert run(settings, delivery("pull_request", b"\xff\xfe"), router).status == "malformed"
    assert run(settings, delivery("star", {"action": "created"}), router).status == "dropped"


def test_a_failing_handler_is_logged_with_the_delivery_and_others_still_run(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router()
    ran: list[str] = []

    @router.on("pull_request.opened")
    async def broken(ctx: Context) -> None:
        raise KeyError("boom")

    @router.on("pull_request")
    async def fine(ctx: Context) -> None:
        ran.append(ctx.delivery_id)

    with caplog.at_level(logging.ERROR):
        outcome = run(settings, delivery("pull_request", fixture("pull_request.opened"), "err-7"), router)
    assert outcome.status == "handled"
    assert ran == ["err-7"]
    assert len(outcome.errors) == 1
    assert "boom" in outcome.errors[0]
    [record] = [r for r in caplog.records if r.exc_info]
    assert "err-7" in record.getMessage()
    assert getattr(record, "delivery_id", None) == "err-7"
    assert getattr(record, "repo", None) == "Codertocat/Hello-World"


def test_retry_later_propagates_to_the_job_system(settings: Settings) -> None:
    router = Router()

    @router.on("pull_request")
    async def limited(ctx: Context) -> None:
        raise RetryLater("rate limited", delay=90)

    with pytest.raises(RetryLater) as caught:
        run(settings, delivery("pull_request", fixture("pull_request.opened")), router)
    assert caught.value.delay == 90


def test_handlers_get_an_installation_client_bound_to_the_delivery() -> None:
    fake = FakeGitHub(9, shared_app_keys().public_pem)
    payload = fixture("pull_request.synchronize")
    fake.add_repo("Codertocat", "Hello-World", installation_id=payload["installation"]["id"])
    settings = Settings.for_tests(app_id=9, private_key=shared_app_keys().private_pem, github_api_url=fake.base_url())
    router = Router()
    branches: list[str] = []

    @router.on("pull_request")
    async def read_repo(ctx: Context) -> None:
        response = await ctx.gh.arequest("GET", "/repos/{owner}/{repo}".format(**ctx.repo()))
        branches.append(response.json()["default_branch"])

    gh_app = GitHubApp(settings, transport=fake.transport())
    outcome = run(settings, delivery("pull_request", payload, "gh-1"), router, github_app=gh_app)
    assert outcome.status == "handled"
    assert branches == ["main"]
    assert {r.headers["x-diffwise-delivery"] for r in fake.requests} == {"gh-1"}


def test_default_router_routes_pull_requests_to_the_review_handler() -> None:
    from app.dispatch import default_router

    names = [h.__name__ for h in default_router().handlers_for("pull_request", "opened")]
    assert "review_pull_request" in names
    assert default_router().handlers_for("pull_request", "labeled") == []
