"""The loader through app.source.GitHubSource against the fake GitHub: default branch, org fallback, bad files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.github import GitHubApp
from app.policy import Policy
from app.policy_loader import MAX_BYTES, PolicyCache, PolicyResult, load_policy
from app.settings import Settings
from app.source import GitHubSource
from tests.fakes.github import FakeGitHub, shared_app_keys

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policy"


@pytest.fixture
def fake() -> FakeGitHub:
    return FakeGitHub(42, shared_app_keys().public_pem)


def load(fake: FakeGitHub, repo: str = "api", ref: str = "main", cache: PolicyCache | None = None) -> PolicyResult:
    settings = Settings.for_tests(app_id=42, private_key=shared_app_keys().private_pem, github_api_url="http://gh.test")
    app = GitHubApp(settings, transport=fake.transport())

    async def go() -> PolicyResult:
        async with app.installation_client(7) as gh:
            return await load_policy(GitHubSource(gh, "acme", repo), "acme", repo, ref, cache=cache, installation_id=7)

    return asyncio.run(go())


def test_default_branch_extends_and_org_fallback(fake: FakeGitHub) -> None:
    api = fake.add_repo("acme", "api", installation_id=7)
    org = fake.add_repo("acme", ".github", installation_id=7)
    fake.set_file(org, "main", ".github/diffwise.yml", "checks:\n  fail_on: critical\n")
    assert load(fake).policy.checks.fail_on == "critical"  # no file in the repo: the org's applies

    base = fake.add_repo("acme", "base", installation_id=7)
    fake.set_file(base, "main", "policies/strict.yml", "comments:\n  max_comments: 2\n")
    fake.set_file(api, "main", ".github/diffwise.yml", "_extends: base:policies/strict.yml\ntests:\n  enabled: false\n")
    fake.set_file(api, "feature", ".github/diffwise.yml", "tests:\n  enabled: true\n")
    result = load(fake)
    assert result.ok, result.errors
    assert (result.policy.comments.max_comments, result.policy.tests.enabled) == (2, False)
    assert result.policy.checks.fail_on == "high"  # the repo's own file replaces the org fallback
    assert result.sources["comments.max_comments"] == "acme/base:policies/strict.yml"


def test_cache_avoids_refetching_for_the_same_sha(fake: FakeGitHub) -> None:
    api = fake.add_repo("acme", "api", installation_id=7)
    sha = fake.set_file(api, "main", ".github/diffwise.yml", "review:\n  drafts: true\n")
    cache = PolicyCache()
    assert load(fake, ref=sha, cache=cache).policy.review.drafts is True
    reads = fake.count("GET", r"/contents/")
    assert load(fake, ref=sha, cache=cache).policy.review.drafts is True
    assert fake.count("GET", r"/contents/") == reads


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"# big\n" * (10 * 1024 * 1024 // 6), f"the limit is {MAX_BYTES} bytes"),
        ((FIXTURES / "bomb.yml").read_bytes(), "alias bomb"),
        (b"review: [\n", "invalid YAML"),
    ],
)
def test_bad_files_are_errors_not_silence(fake: FakeGitHub, content: bytes, fragment: str) -> None:
    api = fake.add_repo("acme", "api", installation_id=7)
    org = fake.add_repo("acme", ".github", installation_id=7)
    fake.set_file(org, "main", ".github/diffwise.yml", "checks:\n  fail_on: never\n")
    fake.set_file(api, "main", ".github/diffwise.yml", content)
    result = load(fake)
    assert any(fragment in e.message for e in result.errors), result.errors
    # A broken repo file never falls through to the org's file, and the rest runs on defaults.
    assert result.policy == Policy.default()
