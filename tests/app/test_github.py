"""githubkit against the fake GitHub: App JWT → token, shared token cache, delivery header, GHES, retries."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from githubkit.exception import RequestFailed, SecondaryRateLimitExceeded
from githubkit.response import Response
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import RetryLater
from app.github import DELIVERY_HEADER, GitHubApp, RetryPolicy, api_base_url, graphql_url, shared_app
from app.settings import Settings
from tests.fakes.github import FakeGitHub, serve_fake, shared_app_keys

FAST = RetryPolicy(server_backoff=0.01, max_inline_wait=0.5, rate_limit_reschedule_floor=1.0)


def make_fake(prefix: str = "") -> FakeGitHub:
    fake = FakeGitHub(42, shared_app_keys().public_pem, prefix=prefix)
    fake.add_repo("octo", "hello", installation_id=7)
    return fake


def settings_for(fake: FakeGitHub, base_url: str | None = None) -> Settings:
    return Settings.for_tests(
        app_id=42, private_key=shared_app_keys().private_pem, github_api_url=base_url or fake.base_url()
    )


def get_repo(gh_app: GitHubApp, delivery: str = "d-1") -> dict[str, object]:
    async def go() -> dict[str, object]:
        gh = gh_app.installation_client(7, delivery)
        return (await gh.arequest("GET", "/repos/octo/hello")).json()

    return asyncio.run(go())


def test_installation_token_is_minted_once_and_shared_across_clients_and_jobs() -> None:
    fake = make_fake()
    gh_app = GitHubApp(settings_for(fake), transport=fake.transport(), retry=FAST)
    for delivery in ("d-1", "d-2", "d-3"):  # three jobs, each with its own event loop and client
        assert get_repo(gh_app, delivery)["full_name"] == "octo/hello"
    assert fake.count("POST", r"/access_tokens$") == 1
    assert fake.count("GET", r"^/repos/octo/hello$") == 3
    token_call = next(r for r in fake.requests if r.path.endswith("/access_tokens"))
    assert token_call.headers["authorization"].startswith("Bearer ")  # the App JWT


def test_a_token_about_to_expire_is_replaced() -> None:
    fake = make_fake()
    fake.token_ttl = 30  # githubkit refreshes a minute before expires_at
    gh_app = GitHubApp(settings_for(fake), transport=fake.transport(), retry=FAST)
    get_repo(gh_app)
    get_repo(gh_app)
    assert fake.count("POST", r"/access_tokens$") == 2


def test_every_request_carries_the_delivery_id() -> None:
    fake = make_fake()
    gh_app = GitHubApp(settings_for(fake), transport=fake.transport(), retry=FAST)
    get_repo(gh_app, "abc-123")
    assert {r.headers.get(DELIVERY_HEADER.lower()) for r in fake.requests} == {"abc-123"}
    assert all(r.headers["user-agent"].startswith("diffwise/") for r in fake.requests)


def test_ghes_base_url_over_loopback() -> None:
    fake = make_fake(prefix="/api/v3")
    with serve_fake(fake) as base_url:
        settings = settings_for(fake, base_url)
        assert api_base_url(settings) == base_url
        assert graphql_url(base_url).endswith("/api/graphql")
        assert get_repo(GitHubApp(settings, retry=FAST))["default_branch"] == "main"
    assert fake.count("GET", r"^/repos/octo/hello$") == 1


def test_graphql_url_for_github_com() -> None:
    assert graphql_url("https://api.github.com") == "https://api.github.com/graphql"


def test_shared_app_is_one_per_credentials() -> None:
    fake = make_fake()
    settings = settings_for(fake)
    assert shared_app(settings) is shared_app(settings)
    assert shared_app(settings) is not shared_app(settings.replace(github_api_url="http://other.test"))


def test_missing_credentials_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="APP_ID"):
        GitHubApp(Settings.for_tests())


def test_a_short_server_outage_is_retried_in_process() -> None:
    fake = make_fake()
    gh_app = GitHubApp(settings_for(fake), transport=fake.transport(), retry=FAST)
    get_repo(gh_app)  # mint the token first
    fake.fail_next(2, status=502)
    assert get_repo(gh_app)["name"] == "hello"
    assert fake.count("GET", r"^/repos/octo/hello$") == 4


def test_a_long_outage_becomes_retry_later() -> None:
    fake = make_fake()
    gh_app = GitHubApp(settings_for(fake), transport=fake.transport(), retry=FAST)
    get_repo(gh_app)
    fake.fail_next(10, status=503)
    with pytest.raises(RetryLater) as caught:
        get_repo(gh_app)
    assert caught.value.delay == FAST.server_reschedule_delay
    assert fake.count("GET", r"^/repos/octo/hello$") == 1 + 1 + FAST.server_retries


def test_a_short_retry_after_is_waited_in_process() -> None:
    fake = make_fake()
    gh_app = GitHubApp(settings_for(fake), transport=fake.transport(), retry=FAST)
    get_repo(gh_app)
    fake.fail_next(1, status=403, retry_after=0, secondary=True)
    started = time.monotonic()
    assert get_repo(gh_app)["name"] == "hello"
    assert time.monotonic() - started < 5  # githubkit reads a zero wait as "sleep 60 s"; we never pass zero


@pytest.mark.parametrize(("status", "secondary"), [(403, True), (429, True), (403, False)])
def test_a_long_rate_limit_reschedules_instead_of_sleeping(status: int, secondary: bool) -> None:
    fake = make_fake()
    gh_app = GitHubApp(settings_for(fake), transport=fake.transport(), retry=FAST)
    get_repo(gh_app)
    fake.fail_next(1, status=status, retry_after=120, secondary=secondary)
    with pytest.raises(RetryLater) as caught:
        get_repo(gh_app)
    assert 100 <= caught.value.delay <= 121


def test_client_errors_are_not_retried() -> None:
    fake = make_fake()
    gh_app = GitHubApp(settings_for(fake), transport=fake.transport(), retry=FAST)

    async def go() -> None:
        await gh_app.installation_client(7).arequest("GET", "/repos/octo/missing")

    with pytest.raises(RequestFailed):
        asyncio.run(go())
    assert fake.count("GET", r"/repos/octo/missing") == 1


def test_connection_refused_becomes_retry_later() -> None:
    fake = make_fake()
    with serve_fake(fake) as base_url:
        pass  # the port is free again: every connection is refused
    gh_app = GitHubApp(settings_for(fake, base_url), retry=FAST)
    with pytest.raises(RetryLater):
        get_repo(gh_app)


def test_timeouts_are_retried_briefly_then_rescheduled() -> None:
    fake = make_fake()
    with serve_fake(fake) as base_url:
        gh_app = GitHubApp(settings_for(fake, base_url), retry=FAST, timeout=0.2)
        get_repo(gh_app)
        fake.fail_next(1, status=200, delay=0.5)  # one slow answer: the retry gets through
        assert get_repo(gh_app)["name"] == "hello"
        fake.fail_next(10, status=200, delay=0.5)  # GitHub hangs: hand the job back to the queue
        with pytest.raises(RetryLater, match="timeout"):
            get_repo(gh_app)


def _failed(status: int, retry_after: float | None) -> RequestFailed:
    raw = httpx.Response(status, request=httpx.Request("GET", "https://api.github.test/repos/o/r"))
    response: Response[Any] = Response(raw, Any)
    if retry_after is None:
        return RequestFailed(response)
    return SecondaryRateLimitExceeded(response, timedelta(seconds=retry_after))


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from([403, 429, 500, 502, 503, 504, 404, 422]),
    retry_after=st.none() | st.floats(0, 7200),
    attempt=st.integers(0, 10),
)
def test_the_retry_decision_never_waits_long_in_process(status: int, retry_after: float | None, attempt: int) -> None:
    policy = RetryPolicy()
    exc = _failed(status, retry_after if status in (403, 429) else None)
    delay: float | None = None
    try:
        option = policy.decide(exc, attempt)
    except RetryLater as later:
        delay = later.delay
    if delay is not None:
        assert delay >= 1.0  # rescheduled, never spun
        return
    if option.do_retry:
        assert option.retry_after is not None
        assert 0 < option.retry_after.total_seconds() <= policy.max_inline_wait
        assert attempt < max(policy.rate_limit_retries, policy.server_retries)
    else:
        assert status in (403, 404, 422)  # a client error GitHub will answer the same way again
