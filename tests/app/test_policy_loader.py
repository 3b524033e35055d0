"""Loading the policy: default branch only, _extends chains and cycles, org fallback, cache, bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.errors import RetryLater
from app.policy import Policy
from app.policy_loader import (
    MAX_BYTES,
    PolicyCache,
    format_issue,
    load_policy,
    load_policy_bytes,
    load_policy_file,
    pending_policy_change,
    render_policy_comment,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policy"
PATH = ".github/diffwise.yml"


class MemoryReader:
    """Files by (owner, repo, path, ref); ref None reads the repository's default branch ("main")."""

    def __init__(self, files: dict[tuple[str, str, str, str], str]) -> None:
        self.files = files
        self.calls: list[tuple[str, str, str, str | None]] = []

    async def read_file(self, owner: str, repo: str, path: str, ref: str | None) -> bytes | None:
        self.calls.append((owner, repo, path, ref))
        text = self.files.get((owner, repo, path, ref or "main"))
        return text.encode() if text is not None else None


def load(reader: MemoryReader, repo: str = "api", ref: str = "main", **kw: object):  # type: ignore[no-untyped-def]
    return asyncio.run(load_policy(reader, "acme", repo, ref, **kw))  # type: ignore[arg-type]


def test_no_file_anywhere_gives_defaults() -> None:
    result = load(MemoryReader({}))
    assert result.policy == Policy.default()
    assert result.ok
    assert set(result.sources.values()) == {"default"}
    assert "review.auto" in result.sources


def test_default_branch_wins_over_the_pull_request_head() -> None:
    files = {
        ("acme", "api", PATH, "main"): "comments:\n  max_comments: 3\n",
        # The PR's branch tries to switch everything off; it must not be read.
        ("acme", "api", PATH, "evil-branch"): "review:\n  auto: false\nanalyzers:\n  security:\n    enabled: false\n",
    }
    reader = MemoryReader(files)
    result = load(reader, ref="main")
    assert result.policy.comments.max_comments == 3
    assert result.policy.review.auto is True
    assert result.policy.analyzers.security.enabled is True
    assert all(ref != "evil-branch" for *_, ref in reader.calls)
    assert pending_policy_change(["src/a.py", ".github/diffwise.yml"])
    assert pending_policy_change(["/.github/diffwise.yaml"])
    assert not pending_policy_change(["src/a.py", "docs/.github/diffwise.yml"])


def test_sources_name_the_file_for_set_keys_and_default_otherwise() -> None:
    files = {
        ("acme", "api", PATH, "main"): "review:\n  drafts: true\nanalyzers:\n  rules:\n    a/b: {enabled: false}\n"
    }
    result = load(MemoryReader(files))
    assert result.sources["review.drafts"] == "acme/api:.github/diffwise.yml"
    assert result.sources["review.auto"] == "default"
    assert result.sources["analyzers.rules.a/b.enabled"] == "acme/api:.github/diffwise.yml"


def test_org_fallback_when_the_repository_has_no_file() -> None:
    files = {("acme", ".github", PATH, "main"): "checks:\n  fail_on: critical\n"}
    result = load(MemoryReader(files))
    assert result.policy.checks.fail_on == "critical"
    assert result.sources["checks.fail_on"] == "acme/.github:.github/diffwise.yml"
    # A repo file replaces the org file entirely (no implicit merge), as in Probot.
    files[("acme", "api", PATH, "main")] = "comments:\n  max_comments: 1\n"
    result = load(MemoryReader(files))
    assert result.policy.checks.fail_on == "high"


def test_extends_forms_and_merge_order() -> None:
    files = {
        ("acme", "api", PATH, "main"): "_extends: base\ncomments:\n  max_comments: 2\n",
        ("acme", "base", PATH, "main"): "_extends: other-org/shared:policies/strict.yml\ncomments:\n  max_comments: 5\n"
        "llm:\n  enabled: false\n",
        ("other-org", "shared", "policies/strict.yml", "main"): "checks:\n  fail_on: low\nllm:\n  enabled: true\n"
        "  max_cost_usd: 0.1\n",
    }
    result = load(MemoryReader(files))
    assert result.ok, result.errors
    p = result.policy
    assert p.comments.max_comments == 2
    assert p.llm.enabled is False
    assert p.llm.max_cost_usd == 0.1
    assert p.checks.fail_on == "low"
    assert p.extends is None
    assert result.sources["comments.max_comments"] == "acme/api:.github/diffwise.yml"
    assert result.sources["llm.enabled"] == "acme/base:.github/diffwise.yml"
    assert result.sources["checks.fail_on"] == "other-org/shared:policies/strict.yml"


