"""GitHubSource against the fake GitHub: uncached PR reads, paginated files, contents, few API calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzers.diff import FileStatus
from app.errors import PermanentError
from app.github import GitHubApp, RetryPolicy
from app.settings import Settings
from app.source import DiffTooLarge, GitHubSource, classify_bytes, pull_info
from tests.fakes.github import FakeGitHub, FakeRepo, shared_app_keys

T = TypeVar("T")


@pytest.fixture
def fake() -> FakeGitHub:
    return FakeGitHub(5, shared_app_keys().public_pem)


@pytest.fixture
def repo(fake: FakeGitHub) -> FakeRepo:
    return fake.add_repo("octo", "hello", installation_id=3)


def with_source(fake: FakeGitHub, body: Callable[[GitHubSource], Awaitable[T]]) -> T:
    settings = Settings.for_tests(app_id=5, private_key=shared_app_keys().private_pem, github_api_url=fake.base_url())
    gh_app = GitHubApp(settings, transport=fake.transport(), retry=RetryPolicy(server_backoff=0.01))

    async def go() -> T:
        gh = gh_app.installation_client(3, "src-1")
        async with gh:
            return await body(GitHubSource(gh, "octo", "hello"))

    return asyncio.run(go())


def test_pull_is_read_fresh_each_time(fake: FakeGitHub, repo: FakeRepo) -> None:
    fake.add_pull(repo, 1, base={"a.py": "x = 1\n"}, head={"a.py": "x = 2\n"}, title="T", author="dev")

    async def body(source: GitHubSource) -> tuple[str, str]:
        first, _ = await source.pull(1)
        fake.push(repo, 1, {"a.py": "x = 3\n"})
        second, raw = await source.pull(1)
        assert raw["number"] == 1
        info = pull_info("octo", "hello", second)
        assert info.title == "T"
        assert info.author == "dev"
        return first.head.sha, second.head.sha

    before, after = with_source(fake, body)
    assert before != after
    assert after == repo.pulls[1].head_sha
    assert fake.count("GET", r"/pulls/1$") == 2


def test_missing_pull_is_permanent(fake: FakeGitHub, repo: FakeRepo) -> None:
    async def body(source: GitHubSource) -> None:
        await source.pull(99)

    with pytest.raises(PermanentError):
        with_source(fake, body)


def test_files_follow_link_pagination_into_a_changeset(fake: FakeGitHub, repo: FakeRepo) -> None:
    head: dict[str, str | bytes | None] = {f"src/f{i:03}.py": f"v = {i}\n" for i in range(250)}
    head["logo.png"] = b"\x89PNG\0\0binary"
    fake.add_pull(repo, 2, head=head)
    files = with_source(fake, lambda s: s.files(2))
    assert files.listed == 251
    assert not files.truncated
    assert len(files.changeset.files) == 250
    assert files.changeset.get("src/f007.py") is not None
    assert files.changeset.get("src/f007.py").status is FileStatus.ADDED
    assert [s.path for s in files.changeset.skipped] == ["logo.png"]
    assert fake.count("GET", r"/pulls/2/files$") == 3
    assert all(r.query.get("per_page") == "100" for r in fake.requests if r.path.endswith("/files"))


def test_the_files_api_is_capped_at_3000(fake: FakeGitHub, repo: FakeRepo) -> None:
    fake.add_pull(repo, 3, head={f"f{i:04}.txt": "x\n" for i in range(3050)})
    files = with_source(fake, lambda s: s.files(3, total=3050))
    assert files.listed == 3000
    assert files.truncated
    assert fake.count("GET", r"/pulls/3/files$") == 30


def test_diff_media_type_and_its_refusal(fake: FakeGitHub, repo: FakeRepo) -> None:
    fake.add_pull(repo, 4, base={"a.py": "a\n"}, head={"a.py": "b\n"})
    fake.add_pull(repo, 5, head={f"g{i}.txt": "x\n" for i in range(301)})
    assert "+b" in with_source(fake, lambda s: s.diff(4))
    with pytest.raises(DiffTooLarge):
        with_source(fake, lambda s: s.diff(5))


def test_head_files_reads_text_and_skips_binary_large_and_removed(fake: FakeGitHub, repo: FakeRepo) -> None:
    pull = fake.add_pull(
        repo,
        6,
        base={"gone.py": "old\n", "big.txt": "small\n", "latin.txt": "a\n"},
        head={
            "ok.py": "print('hi')\n",
            "gone.py": None,
            "big.txt": "y" * 1_000_001,
            "latin.txt": "café\n".encode("latin-1"),
        },
    )

    async def body(source: GitHubSource) -> Any:
        files = await source.files(6)
        return await source.head_files(files.changeset, pull.head_sha)

    contents, skipped = with_source(fake, body)
    assert contents == {"ok.py": "print('hi')\n"}
    reasons = {s.path: s.reason for s in skipped}
    assert reasons["big.txt"].startswith("too large")
    assert reasons["latin.txt"] == "not UTF-8 text"
    assert fake.count("GET", r"/contents/gone\.py") == 0


def test_read_file_serves_the_policy_loader(fake: FakeGitHub, repo: FakeRepo) -> None:
    fake.set_file(repo, "main", ".github/diffwise.yml", "llm:\n  enabled: false\n")
    org = fake.add_repo("octo", ".github", installation_id=3)
    fake.set_file(org, "main", ".github/diffwise.yml", "org: true\n")

    async def body(source: GitHubSource) -> tuple[Any, ...]:
        return (
            await source.read_file("octo", "hello", ".github/diffwise.yml", None),
            await source.read_file("octo", ".github", ".github/diffwise.yml", None),
            await source.read_file("octo", "hello", "missing.yml", "main"),
            await source.read_file("octo", "hello", ".github", None),  # a directory is not a file
        )

    mine, org_file, missing, directory = with_source(fake, body)
    assert mine == b"llm:\n  enabled: false\n"
    assert org_file == b"org: true\n"
    assert missing is None
    assert directory is None


def test_conversation_listings_and_permission(fake: FakeGitHub, repo: FakeRepo) -> None:
    fake.add_pull(repo, 7, head={"a.py": "x\n"})
    for i in range(120):
        fake.add_issue_comment(repo, 7, f"comment {i}", user="dev")
    repo.collaborators["dev"] = "write"

    async def body(source: GitHubSource) -> tuple[Any, ...]:
        return (
            await source.issue_comments(7),
            await source.reviews(7),
            await source.review_comments(7),
            await source.permission("dev"),
            await source.permission("stranger"),
        )

    comments, reviews, review_comments, dev, stranger = with_source(fake, body)
    assert len(comments) == 120
    assert reviews == []
    assert review_comments == []
    assert dev == "write"
    assert stranger == "none"


@given(st.binary(max_size=300))
def test_classify_bytes_is_total(data: bytes) -> None:
    text, reason = classify_bytes(data, limit=200)
    assert (text is None) != (reason is None)
    if text is not None:
        assert text.encode("utf-8") == data
    if len(data) > 200:
        assert reason is not None
        assert reason.startswith("too large")


def test_head_files_reads_only_wanted_paths_up_to_a_limit(fake: FakeGitHub, repo: FakeRepo) -> None:
    pull = fake.add_pull(repo, 8, head={f"src/m{i}.py": f"x = {i}\n" for i in range(6)} | {"vendor/v.js": "v\n"})

    async def body(source: GitHubSource) -> Any:
        files = await source.files(8)
        return await source.head_files(
            files.changeset, pull.head_sha, wanted=lambda p: not p.startswith("vendor/"), max_files=4
        )

    contents, skipped = with_source(fake, body)
    assert sorted(contents) == ["src/m0.py", "src/m1.py", "src/m2.py", "src/m3.py"]
    assert [s.path for s in skipped] == ["src/m4.py", "src/m5.py"]
    assert all("limit" in s.reason for s in skipped)
    assert fake.count("GET", r"/contents/") == 4
