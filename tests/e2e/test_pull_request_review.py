"""Signed webhooks into the real app on loopback; assertions on what the fake GitHub received."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers.base import Confidence, Finding, Severity
from analyzers.diff import ChangeSet
from app.comments import SUMMARY_MARKER, marker_ids
from app.events import PullRequest
from app.handlers.review import skip_reason
from app.publish import Publisher, PublishOptions, PublishTarget
from tests.e2e.conftest import Harness, comment_payload, running_harness, webhook_payload
from tests.fakes.github import FakePull, FakeRepo, Fault, commentable_lines, file_patch

VULNERABLE = (
    "import subprocess\n"
    "\n"
    "\n"
    "def run(cmd):\n"
    "    return subprocess.call(cmd, shell=True)\n"
    "\n"
    "\n"
    "def calc(expression):\n"
    "    return eval(expression)\n"
)
BASE_TEXT = "".join(f"def f{i}():\n    return {i}\n\n\n" for i in range(30))


def seed(h: Harness, number: int = 1, **pull_options: Any) -> tuple[FakeRepo, FakePull]:
    fake = h.fake
    repo = fake.repos.get("octo/service") or fake.add_repo("octo", "service", installation_id=77)
    head_text = BASE_TEXT.replace("return 15\n", "return eval(str(15))\n")
    pull = fake.add_pull(
        repo,
        number,
        base={"lib/util.py": BASE_TEXT, "README.md": "hello\n"},
        head={"app/run.py": VULNERABLE, "lib/util.py": head_text, "logo.png": b"\x89PNG\0\0"},
        author="dev",
        title="Add runner",
        **pull_options,
    )
    return repo, pull


def summary(repo: FakeRepo) -> str:
    """The one summary comment (edited in place, never duplicated)."""
    [body] = [c["body"] for c in repo.issue_comments if SUMMARY_MARKER in c["body"]]
    return str(body)


def assert_on_diff_lines(pull: FakePull, comments: list[dict[str, Any]]) -> None:
    patches = {f["filename"]: f.get("patch") for f in pull.files}
    for c in comments:
        assert patches.get(c["path"]), c
        hunks = commentable_lines(patches[c["path"]])
        side = 0 if c["side"] == "RIGHT" else 1
        hunk = next(h for h in hunks if c["line"] in h[side])
        if c.get("start_line") is not None:
            assert c["start_line"] in hunk[side]


def test_opened_pull_request_gets_one_comment_review(harness: Harness) -> None:
    repo, pull = seed(harness)
    delivery, status = harness.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
    assert status == 202
    assert harness.wait(delivery) == {delivery: "done"}

    [review] = repo.reviews
    assert review["event"] == "COMMENT"
    assert review["state"] == "COMMENTED"
    assert review["commit_id"] == pull.head_sha
    assert pull.head_sha[:7] in summary(repo)
    assert "logo.png" in summary(repo)  # skipped files are listed with their reason
    [check] = repo.check_runs
    assert check["status"] == "completed"
    assert check["conclusion"] == "failure"  # shell=True with a parameter is high; the default gate is high
    comments = [c for c in repo.review_comments if c["pull_request_review_id"] == review["id"]]
    assert comments, review["body"]
    assert_on_diff_lines(pull, comments)
    assert all("<!-- diffwise:finding:" in c["body"] for c in comments)
    assert {c["path"] for c in comments} <= {"app/run.py", "lib/util.py"}
    # all calls carried this delivery's id, and the installation token was minted once
    assert {r.headers.get("x-diffwise-delivery") for r in harness.fake.requests} == {delivery}
    assert harness.fake.count("POST", r"/access_tokens$") == 1
    assert harness.fake.count("POST", r"/reviews$") == 1


def test_redelivery_and_synchronize_review_once_per_head(harness: Harness) -> None:
    repo, pull = seed(harness)
    payload = webhook_payload("pull_request.opened.2", repo, pull)
    first, _ = harness.send("pull_request", payload)
    harness.wait(first)
    again, status = harness.send("pull_request", payload)  # GitHub "redeliver": a new delivery id
    assert status == 202
    harness.wait(again)
    assert len(repo.reviews) == 1

    harness.fake.push(repo, pull.number, {"app/more.py": "import os\nos.system(input())\n"})
    sync, _ = harness.send("pull_request", webhook_payload("pull_request.synchronize", repo, pull))
    harness.wait(sync)
    assert [r["commit_id"] for r in repo.reviews] == [payload["pull_request"]["head"]["sha"], pull.head_sha]
    assert all(r["event"] == "COMMENT" for r in repo.reviews)
    # the push's review comments only on what is new; earlier findings are not posted twice
    first_ids, second_ids = (
        [marker_ids(c["body"])[0] for c in repo.review_comments if c["pull_request_review_id"] == r["id"]]
        for r in repo.reviews
    )
    assert first_ids
    assert second_ids
    assert not set(first_ids) & set(second_ids)
    assert all(
        c["path"] == "app/more.py" for c in repo.review_comments if c["pull_request_review_id"] == repo.reviews[1]["id"]
    )
    assert "still open from earlier reviews" in summary(repo)


@pytest.mark.parametrize(
    ("fixture", "options", "overrides"),
    [
        ("pull_request.opened.2", {"draft": True}, {}),
        ("pull_request.ready_for_review.2", {"state": "closed"}, {}),
        ("pull_request.reopened", {}, {"state": "closed"}),
        ("pull_request.opened.2", {"labels": ["diffwise:skip"]}, {}),
    ],
    ids=["draft", "closed-now", "closed-in-payload", "skip-label"],
)
def test_drafts_closed_and_skipped_prs_get_no_review(
    harness: Harness, fixture: str, options: dict[str, Any], overrides: dict[str, Any]
) -> None:
    repo, pull = seed(harness, **options)
    delivery, status = harness.send("pull_request", webhook_payload(fixture, repo, pull, **overrides))
    assert status == 202
    assert harness.wait(delivery) == {delivery: "done"}
    assert repo.reviews == []
    assert repo.review_comments == []


def test_events_without_handlers_and_bad_signatures_change_nothing(harness: Harness) -> None:
    repo, pull = seed(harness)
    labeled, status = harness.send("pull_request", webhook_payload("pull_request.labeled", repo, pull))
    assert status == 202
    harness.wait(labeled)
    body = b'{"action": "opened"}'
    refused = httpx.post(
        harness.app_url + harness.settings.webhook_path,
        content=body,
        headers={"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "x", "X-Hub-Signature-256": "sha256=00"},
    )
    assert refused.status_code == 401
    assert repo.reviews == []
    assert harness.fake.count("POST") == 0


def test_rate_limited_review_is_rescheduled_not_lost(harness: Harness) -> None:
    repo, pull = seed(harness)
    harness.fake.fail_next(1, status=403, retry_after=60, secondary=True, path=r"/pulls/\d+$")
    delivery, _ = harness.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
    deadline_state = None
    end = time.monotonic() + 20
    while time.monotonic() < end:
        deadline_state = harness.queue.ledger.state(delivery)
        if deadline_state == "retrying":
            break
        time.sleep(0.05)
    assert deadline_state == "retrying"
    assert repo.reviews == []


def test_review_command_reviews_again_on_request(harness: Harness) -> None:
    pytest.importorskip("app.handlers.commands")
    repo, pull = seed(harness, draft=True)  # drafts are not reviewed automatically, but on request they are
    repo.collaborators["maintainer"] = "write"
    comment = harness.fake.add_issue_comment(repo, pull.number, "/diffwise review", user="maintainer")
    payload = comment_payload(repo, pull, "/diffwise review", "maintainer", comment["id"])
    delivery, status = harness.send("issue_comment", payload)
    assert status == 202
    harness.wait(delivery)
    [review] = repo.reviews
    assert review["event"] == "COMMENT"
    assert review["commit_id"] == pull.head_sha
    assert pull.head_sha[:7] in summary(repo)
    assert [r["subject_id"] for r in repo.reactions][:1] == [comment["id"]]  # acknowledged on the comment


# ---- the planned review is always one GitHub accepts (pure; no server) ----------------------------------

_lines = st.lists(st.sampled_from(["a", "b", "c", "def f():", "    pass", ""]), max_size=25)


@settings(max_examples=150, deadline=None)
@given(
    base=_lines,
    head=_lines,
    spots=st.lists(
        st.tuples(
            st.sampled_from(["m.py", "other.py"]),
            st.integers(1, 30),
            st.integers(0, 4),
            st.sampled_from(list(Severity)),
        ),
        max_size=20,
    ),
    cap=st.integers(0, 5),
)
def test_planned_inline_comments_are_always_on_diff_lines(
    base: list[str], head: list[str], spots: list[tuple[str, int, int, Severity]], cap: int
) -> None:
    old = "".join(line + "\n" for line in base).encode()
    new = "".join(line + "\n" for line in head).encode()
    patch = file_patch(old, new)
    item = {"filename": "m.py", "status": "modified", "patch": patch, "changes": 1}
    changeset = ChangeSet.from_github_files([item] if patch else [])
    findings = tuple(
        Finding(
            rule=f"test/r{i}",
            analyzer="test",
            severity=severity,
            confidence=Confidence.HIGH,
            message="m",
            path=path,
            start_line=start,
            end_line=start + length,
            code=str(i),
        )
        for i, (path, start, length, severity) in enumerate(spots)
    )
    options = PublishOptions(min_severity=Severity.LOW, max_comments=cap)
    publisher = Publisher(None, PublishTarget("o", "r", 1, "f" * 40), options)
    inline, in_summary, already, _over, below_count = publisher.plan(changeset, findings, set())
    comments = [c for _, c in inline]
    assert len(comments) <= cap
    hunks = commentable_lines(patch) if patch else []
    for comment in comments:
        assert comment["path"] == "m.py"
        side = 0 if comment["side"] == "RIGHT" else 1
        hunk = next(h for h in hunks if comment["line"] in h[side])
        if "start_line" in comment:
            assert comment["start_line"] < comment["line"]
            assert comment["start_line"] in hunk[side]
    below = [f for f in findings if f.severity < Severity.LOW]
    assert below_count == len(below)
    assert len(inline) + len(in_summary) + len(below) + len(already) == len(findings)  # nothing is lost


def test_an_invalid_policy_is_named_once_and_the_review_still_runs(harness: Harness) -> None:
    repo, pull = seed(harness)
    harness.fake.set_file(repo, "main", ".github/diffwise.yml", "comments:\n  max_coments: 3\n")
    payload = webhook_payload("pull_request.opened.2", repo, pull)
    first, _ = harness.send("pull_request", payload)
    harness.wait(first)
    harness.fake.push(repo, pull.number, {"app/extra.py": "x = 1\n"})
    second, _ = harness.send("pull_request", webhook_payload("pull_request.synchronize", repo, pull))
    harness.wait(second)
    assert len(repo.reviews) == 1  # the push added no finding: no second review, the summary is edited
    assert "max_coments" in summary(repo)
    assert [c["conclusion"] for c in repo.check_runs] == ["failure", "failure"]  # an invalid policy fails the gate
    [policy_comment] = [c for c in repo.issue_comments if "<!-- diffwise:policy -->" in c["body"]]
    assert ".github/diffwise.yml:2" in policy_comment["body"]


def test_github_enterprise_server_from_ghe_host(tmp_path: Any) -> None:
    with running_harness(tmp_path / "state", prefix="/api/v3") as ghes:
        repo, pull = seed(ghes)
        delivery, status = ghes.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
        assert status == 202
        assert ghes.wait(delivery) == {delivery: "done"}
        [review] = repo.reviews
        assert review["event"] == "COMMENT"
        assert ghes.settings.github_api_url.endswith("/api/v3")
        assert ghes.fake.count("GET", r"^/repos/octo/service/pulls/1$") == 1  # the fake answers only under /api/v3


def test_a_pull_request_over_300_files_is_reviewed_through_the_files_api(harness: Harness) -> None:
    repo = harness.fake.add_repo("octo", "mono", installation_id=77)
    head: dict[str, str | bytes | None] = {f"docs/page{i:03}.md": f"# Page {i}\n" for i in range(340)}
    head["app/run.py"] = VULNERABLE
    pull = harness.fake.add_pull(repo, 9, head=head, author="dev")
    delivery, _ = harness.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
    assert harness.wait(delivery, timeout=90) == {delivery: "done"}
    assert len(repo.reviews) == 1
    assert harness.fake.count("GET", r"/pulls/9/files$") == 4  # 341 files, 100 per page
    assert harness.fake.count("GET", r"/contents/(app|docs)/") == 300  # one read per file, capped
    assert "limit of one review" in summary(repo)


def test_a_policy_that_allows_drafts_gets_them_reviewed(harness: Harness) -> None:
    repo, pull = seed(harness, draft=True)
    harness.fake.set_file(repo, "main", ".github/diffwise.yml", "review:\n  drafts: true\n")
    delivery, _ = harness.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
    harness.wait(delivery)
    assert len(repo.reviews) == 1


def _pr(**fields: Any) -> PullRequest:
    base = {"number": 1, "state": "open", "draft": False, "user": {"login": "dev", "type": "User"}}
    return PullRequest.model_validate(base | fields)


def _policy(**review: Any) -> SimpleNamespace:
    defaults = {
        "auto": True,
        "on": ["opened", "synchronize"],
        "drafts": False,
        "ignore_authors": ["mallory"],
        "ignore_bots": True,
        "skip_labels": ["diffwise:skip"],
    }
    return SimpleNamespace(review=SimpleNamespace(**(defaults | review)))


@pytest.mark.parametrize(
    ("pr", "policy", "action", "expected"),
    [
        (_pr(), _policy(), "opened", None),
        (_pr(state="closed"), _policy(), "opened", "pull request is closed"),
        (_pr(draft=True), _policy(), "opened", "draft pull request"),
        (_pr(draft=True), _policy(drafts=True), "opened", None),
        (_pr(), _policy(auto=False), "opened", "automatic review is off in the policy"),
        (_pr(), _policy(), "reopened", "policy does not review on reopened"),
        (_pr(user={"login": "mallory"}), _policy(), "opened", "author mallory is ignored by the policy"),
        (_pr(user={"login": "dependabot[bot]", "type": "Bot"}), _policy(), "opened", "author dependabot[bot] is a bot"),
        (_pr(user={"login": "dependabot[bot]", "type": "Bot"}), _policy(ignore_bots=False), "opened", None),
        (_pr(labels=[{"name": "diffwise:skip"}]), _policy(), "opened", "labelled diffwise:skip"),
        (_pr(draft=True), None, None, "draft pull request"),
    ],
)
def test_skip_reason(pr: PullRequest, policy: Any, action: str | None, expected: str | None) -> None:
    assert skip_reason(pr, policy, action) == expected


def test_a_push_is_reviewed_incrementally_and_a_rewritten_history_in_full(harness: Harness) -> None:
    repo, pull = seed(harness)
    first_head = pull.head_sha
    first, _ = harness.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
    harness.wait(first)
    assert "changes since" not in summary(repo)

    harness.fake.push(repo, pull.number, {"app/more.py": "import os\nos.system(input())\n"})
    second_head = pull.head_sha
    sync, _ = harness.send("pull_request", webhook_payload("pull_request.synchronize", repo, pull))
    harness.wait(sync)
    assert harness.fake.count("GET", rf"/compare/{first_head}\.\.\.{second_head}$") == 1
    assert f"(changes since `{first_head[:7]}`)" in summary(repo)

    # A force push: the previously reviewed head is gone from the repository, so compare answers 404.
    repo.trees.pop(second_head)
    harness.fake.push(repo, pull.number, {"app/other.py": "x = 1\n"})
    forced, _ = harness.send("pull_request", webhook_payload("pull_request.synchronize", repo, pull))
    harness.wait(forced)
    assert pull.head_sha[:7] in summary(repo)
    assert "changes since" not in summary(repo)  # reviewed in full
    [check] = [c for c in repo.check_runs if c["head_sha"] == pull.head_sha]
    assert check["status"] == "completed"


CODEC = '''"""A small reversible text codec."""


def encode(text: str) -> str:
    """Escape spaces as plus signs."""
    return text.replace(" ", "+")


def decode(text: str) -> str:
    """Undo encode."""
    return text.replace("+", " ")
'''


def test_opted_in_verification_runs_the_suggested_tests_on_the_heads_tarball(harness: Harness) -> None:
    """tests.verify: the App has no clone, so it fetches the head's tarball and runs the tests in the sandbox."""
    fake = harness.fake
    repo = fake.add_repo("octo", "codec", installation_id=77)
    fake.set_file(repo, "main", ".github/diffwise.yml", "tests:\n  verify: true\n")
    pull = fake.add_pull(repo, 3, base={"README.md": "codec\n"}, head={"textcodec.py": CODEC}, author="dev")
    delivery, _ = harness.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
    assert harness.wait(delivery, timeout=120) == {delivery: "done"}
    assert fake.count("GET", rf"^/repos/octo/codec/tarball/{pull.head_sha}$") == 1
    assert fake.count("GET", r"^/_codeload/") == 1
    # the round trip fails on '+': a bug with a reproducer, not a suggested test
    posted = summary(repo) + "".join(c["body"] for c in repo.review_comments)
    assert "round trip does not return the input" in posted
    assert "text='+'" in posted