def test_extends_org_slash_repo_reads_that_repos_default_branch() -> None:
    files = {
        ("acme", "api", PATH, "abc123"): "_extends: acme/.github\n",
        ("acme", ".github", PATH, "main"): "tests:\n  enabled: false\n",
    }
    reader = MemoryReader(files)
    result = load(reader, ref="abc123")
    assert result.policy.tests.enabled is False
    assert ("acme", ".github", PATH, None) in reader.calls


def test_extends_cycle_is_reported_with_its_line() -> None:
    files = {
        ("acme", "api", PATH, "main"): "comments:\n  max_comments: 2\n_extends: a\n",
        ("acme", "a", PATH, "main"): "_extends: b\n",
        ("acme", "b", PATH, "main"): "_extends: acme/api\n",
    }
    result = load(MemoryReader(files))
    assert result.policy.comments.max_comments == 2
    [issue] = result.errors
    assert issue.key_path == "_extends"
    assert issue.line == 1
    assert "cycle" in issue.message
    assert issue.source == "acme/b:.github/diffwise.yml"


def test_extends_depth_limit() -> None:
    files = {("acme", "api", PATH, "main"): "_extends: r0\n"}
    for i in range(10):
        files[("acme", f"r{i}", PATH, "main")] = f"_extends: r{i + 1}\n"
    result = load(MemoryReader(files))
    assert any("levels of _extends" in e.message for e in result.errors)
    assert result.policy == Policy.default()


@pytest.mark.parametrize(
    ("value", "message"),
    [("missing", "was not found"), ("../x", "cannot read"), ("a:b.txt", "cannot read"), ("[1]", "cannot read")],
)
def test_extends_bad_targets(value: str, message: str) -> None:
    files = {("acme", "api", PATH, "main"): f"review:\n  drafts: true\n_extends: {value}\n"}
    result = load(MemoryReader(files))
    assert result.policy.review.drafts is True
    [issue] = result.errors
    assert (issue.key_path, issue.line) == ("_extends", 3)
    assert message in issue.message


def test_errors_in_an_extended_file_name_that_file() -> None:
    files = {
        ("acme", "api", PATH, "main"): "_extends: base\n",
        ("acme", "base", PATH, "main"): "review:\n  drafs: true\n",
    }
    [issue] = load(MemoryReader(files)).errors
    assert format_issue(issue).startswith("acme/base:.github/diffwise.yml:2: review.drafs: unknown key")


def test_cache_per_installation_repo_and_sha() -> None:
    files = {("acme", "api", PATH, "sha1"): "review:\n  drafts: true\n"}
    reader = MemoryReader(files)
    cache = PolicyCache(maxsize=2)
    first = load(reader, ref="sha1", cache=cache, installation_id=1)
    calls = len(reader.calls)
    assert load(reader, ref="sha1", cache=cache, installation_id=1) is first
    assert len(reader.calls) == calls
    load(reader, ref="sha2", cache=cache, installation_id=1)
    load(reader, ref="sha1", cache=cache, installation_id=2)
    assert len(cache) == 2  # bounded LRU
    assert load(reader, ref="sha1", cache=cache, installation_id=1) is not first


def test_cache_entries_expire() -> None:
    cache = PolicyCache(ttl_seconds=0.0)
    reader = MemoryReader({})
    load(reader, cache=cache)
    load(reader, cache=cache)
    assert len(reader.calls) == 4  # repo + org, twice


# -- bad input -------------------------------------------------------------------------------------------


def test_invalid_fixture_reports_every_key_with_its_line_and_keeps_the_rest() -> None:
    result = load_policy_file(FIXTURES / "invalid.yml")
    lines = [format_issue(e, "tests/fixtures/policy/invalid.yml") for e in result.errors]
    assert lines == (FIXTURES / "invalid.expected.txt").read_text(encoding="utf-8").splitlines()
    p = result.policy
    assert p.comments.max_comments == 12
    assert (p.review.auto, p.checks.fail_on, p.llm.max_cost_usd) == (True, "high", 0.5)
    assert result.sources["review.auto"] == "default"
    assert result.sources["comments.max_comments"].endswith("invalid.yml")


def test_invalid_yaml_points_at_the_line() -> None:
    result = load_policy_bytes(b"review:\n  auto: true\n  on: [opened\ncomments: {}\n")
    [issue] = result.errors
    assert issue.message.startswith("invalid YAML")
    assert issue.line == 4
    assert result.policy == Policy.default()


def test_wrong_types_are_reported_not_coerced() -> None:
    result = load_policy_bytes(b"comments:\n  max_comments: '12'\nreview: [1, 2]\n")
    assert [(e.key_path, e.line) for e in result.errors] == [("comments.max_comments", 2), ("review", 3)]
    assert "got '12'" in result.errors[0].message


