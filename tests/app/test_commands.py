"""Slash-command parsing (strict, pure) and the reply texts (golden)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.commands import (
    COMMANDS,
    REPLY_MARKER,
    Command,
    commit_closed_text,
    commit_done_text,
    commit_fork_text,
    commit_gone_text,
    commit_moved_text,
    commit_no_access_text,
    commit_nothing_text,
    commit_unchanged_text,
    config_text,
    denied_text,
    help_text,
    ignore_repo_text,
    ignored_text,
    parse_command,
    problem_text,
    rate_limited_text,
    unavailable_text,
)
from app.policy_loader import load_policy_bytes

FID = "0123456789abcdef"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/diffwise help", Command("help")),
        ("/diffwise", Command("help")),
        ("@diffwise", Command("help")),
        ("/DIFFWISE Review", Command("review")),
        ("@DiffWise review", Command("review")),
        ("Looks good.\n\n/diffwise pause\n", Command("pause")),
        ("/diffwise resume", Command("resume")),
        ("/diffwise config", Command("config")),
        ("/diffwise tests", Command("tests")),
        ("/diffwise tests src/app.py", Command("tests", path="src/app.py")),
        ("/diffwise tests src/app.py::Parser.parse", Command("tests", path="src/app.py", function="Parser.parse")),
        ("/diffwise tests commit", Command("tests", commit=True)),
        ("/diffwise tests COMMIT app.py::scale", Command("tests", path="app.py", function="scale", commit=True)),
        ("/diffwise explain", Command("explain")),
        (f"/diffwise explain {FID.upper()}", Command("explain", finding_id=FID)),
        ("/diffwise ask why is this safe?", Command("ask", question="why is this safe?")),
        ("/diffwise ask\nline one\nline two", Command("ask", question="line one\nline two")),
        (f"/diffwise ignore {FID}", Command("ignore", finding_id=FID)),
        ("/diffwise ignore security/sql-injection", Command("ignore", rule="security/sql-injection")),
        ("/diffwise ignore", Command("ignore")),
        (
            "/diffwise ignore --repo quality/long-function",
            Command("ignore", rule="quality/long-function", repo_wide=True),
        ),
        ("/diffwise frobnicate now", Command("help", unknown="frobnicate")),
        ("/diffwise @everyone", Command("help", unknown="@\u200beveryone")),
    ],
)
def test_parse(body: str, expected: Command) -> None:
    assert parse_command(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        None,
        "thanks /diffwise review",  # not at the start of a line
        "/diffwisereview",
        "@diffwise-bot review",
        "> /diffwise review\nquoted from above",
        "```\n/diffwise review\n```",
        "~~~sh\n@diffwise pause\n~~~",
        "just a comment",
    ],
)
def test_not_a_command(body: str | None) -> None:
    assert parse_command(body) is None


def test_custom_app_slug() -> None:
    assert parse_command("@my-reviewer review", "my-reviewer") == Command("review")
    assert parse_command("@diffwise review", "my-reviewer") is None
    assert parse_command("/diffwise review", "my-reviewer") == Command("review")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("/diffwise review now", "takes no arguments"),
        ("/diffwise review --base-url=http://evil", "unknown option `--base-url=http://evil`"),
        ("/diffwise tests --token abc", "unknown option `--token`"),
        ("/diffwise pause --force", "unknown option `--force`"),
        ("/diffwise ignore --repo --admin security/x", "unknown option `--admin`"),
        ("/diffwise tests ../../etc/passwd", "cannot read the target `../../etc/passwd`"),
        ("/diffwise tests /abs/path.py", "cannot read the target `/abs/path.py`"),
        ("/diffwise tests a.py::not-a-name", "cannot read the target `a.py::not-a-name`"),
        ("/diffwise tests a.py b.py", "takes at most one target"),
        ("/diffwise tests commit a.py b.py", "takes at most one target"),
        ("/diffwise tests commit ../x.py", "cannot read the target `../x.py`"),
        ("/diffwise explain not-an-id", "`not-an-id` is not a finding id"),
        ("/diffwise ignore a b", "needs exactly one finding id or rule id"),
        ("/diffwise ignore `rm -rf`", "unknown option `-rf'`"),
        ("/diffwise ignore NOPE", "`NOPE` is neither a finding id nor a rule id"),
        ("/diffwise ask", "needs a question"),
        ("/diffwise ask " + "x" * 2001, "the question is longer than 2000 characters"),
    ],
)
def test_strict_arguments(body: str, problem: str) -> None:
    command = parse_command(body)
    assert command is not None
    assert command.problem == problem
    assert not command.uses_llm


@given(st.text(max_size=200))
def test_parser_is_total_and_only_yields_known_commands(body: str) -> None:
    command = parse_command("/diffwise " + body)
    assert command is not None
    assert command.name in COMMANDS
    if command.path is not None:
        assert ".." not in command.path.split("/")
        assert not command.path.startswith("/")


@given(st.text(max_size=300))
def test_comments_without_the_prefix_at_line_start_never_trigger(body: str) -> None:
    if not any(line.strip().lower().startswith(("/diffwise", "@diffwise")) for line in body.splitlines()):
        assert parse_command(body) is None


# -- golden replies --------------------------------------------------------------------------------------


def test_help_golden() -> None:
    assert help_text("diffwise") == (
        f"{REPLY_MARKER}\n"
        "**diffwise commands**\n"
        "\n"
        "| command | what it does |\n"
        "|---|---|\n"
        "| `/diffwise help` | show this list |\n"
        "| `/diffwise config` | show the effective policy for this pull request and where each value came from |\n"
        "| `/diffwise review` | review the current head again, in full |\n"
        "| `/diffwise tests [commit] [path \\| path::function]` | suggest property-based tests now; `commit` adds "
        "them to this pull request's branch |\n"
        "| `/diffwise explain [finding-id]` | explain a finding in more depth (in a finding's thread the id is "
        "optional) |\n"
        "| `/diffwise ask <question>` | ask a question about this pull request's change |\n"
        "| `/diffwise ignore <finding-id \\| rule> [--repo]` | suppress a finding or a rule on this pull request |\n"
        "| `/diffwise pause` | stop automatic reviews on this pull request |\n"
        "| `/diffwise resume` | restart automatic reviews on this pull request |\n"
        "\n"
        "`@diffwise <command>` works too. Commands that cost money or change state need write access to the "
        "repository."
    )


def test_help_for_unknown_command_golden() -> None:
    text = help_text("diffwise", unknown="frobnicate")
    assert text.startswith(
        f"{REPLY_MARKER}\nI don't know the command `frobnicate`. These are the ones I understand:\n\n| command"
    )


def test_problem_denied_rate_limit_unavailable_golden() -> None:
    assert problem_text(Command("review", problem="takes no arguments")) == (
        f"{REPLY_MARKER}\n`/diffwise review` takes no arguments. Usage: `/diffwise review`"
    )
    assert denied_text("reader", "review", "read") == (
        f"{REPLY_MARKER}\nSorry @reader, `/diffwise review` needs write access to this repository "
        "(yours is `read`). A maintainer can run it for you."
    )
    assert rate_limited_text("dev", 1800) == (
        f"{REPLY_MARKER}\n@dev, that is more AI requests than one person may make per hour. "
        "Please try again in about 30 minutes."
    )
    assert "than this pull request allows per hour" in rate_limited_text("dev", 60, per_user=False)
    assert rate_limited_text("dev", 10).endswith("about 1 minute.")
    assert unavailable_text("test synthesis") == (
        f"{REPLY_MARKER}\nSorry, test synthesis is not available on this diffwise server right now."
    )


def test_ignore_texts_golden() -> None:
    assert ignored_text(Command("ignore", rule="security/eval")) == (
        f"{REPLY_MARKER}\nOK: rule `security/eval` is ignored on this pull request from now on."
    )
    assert ignore_repo_text(Command("ignore", rule="security/eval", repo_wide=True)) == (
        f"{REPLY_MARKER}\nOK: rule `security/eval` is ignored on this pull request. To turn rule `security/eval` "
        "off for the whole repository, add this to `.github/diffwise.yml` on the default branch:\n\n"
        "```yaml\nanalyzers:\n  rules:\n    security/eval:\n      enabled: false\n```"
    )
    by_finding = Command("ignore", finding_id=FID, repo_wide=True)
    assert ignore_repo_text(by_finding, rule="quality/x").startswith(
        f"{REPLY_MARKER}\nFinding `{FID}` is ignored on this pull request. To turn rule `quality/x` off"
    )
    assert ignore_repo_text(by_finding) == (
        f"{REPLY_MARKER}\nFinding `{FID}` is ignored on this pull request. Repository-wide ignores work per rule: "
        "use `/diffwise ignore <rule> --repo` with the finding's rule id."
    )


def test_config_text_golden() -> None:
    result = load_policy_bytes(
        b"comments:\n  max_comments: 3\nreview:\n  on: [opened]\n", "acme/api:.github/diffwise.yml"
    )
    text = config_text(result.policy.to_data(), result.sources, pending=True)
    head = (
        f"{REPLY_MARKER}\n"
        "**Effective diffwise policy** for this pull request (read from the default branch)\n"
        "\n"
        "| key | value | from |\n"
        "|---|---|---|\n"
        "| `comments.max_comments` | `3` | acme/api:.github/diffwise.yml |\n"
        "| `review.on` | `[opened]` | acme/api:.github/diffwise.yml |\n"
        "\n"
        "<details><summary>Built-in defaults for the other keys</summary>\n"
    )
    assert text.startswith(head)
    assert "| `checks.fail_on` | `high` |\n" in text
    assert "| `llm.model` | `null` |\n" in text
    assert text.endswith("\n\nThis pull request changes the policy file; the change applies once it is merged.")


def test_config_text_lists_problems_and_defaults_only() -> None:
    result = load_policy_bytes(b"")
    text = config_text(result.policy.to_data(), result.sources, errors=["x.yml:1: a: bad"])
    assert "No policy file applies" in text
    assert "```text\nx.yml:1: a: bad\n```" in text


def test_config_text_never_exceeds_githubs_limit() -> None:
    rules = "".join(f"    security/rule-{i:05d}-{'x' * 40}: {{enabled: false, severity: low}}\n" for i in range(1500))
    result = load_policy_bytes("analyzers:\n  rules:\n" + rules)
    assert result.ok
    text = config_text(result.policy.to_data(), result.sources)
    assert len(text) <= 65_536
    assert text.startswith(REPLY_MARKER)


def test_config_values_cannot_break_the_table() -> None:
    result = load_policy_bytes(b"instructions: 'use `a | b` here'\npaths:\n  exclude: ['a|b']\n")
    text = config_text(result.policy.to_data(), result.sources)
    assert "| `instructions` | `use 'a \\| b' here` |" in text
    assert "| `paths.exclude` | `[a\\|b]` |" in text


def test_tests_commit_texts_golden() -> None:
    assert commit_done_text(
        "feature-5", "0123456789abcdef", ["tests/test_diffwise_app_scale.py"], "python -m pytest x.py", ""
    ) == (
        f"{REPLY_MARKER}\n"
        "Added 1 test file to `feature-5` in commit `0123456`:\n\n"
        "- `tests/test_diffwise_app_scale.py`\n\n"
        "Run them with:\n\n```sh\npip install hypothesis pytest\npython -m pytest x.py\n```"
    )
    done = commit_done_text("b", "abcdef0", ["a.py", "b.py"], "cmd", "`x.py` exists")
    assert done.startswith(f"{REPLY_MARKER}\nAdded 2 test files to `b`")
    assert done.endswith("```\n\n_`x.py` exists_")
    assert commit_unchanged_text("b") == (
        f"{REPLY_MARKER}\nThe suggested tests are already on `b`; there is nothing new to commit."
    )
    assert commit_nothing_text("") == (
        f"{REPLY_MARKER}\nThere are no suggested tests to commit for this change. `/diffwise tests` shows the details."
    )
    assert commit_fork_text() == (
        f"{REPLY_MARKER}\nThis pull request comes from a fork that does not allow edits from maintainers, so I "
        "can't push to its branch. Its author can tick **Allow edits by maintainers**; or run `/diffwise tests` "
        "and copy each file into the branch at the path shown."
    )
    assert commit_no_access_text() == (
        f"{REPLY_MARKER}\nI can't write to this branch: diffwise is installed without the optional "
        "`contents: write` permission (see `app.yml`). An owner of the installation can grant it in the App's "
        "settings. Until then, run `/diffwise tests` and copy each file into the branch at the path shown."
    )
    assert commit_moved_text("b") == (
        f"{REPLY_MARKER}\n`b` changed while I was committing, so I left it alone. Run `/diffwise tests commit` "
        "again to add the tests on top of the new head."
    )
    assert "no longer exists" in commit_gone_text()
    assert commit_closed_text() == f"{REPLY_MARKER}\nThis pull request is closed, so I won't push to its branch."