def test_verification_that_cannot_fetch_the_head_is_skipped_with_a_note(harness: Harness) -> None:
    fake = harness.fake
    repo = fake.add_repo("octo", "codec", installation_id=77)
    fake.set_file(repo, "main", ".github/diffwise.yml", "tests:\n  verify: true\n")
    pull = fake.add_pull(repo, 4, base={"README.md": "codec\n"}, head={"textcodec.py": CODEC}, author="dev")
    fake.faults.append(Fault(remaining=1, status=404, path=r"/tarball/"))
    delivery, _ = harness.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
    assert harness.wait(delivery, timeout=120) == {delivery: "done"}
    assert "Suggested tests were not run (tests.verify)" in summary(repo)
    assert "GitHub answered 404" in summary(repo)
    assert "<!-- diffwise:tests -->" in "".join(c["body"] for c in repo.issue_comments)  # unverified, still offered


def test_without_the_opt_in_no_pr_code_is_fetched_to_run(harness: Harness) -> None:
    fake = harness.fake
    repo = fake.add_repo("octo", "codec", installation_id=77)
    pull = fake.add_pull(repo, 5, base={"README.md": "codec\n"}, head={"textcodec.py": CODEC}, author="dev")
    delivery, _ = harness.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
    assert harness.wait(delivery, timeout=120) == {delivery: "done"}
    assert fake.count("GET", r"/tarball/") == 0
    assert "round trip does not return the input" not in summary(repo)