def test_on_is_a_key_not_a_boolean() -> None:
    result = load_policy_bytes(b"review:\n  on: [opened]\n  auto: off\n")
    assert result.ok
    assert result.policy.review.on == ["opened"]
    assert result.policy.review.auto is False


def test_yaml_bomb_is_refused_quickly() -> None:
    result = load_policy_file(FIXTURES / "bomb.yml")
    [issue] = result.errors
    assert "alias bomb" in issue.message
    assert result.policy == Policy.default()


def test_recursive_alias_is_refused() -> None:
    [issue] = load_policy_bytes(b"a: &x [*x]\n").errors
    assert "nesting" in issue.message


def test_ten_megabyte_file_is_refused_without_parsing(tmp_path: Path) -> None:
    big = tmp_path / "diffwise.yml"
    big.write_bytes(b"# padding\n" * (1024 * 1024))
    [issue] = load_policy_file(big).errors
    assert f"limit is {MAX_BYTES} bytes" in issue.message
    [issue] = load_policy_bytes(b"a" * (MAX_BYTES + 1)).errors
    assert "limit" in issue.message


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object/apply:os.system ['echo hi']\n",
        "a: !!python/name:os.system\n",
        "review: !!python/object:builtins.dict {}\n",
    ],
)
def test_python_tags_are_never_constructed(text: str) -> None:
    result = load_policy_bytes(text)
    assert result.errors
    assert result.policy == Policy.default()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- a\n- b\n", "must be a mapping"),
        ("review:\n  auto: true\n  auto: false\n", "duplicate key"),
        ("<<: {review: {}}\n", "merge keys"),
        ("? [a]\n: 1\n", "plain strings"),
        ("a: 1\n---\nb: 2\n", "invalid YAML"),
    ],
)
def test_other_malformed_documents(text: str, fragment: str) -> None:
    assert any(fragment in e.message for e in load_policy_bytes(text).errors)


def test_empty_and_comment_only_files_are_defaults() -> None:
    for text in ("", "# nothing\n", "---\n"):
        result = load_policy_bytes(text)
        assert result.ok
        assert result.policy == Policy.default()


def test_not_utf8() -> None:
    [issue] = load_policy_bytes(b"\xff\xfe\x00bad").errors
    assert "UTF-8" in issue.message


def test_policy_comment_golden() -> None:
    result = load_policy_bytes(b"review:\n  drafs: true\n", "acme/api:.github/diffwise.yml")
    assert render_policy_comment(result.errors) == (
        "<!-- diffwise:policy -->\n"
        "**diffwise: the policy file has errors.** The keys below were ignored and their built-in defaults used; "
        "the rest of the policy applies.\n"
        "\n"
        "```text\n"
        "acme/api:.github/diffwise.yml:2: review.drafs: unknown key; did you mean `drafts`? (allowed: auto, "
        "debounce_seconds, drafts, ignore_authors, ignore_bots, incremental, on, skip_labels)\n"
        "```\n"
        "\n"
        "Check the file locally with `diffwise config validate .github/diffwise.yml`."
    )


class FailingReader(MemoryReader):
    def __init__(self, files: dict[tuple[str, str, str, str], str], error: Exception) -> None:
        super().__init__(files)
        self.error = error

    async def read_file(self, owner: str, repo: str, path: str, ref: str | None) -> bytes | None:
        if repo == "locked":
            raise self.error
        return await super().read_file(owner, repo, path, ref)


def test_an_unreadable_extends_target_is_an_issue_but_retry_later_propagates() -> None:
    files = {("acme", "api", PATH, "main"): "_extends: locked\nreview:\n  drafts: true\n"}
    result = load(FailingReader(files, PermissionError("403")))
    assert result.policy.review.drafts is True
    [issue] = result.errors
    assert issue.message == "acme/locked:.github/diffwise.yml could not be read (PermissionError)"
    with pytest.raises(RetryLater):
        load(FailingReader(files, RetryLater("rate limited")))


def test_a_deeply_nested_file_is_an_issue_not_a_crash() -> None:
    from app.policy_loader import parse_policy_text

    deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    parsed = parse_policy_text(deep)
    assert parsed.data == {}
    assert [i.message for i in parsed.issues] == ["invalid YAML: nested too deeply to read safely"]
    shallow = parse_policy_text("a: " + "[" * 50 + "]" * 50 + "\n")  # our own limit, with the line
    assert [(i.line, i.message) for i in shallow.issues] == [(1, "nesting deeper than 32 levels")]
