"""The policy and commands through the real app (receiver + worker) against the fake GitHub on loopback."""

from __future__ import annotations

from app.commands import REPLY_MARKER
from app.comments import SUMMARY_MARKER
from app.db import database_url, get_engine
from app.pr_state import is_paused
from tests.e2e.conftest import Harness, harness, webhook_payload  # noqa: F401  (the fixture)
from tests.fakes.github import FakePull, FakeRepo

VULNERABLE = "def calc(expression):\n    return eval(expression)\n"
DISABLE_EVERYTHING = (
    "review:\n  auto: false\n"
    "analyzers:\n  security: {enabled: false}\n  secrets: {enabled: false}\n  quality: {enabled: false}\n"
    "checks:\n  fail_on: never\n"
)


def seed(h: Harness) -> tuple[FakeRepo, FakePull]:
    repo = h.fake.add_repo("octo", "service", installation_id=77)
    h.fake.set_file(repo, "main", ".github/diffwise.yml", "comments:\n  min_severity: low\n")
    pull = h.fake.add_pull(
        repo,
        1,
        base={"README.md": "hello\n"},
        head={"app/calc.py": VULNERABLE, ".github/diffwise.yml": DISABLE_EVERYTHING},
        author="dev",
    )
    return repo, pull


def test_a_pr_cannot_switch_off_the_policy_it_is_judged_by(harness: Harness) -> None:  # noqa: F811
    repo, pull = seed(harness)
    delivery, status = harness.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
    assert status == 202
    assert harness.wait(delivery) == {delivery: "done"}
    [review] = repo.reviews  # reviewed although the PR's copy says `auto: false`
    [summary] = [c["body"] for c in repo.issue_comments if SUMMARY_MARKER in c["body"]]
    assert "reviewed under the default branch's policy" in summary  # the pending policy change is noted
    comments = [c for c in repo.review_comments if c["pull_request_review_id"] == review["id"]]
    assert any(c["path"] == "app/calc.py" for c in comments), review["body"]


def test_a_command_through_the_real_receiver(harness: Harness) -> None:  # noqa: F811
    repo, pull = seed(harness)
    repo.collaborators["maint"] = "write"
    comment = harness.fake.add_issue_comment(repo, 1, "/diffwise pause", user="maint")
    payload = webhook_payload("pull_request.opened.2", repo, pull)
    event = {
        "action": "created",
        "issue": {"number": 1, "pull_request": {"url": "https://api.github.test/repos/octo/service/pulls/1"}},
        "comment": {"id": comment["id"], "body": comment["body"], "user": comment["user"]},
        "repository": payload["repository"],
        "installation": payload["installation"],
        "sender": comment["user"],
    }
    delivery, status = harness.send("issue_comment", event)
    assert status == 202
    assert harness.wait(delivery) == {delivery: "done"}
    replies = [c["body"] for c in repo.issue_comments if c["body"].startswith(REPLY_MARKER)]
    assert replies == [
        f"{REPLY_MARKER}\nAutomatic reviews are paused on this pull request. `/diffwise resume` restarts them."
    ]
    assert [r["content"] for r in repo.reactions if r["subject_id"] == comment["id"]] == ["eyes", "rocket"]
    assert is_paused(get_engine(database_url(harness.settings.state_dir)), "octo/service", 1)
