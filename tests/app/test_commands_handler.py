"""Every slash command end to end: webhook payload → dispatch → router → handler → the fake GitHub."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.commands import REPLY_MARKER
from app.comments import TESTS_MARKER
from app.db import database_url, get_engine
from app.delivery import Delivery
from app.dispatch import Outcome, dispatch
from app.errors import RetryLater
from app.github import GitHubApp
from app.handlers.commands import FindingRef, Services, discover_services, make_router, suggest_tests
from app.pr_state import is_paused, suppressions
from app.settings import Settings
from tests.fakes.anthropic import Fail, FakeAnthropic, Reply
from tests.fakes.github import FakeGitHub, FakePull, FakeRepo, shared_app_keys

BASE = "def add(a: int, b: int) -> int:\n    return a + b\n"
HEAD = (
    "def add(a: int, b: int) -> int:\n    return b + a\n\n\ndef scale(x: float, k: float) -> float:\n    return x * k\n"
)
FID = "0123456789abcdef"
FINDING_BODY = (
    "**High** · `security/eval`\n\nUsing eval on request data runs arbitrary code.\n\n"
    f"<sub>confidence: high · id `{FID}`</sub>\n<!-- diffwise:finding:{FID} -->"
)


@dataclass
class Calls:
    rereview: list[int] = field(default_factory=list)
    ask: list[str] = field(default_factory=list)
    explain: list[FindingRef] = field(default_factory=list)


@dataclass
class World:
    fake: FakeGitHub
    repo: FakeRepo
    pull: FakePull
    settings: Settings
    app: GitHubApp
    calls: Calls
    services: Services
    deliveries: int = 0
    last_comment_id: int = 0
    last_payload: dict[str, Any] = field(default_factory=dict)

    def replies(self) -> list[str]:
        bodies = [c["body"] for c in self.repo.issue_comments + self.repo.review_comments]
        return [b for b in bodies if b.startswith(REPLY_MARKER) or b.startswith(TESTS_MARKER)]

    def reactions(self, comment_id: int) -> list[str]:
        return [r["content"] for r in self.repo.reactions if r["subject_id"] == comment_id]

    def send(self, event: str, payload: dict[str, Any], services: Services | None = None) -> Outcome:
        self.deliveries += 1
        delivery = Delivery(f"d-{self.deliveries}", event, json.dumps(payload).encode(), "", 0.0)
        router = make_router(services or self.services)
        return asyncio.run(dispatch(self.settings, delivery, router=router, github_app=self.app))

    def _envelope(self, user: str, action: str) -> dict[str, Any]:
        return {
            "action": action,
            "repository": {
                "id": self.repo.id,
                "name": "shop",
                "full_name": "octo/shop",
                "owner": {"login": "octo", "type": "Organization"},
                "default_branch": "main",
            },
            "installation": {"id": 7},
            "sender": self.fake._user(user),
        }

    def comment(self, body: str, user: str = "maint", action: str = "created", seed: bool = True) -> Outcome:
        """A PR conversation comment (issue_comment)."""
        stored = self.fake.add_issue_comment(self.repo, 5, body, user=user) if seed else {"id": 99, "body": body}
        payload = self._envelope(user, action) | {
            "issue": {"number": 5, "pull_request": {"url": "https://api.github.test/repos/octo/shop/pulls/5"}},
            "comment": {"id": stored["id"], "body": body, "user": self.fake._user(user)},
        }
        self.last_comment_id = stored["id"]
        self.last_payload = payload
        return self.send("issue_comment", payload)

    def thread_reply(self, body: str, root_id: int, user: str = "maint") -> Outcome:
        """A reply in a review thread (pull_request_review_comment)."""
        stored = self.fake._store_review_comment(
            self.repo,
            self.pull,
            {"body": body, "in_reply_to": root_id, "_user": user, "path": "app.py", "line": 2},
            None,
            self.pull.head_sha,
        )
        payload = self._envelope(user, "created") | {
            "pull_request": {"number": 5, "state": "open", "head": {"sha": self.pull.head_sha}},
            "comment": {"id": stored["id"], "body": body, "user": self.fake._user(user), "in_reply_to_id": root_id},
        }
        self.last_comment_id = stored["id"]
        return self.send("pull_request_review_comment", payload)

    def bot_finding(self) -> int:
        stored = self.fake._store_review_comment(
            self.repo, self.pull, {"body": FINDING_BODY, "path": "app.py", "line": 2}, 1, self.pull.head_sha
        )
        return int(stored["id"])


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "DIFFWISE_MODEL"):
        monkeypatch.delenv(name, raising=False)  # offline: a key in the environment must not reach out
    keys = shared_app_keys()
    fake = FakeGitHub(42, keys.public_pem)
    repo = fake.add_repo("octo", "shop", installation_id=7)
    pull = fake.add_pull(repo, 5, base={"app.py": BASE}, head={"app.py": HEAD}, author="dev")
    repo.collaborators.update({"maint": "write", "admin": "admin", "reader": "read", "tri": "triage"})
    settings = Settings.for_tests(
        app_id=42, private_key=keys.private_pem, github_api_url="http://github.test", state_dir=tmp_path
    )
    app = GitHubApp(settings, transport=fake.transport())
    calls = Calls()

    async def rereview(ctx: Any, number: int) -> None:
        calls.rereview.append(number)

    async def ask(ctx: Any, number: int, question: str) -> str:
        calls.ask.append(question)
        return f"An answer about #{number}."

    async def explain(ctx: Any, finding: FindingRef) -> str:
        calls.explain.append(finding)
        return f"In depth: {finding.rule}."

    services = Services(rereview=rereview, ask=ask, explain=explain, tests=suggest_tests)
    return World(fake, repo, pull, settings, app, calls, services)


def engine(world: World) -> Any:
    return get_engine(database_url(world.settings.state_dir))


# -- acknowledgement, help, who may trigger ---------------------------------------------------------------


def test_help_acknowledges_and_replies(world: World) -> None:
    outcome = world.comment("/diffwise help")
    assert outcome.status == "handled", outcome
    [reply] = world.replies()
    assert "**diffwise commands**" in reply
    assert world.reactions(world.last_comment_id) == ["eyes", "rocket"]


def test_unknown_command_gets_help_not_silence(world: World) -> None:
    world.comment("@diffwise frobnicate")
    [reply] = world.replies()
    assert "I don't know the command `frobnicate`" in reply
    assert world.reactions(world.last_comment_id) == ["eyes", "confused"]


@pytest.mark.parametrize("user", ["diffwise[bot]", "dependabot[bot]"])
def test_bots_never_trigger(world: World, user: str) -> None:
    before = len(world.fake.requests)
    world.comment("/diffwise review", user=user)
    assert world.replies() == []
    assert world.calls.rereview == []
    assert len(world.fake.requests) == before  # not even a reaction


def test_our_own_reply_text_never_triggers(world: World) -> None:
    world.comment(f"{REPLY_MARKER}\n/diffwise pause", user="maint")
    assert world.replies() == [f"{REPLY_MARKER}\n/diffwise pause"]  # only the seeded comment itself
    assert not is_paused(engine(world), "octo/shop", 5)


def test_edited_comments_do_not_trigger(world: World) -> None:
    outcome = world.comment("/diffwise pause", action="edited")
    assert outcome.status == "dropped"
    assert not is_paused(engine(world), "octo/shop", 5)


def test_plain_comments_are_ignored(world: World) -> None:
    before = len(world.fake.requests)
    world.comment("LGTM, thanks!")
    assert len(world.fake.requests) == before


@pytest.mark.parametrize("user", ["reader", "tri", "stranger"])
def test_write_commands_are_politely_denied(world: World, user: str) -> None:
    world.comment("/diffwise review", user=user)
    [reply] = world.replies()
    permission = {"reader": "read", "tri": "triage", "stranger": "none"}[user]
    assert f"Sorry @{user}, `/diffwise review` needs write access to this repository (yours is `{permission}`)" in reply
    assert world.calls.rereview == []
    assert world.reactions(world.last_comment_id) == ["eyes", "confused"]
    assert world.fake.count("GET", r"/collaborators/.+/permission") == 1


def test_open_commands_need_no_permission(world: World) -> None:
    world.comment("/diffwise config", user="reader")
    [reply] = world.replies()
    assert "Effective diffwise policy" in reply
    assert world.fake.count("GET", r"/collaborators/") == 0


def test_policy_can_open_a_command_to_everyone(world: World) -> None:
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "commands:\n  write_required: [review]\n")
    world.comment("/diffwise pause", user="reader")
    assert is_paused(engine(world), "octo/shop", 5)


def test_commands_disabled_by_policy(world: World) -> None:
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "commands:\n  enabled: false\n")
    world.comment("/diffwise pause")
    assert "Commands are turned off" in world.replies()[0]
    assert not is_paused(engine(world), "octo/shop", 5)


def test_strict_arguments_reply_with_usage(world: World) -> None:
    world.comment("/diffwise review --base-url http://evil.example")
    [reply] = world.replies()
    assert "unknown option `--base-url`" in reply
    assert world.calls.rereview == []


def test_permission_is_checked_before_arguments(world: World) -> None:
    world.comment("/diffwise review --base-url http://evil.example", user="reader")
    [reply] = world.replies()
    assert "needs write access" in reply
    assert "--base-url" not in reply
    assert world.calls.rereview == []


# -- each command -----------------------------------------------------------------------------------------


def test_pause_and_resume(world: World) -> None:
    world.comment("/diffwise pause")
    assert is_paused(engine(world), "octo/shop", 5)
    world.comment("/diffwise pause")
    world.comment("/diffwise resume")
    assert not is_paused(engine(world), "octo/shop", 5)
    replies = world.replies()
    assert "Automatic reviews are paused" in replies[0]
    assert "already paused" in replies[1]
    assert "back on" in replies[2]


def test_ignore_finding_rule_and_repo_suggestion(world: World) -> None:
    world.comment(f"/diffwise ignore {FID}")
    world.comment("/diffwise ignore security/eval --repo")
    got = suppressions(engine(world), "octo/shop", 5)
    assert got.finding_ids == frozenset({FID})
    assert got.rules == frozenset({"security/eval"})
    first, second = world.replies()
    assert f"finding `{FID}` is ignored on this pull request" in first
    assert "```yaml\nanalyzers:\n  rules:\n    security/eval:\n      enabled: false\n```" in second
    # The policy file is never written by the bot.
    assert world.fake.count("PUT") == 0


def test_ignore_in_a_finding_thread_and_repo_wide_by_finding(world: World) -> None:
    root = world.bot_finding()
    world.thread_reply("/diffwise ignore --repo", root)
    assert suppressions(engine(world), "octo/shop", 5).finding_ids == frozenset({FID})
    reply = world.repo.review_comments[-1]
    assert reply["in_reply_to_id"] == root
    assert f"Finding `{FID}` is ignored on this pull request. To turn rule `security/eval` off" in reply["body"]
    world.comment("/diffwise ignore")
    assert "What should I ignore?" in world.repo.issue_comments[-1]["body"]


def test_review_runs_the_rereview_entry_point(world: World) -> None:
    world.comment("/diffwise review", user="admin")
    assert world.calls.rereview == [5]
    assert "A full review of this pull request is on its way." in world.replies()[0]


def test_review_unavailable_without_an_entry_point(world: World) -> None:
    world.services = Services()  # nothing injected
    world.comment("/diffwise review")
    assert "Sorry, an on-demand re-review is not available" in world.replies()[-1]


def test_a_redelivered_comment_runs_once(world: World) -> None:
    world.comment("/diffwise ignore security/eval")
    payload = world.last_payload
    outcome = world.send("issue_comment", payload)
    assert outcome.status == "handled"
    assert len(world.replies()) == 1


def test_retry_later_releases_the_claim(world: World) -> None:
    attempts: list[int] = []

    async def flaky(ctx: Any, number: int) -> None:
        attempts.append(number)
        if len(attempts) == 1:
            raise RetryLater("GitHub rate limit", delay=1)

    world.services = Services(rereview=flaky)
    with pytest.raises(RetryLater):
        world.comment("/diffwise review")
    world.send("issue_comment", world.last_payload)
    assert attempts == [5, 5]
    assert "on its way" in world.replies()[-1]


def test_ask_with_and_without_an_llm(world: World) -> None:
    world.comment("/diffwise ask Why swap the operands?\nIs it on purpose?")
    assert world.calls.ask == ["Why swap the operands?\nIs it on purpose?"]
    assert world.replies()[0] == f"{REPLY_MARKER}\nAn answer about #5."
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "llm:\n  enabled: false\n")
    world.comment("/diffwise ask again?")
    assert "answering questions (no LLM is configured) is not available" in world.replies()[1]
    assert len(world.calls.ask) == 1


def test_llm_commands_are_rate_limited_per_user(world: World) -> None:
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "commands:\n  llm_rate_limit_per_hour: 2\n")
    for i in range(3):
        world.comment(f"/diffwise ask question {i}?")
    assert len(world.calls.ask) == 2
    assert "more AI requests than one person may make per hour" in world.replies()[2]
    assert world.reactions(world.last_comment_id) == ["eyes", "confused"]
    world.comment("/diffwise ask from someone else?", user="admin")
    assert len(world.calls.ask) == 3  # another user still has room (per-PR limit is 4)
    world.comment("/diffwise ask one more?", user="admin")
    assert len(world.calls.ask) == 4
    world.repo.collaborators["other"] = "maintain"
    world.comment("/diffwise ask and more?", user="other")
    assert len(world.calls.ask) == 4  # a fresh user, but the PR's shared limit is reached
    assert "more AI requests than this pull request allows per hour" in world.replies()[-1]


def test_explain_by_id_with_llm_and_offline(world: World) -> None:
    world.bot_finding()
    world.comment(f"/diffwise explain {FID[:10]}")
    [ref] = world.calls.explain
    assert (ref.finding_id, ref.rule, ref.path, ref.line) == (FID, "security/eval", "app.py", 2)
    assert world.replies()[-1] == f"{REPLY_MARKER}\nIn depth: security/eval."
    world.comment(f"/diffwise explain {FID}")
    assert len(world.calls.explain) == 2


def test_explain_offline_quotes_the_rule_text(world: World) -> None:
    world.bot_finding()
    world.services = Services(tests=suggest_tests)
    world.comment(f"/diffwise explain {FID}")
    reply = world.replies()[-1]
    assert f"Finding `{FID}` (rule `security/eval`) at `app.py:2`" in reply
    assert "> Using eval on request data runs arbitrary code." in reply
    assert "<!-- diffwise:finding:" not in reply  # the marker is not copied (it would confuse dedupe)


def test_explain_in_a_finding_thread_replies_in_the_thread(world: World) -> None:
    root = world.bot_finding()
    world.thread_reply("explain", root)
    [ref] = world.calls.explain
    assert ref.finding_id == FID
    reply = world.repo.review_comments[-1]
    assert reply["body"] == f"{REPLY_MARKER}\nIn depth: security/eval."
    assert reply["in_reply_to_id"] == root
    assert world.reactions(world.last_comment_id) == ["eyes", "rocket"]


def test_explain_unknown_and_missing_ids(world: World) -> None:
    world.comment("/diffwise explain ffffffffffffffff")
    world.comment("/diffwise explain")
    first, second = world.replies()
    assert "I can't find finding `ffffffffffffffff`" in first
    assert "Which finding?" in second


def test_plain_thread_replies_are_left_to_people(world: World) -> None:
    root = world.bot_finding()
    before = len(world.fake.requests)
    world.thread_reply("I think this is fine because the input is constant.", root)
    assert len(world.fake.requests) == before


def test_tests_command_suggests_property_tests(world: World) -> None:
    world.comment("/diffwise tests app.py::scale")
    reply = world.replies()[-1]
    assert reply.startswith(TESTS_MARKER)
    assert "scale" in reply
    world.comment("/diffwise tests other.py")
    assert "`other.py` is not changed in this pull request." in world.replies()[-1]


def test_tests_unavailable_or_disabled(world: World) -> None:
    world.services = Services()
    world.comment("/diffwise tests")
    assert "test synthesis is not available" in world.replies()[-1]
    world.services = Services(tests=suggest_tests)
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "tests:\n  enabled: false\n")
    world.comment("/diffwise tests")
    assert "`tests.enabled: false`" in world.replies()[-1]


def test_config_shows_sources_and_a_pending_policy_change(world: World) -> None:
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "comments:\n  max_comments: 4\n")
    # The PR switches everything off in its own copy of the policy; the default branch's copy still rules.
    world.fake.push(world.repo, 5, {".github/diffwise.yml": "review:\n  auto: false\nllm:\n  enabled: false\n"})
    world.comment("/diffwise config")
    reply = world.replies()[-1]
    assert "| `comments.max_comments` | `4` | octo/shop:.github/diffwise.yml |" in reply
    assert "| `review.auto` | `true` |" in reply
    assert "| `llm.enabled` | `true` |" in reply
    assert "This pull request changes the policy file" in reply


def test_config_reports_policy_errors_with_lines(world: World) -> None:
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "comments:\n  max_coments: 4\n")
    world.comment("/diffwise config")
    reply = world.replies()[-1]
    assert "octo/shop:.github/diffwise.yml:2: comments.max_coments: unknown key; did you mean `max_comments`?" in reply


def test_a_failing_service_gets_an_apology_not_silence(world: World) -> None:
    async def broken(ctx: Any, number: int) -> None:
        raise RuntimeError("boom")

    world.services = Services(rereview=broken)
    world.comment("/diffwise review")
    assert "Something went wrong" in world.replies()[-1]
    assert world.reactions(world.last_comment_id) == ["eyes", "confused"]


def test_review_command_runs_the_real_review_handler(world: World) -> None:
    world.services = discover_services()
    assert world.services.rereview is not None
    world.comment("/diffwise review")
    world.comment("/diffwise review")  # on request, even the same head is reviewed again
    runs = [r for r in world.repo.check_runs if r["head_sha"] == world.pull.head_sha]
    assert [r["status"] for r in runs] == ["completed", "completed"]
    summaries = [c for c in world.repo.issue_comments if "<!-- diffwise:summary -->" in c["body"]]
    assert len(summaries) == 1  # edited in place, never duplicated
    assert world.pull.head_sha[:7] in summaries[0]["body"]


# -- the real LLM adapters (app.llm_review) against the fake Anthropic ---------------------------------------


@pytest.fixture(scope="module")
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def with_llm(world: World, anthropic: FakeAnthropic) -> None:
    anthropic.reset()
    world.settings = world.settings.replace(
        anthropic_api_key="sk-ant-api03-TESTKEY-0123456789", anthropic_base_url=anthropic.base_url
    )
    world.services = discover_services()


def test_ask_through_the_llm(world: World, anthropic: FakeAnthropic) -> None:
    with_llm(world, anthropic)
    anthropic.push(Reply(text="Because `b + a` reads better here."))
    world.comment("/diffwise ask Why swap the operands?")
    assert world.replies()[-1] == f"{REPLY_MARKER}\nBecause `b + a` reads better here."
    [request] = anthropic.messages_requests()
    assert "Why swap the operands?" in request.text
    assert "return b + a" in request.text  # the change was sent (fenced, per the prompt)


def test_explain_in_a_thread_through_the_llm(world: World, anthropic: FakeAnthropic) -> None:
    with_llm(world, anthropic)
    anthropic.push(Reply(text="eval runs whatever string it is given."))
    root = world.bot_finding()
    world.thread_reply("/diffwise explain", root)
    reply = world.repo.review_comments[-1]
    assert reply["body"] == f"{REPLY_MARKER}\neval runs whatever string it is given."
    assert reply["in_reply_to_id"] == root
    assert "security/eval" in anthropic.messages_requests()[0].text


def test_llm_failure_falls_back_to_the_rule_text(world: World, anthropic: FakeAnthropic) -> None:
    with_llm(world, anthropic)
    anthropic.push(Fail(400, "invalid_request_error"))  # not retried: the fallback is immediate
    world.bot_finding()
    world.comment(f"/diffwise explain {FID}")
    assert "> Using eval on request data runs arbitrary code." in world.replies()[-1]


def test_without_a_key_ask_says_unavailable(world: World) -> None:
    world.services = discover_services()
    world.settings = world.settings.replace(anthropic_api_key=None)
    world.comment("/diffwise ask anything?")
    assert "answering questions (no LLM is configured) is not available" in world.replies()[-1]