def _large_module(index: int) -> str:
    blocks = [
        f"def handler_{index}_{{n}}(request, db):\n    q = request.args.get('q')\n"
        '    return db.execute("SELECT * FROM t WHERE a = \'" + q + "\'")\n',
        f"def run_{index}_{{n}}(cmd):\n    import subprocess\n    return subprocess.call(cmd, shell=True)\n",
        f"def total_{index}_{{n}}(values):\n    s = 0\n    for v in values:\n"
        "        if v:\n            s += v\n    return s\n",
    ]
    return "\n\n".join(blocks[n % 3].format(n=n) for n in range(30))


def test_a_large_pull_request_gets_the_same_review_with_analysis_worker_processes(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyzers import shards

    head: dict[str, str | bytes | None] = {f"svc/mod_{i:02d}.py": _large_module(i) for i in range(16)}
    posted: dict[str, list[tuple[str, int, str]]] = {}
    summaries: dict[str, list[str]] = {}
    try:
        for workers in ("1", "0"):  # a worker process shares the analysis; then this process alone
            monkeypatch.setenv(shards.ENV, workers)
            with running_harness(tmp_path / f"state-{workers}") as h:
                repo = h.fake.add_repo("octo", "big", installation_id=77)
                pull = h.fake.add_pull(repo, 3, head=head, author="dev")
                delivery, _ = h.send("pull_request", webhook_payload("pull_request.opened.2", repo, pull))
                assert h.wait(delivery, timeout=90) == {delivery: "done"}
                posted[workers] = sorted((c["path"], c["line"], c["body"]) for c in repo.review_comments)
                summaries[workers] = [summary(repo).split("<!--")[0]]
            if workers == "1":  # the worker process was started, used, and checked back in after its job
                assert [w.ready for w in shards.POOL._idle] == [True]
                assert shards.POOL._busy == set()
    finally:
        shards.POOL.shutdown()
    assert posted["1"]
    assert posted["1"] == posted["0"]
    assert summaries["1"] == summaries["0"]
    assert "16 file(s) reviewed" in summaries["1"][0]
