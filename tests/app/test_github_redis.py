"""Installation tokens shared through Redis: many processes, one token per installation, refreshed near expiry."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from app.github import TOKEN_CACHE_PREFIX, GitHubApp, MemCacheStrategy, SharedRedisCacheStrategy
from app.settings import Settings
from tests.app.test_github import FAST, make_fake
from tests.fakes.github import FakeGitHub, serve_fake, shared_app_keys
from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
TOKENS = r"/access_tokens$"


def redis_settings(fake: FakeGitHub, url: str | None, base_url: str | None = None) -> Settings:
    return Settings.for_tests(
        app_id=42,
        private_key=shared_app_keys().private_pem,
        github_api_url=base_url or fake.base_url(),
        redis_url=url,
    )


def get_repo_async(gh_app: GitHubApp) -> str:
    async def go() -> str:
        gh = gh_app.installation_client(7, "d-async")
        return str((await gh.arequest("GET", "/repos/octo/hello")).json()["full_name"])

    return asyncio.run(go())


def get_repo_sync(gh_app: GitHubApp) -> str:
    return str(gh_app.installation_client(7, "d-sync").request("GET", "/repos/octo/hello").json()["full_name"])


def token_keys(url: str) -> list[str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return sorted(client.scan_iter(match=f"{TOKEN_CACHE_PREFIX}*:installation:*"))
    finally:
        client.close()


def test_two_apps_sharing_redis_mint_one_token_per_installation(redis_url: str) -> None:  # noqa: F811
    fake = make_fake()
    web = GitHubApp(redis_settings(fake, redis_url), transport=fake.transport(), retry=FAST)
    worker = GitHubApp(redis_settings(fake, redis_url), transport=fake.transport(), retry=FAST)
    assert isinstance(web._cache, SharedRedisCacheStrategy)
    for gh_app in (web, worker, worker, web):
        assert get_repo_async(gh_app) == "octo/hello"
    assert fake.count("POST", TOKENS) == 1
    assert fake.count("GET", r"^/repos/octo/hello$") == 4
    [key] = token_keys(redis_url)
    assert key.startswith(f"{TOKEN_CACHE_PREFIX}githubkit:auth:app:42:installation:7:")


def test_sync_and_async_clients_share_the_same_redis_token(redis_url: str) -> None:  # noqa: F811
    fake = make_fake()
    first = GitHubApp(redis_settings(fake, redis_url), transport=fake.transport(), retry=FAST)
    assert get_repo_async(first) == "octo/hello"  # async, in-process ASGI transport
    with serve_fake(fake) as base_url:
        second = GitHubApp(redis_settings(fake, redis_url, base_url), retry=FAST)
        assert get_repo_sync(second) == "octo/hello"  # sync (like the recovery thread), over loopback
    assert fake.count("POST", TOKENS) == 1


def test_a_token_near_expiry_is_refreshed_through_redis(redis_url: str) -> None:  # noqa: F811
    fake = make_fake()
    fake.token_ttl = 62  # githubkit keeps a token until a minute before expires_at: ~2 s here
    web = GitHubApp(redis_settings(fake, redis_url), transport=fake.transport(), retry=FAST)
    worker = GitHubApp(redis_settings(fake, redis_url), transport=fake.transport(), retry=FAST)
    get_repo_async(web)
    get_repo_async(worker)
    assert fake.count("POST", TOKENS) == 1
    [key] = token_keys(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        assert 0 < client.pttl(key) <= 2000
        deadline = time.monotonic() + 5
        while client.exists(key) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.close()
    get_repo_async(worker)
    get_repo_async(web)
    assert fake.count("POST", TOKENS) == 2


def test_a_token_already_inside_the_margin_is_used_once_and_never_stored(redis_url: str) -> None:  # noqa: F811
    fake = make_fake()
    fake.token_ttl = 30  # expires_at minus githubkit's minute is in the past: Redis would refuse that TTL
    gh_app = GitHubApp(redis_settings(fake, redis_url), transport=fake.transport(), retry=FAST)
    assert get_repo_async(gh_app) == "octo/hello"
    assert get_repo_async(gh_app) == "octo/hello"
    assert fake.count("POST", TOKENS) == 2
    assert token_keys(redis_url) == []


def test_without_redis_each_process_keeps_its_own_memory_cache() -> None:
    fake = make_fake()
    one = GitHubApp(redis_settings(fake, None), transport=fake.transport(), retry=FAST)
    two = GitHubApp(redis_settings(fake, None), transport=fake.transport(), retry=FAST)
    assert isinstance(one._cache, MemCacheStrategy)
    get_repo_async(one)
    get_repo_async(one)
    get_repo_async(two)
    assert fake.count("POST", TOKENS) == 2


def test_tokens_are_not_logged(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    fake = make_fake()
    caplog.set_level(logging.DEBUG)
    gh_app = GitHubApp(redis_settings(fake, redis_url), transport=fake.transport(), retry=FAST)
    get_repo_async(gh_app)
    get_repo_async(GitHubApp(redis_settings(fake, redis_url), transport=fake.transport(), retry=FAST))
    [token] = fake.tokens
    assert caplog.records  # debug logging was on
    assert token not in caplog.text
    assert redis_url not in caplog.text


CHILD = textwrap.dedent(
    """
    import os
    from app.github import GitHubApp
    from app.settings import Settings

    settings = Settings.for_tests(
        app_id=42, private_key=os.environ["TEST_PRIVATE_KEY"], github_api_url=os.environ["TEST_API_URL"],
        redis_url=os.environ["TEST_REDIS_URL"],
    )
    gh = GitHubApp(settings).installation_client(7)
    print(gh.request("GET", "/repos/octo/hello").json()["full_name"])
    """
)


def test_two_real_processes_mint_one_token(redis_url: str) -> None:  # noqa: F811
    fake = make_fake()
    with serve_fake(fake) as base_url:
        env = {
            **os.environ,
            "TEST_PRIVATE_KEY": shared_app_keys().private_pem,
            "TEST_API_URL": base_url,
            "TEST_REDIS_URL": redis_url,
        }
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == "octo/hello"
    assert fake.count("POST", TOKENS) == 1
    assert fake.count("GET", r"^/repos/octo/hello$") == 2
