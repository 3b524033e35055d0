"""The publisher against the fake GitHub: inline vs summary, 422 recovery, no duplicates, outdated threads, checks."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from analyzers.base import Confidence, Finding, Fix, Severity
from analyzers.diff import ChangeSet
from app.comments import SUMMARY_MARKER, marker_ids
from app.github import GitHubApp
from app.pipeline import Review
from app.publish import Publisher, PublishOptions, PublishTarget
from app.settings import Settings
from tests.fakes.github import FakeGitHub, generate_app_keys

KEYS = generate_app_keys()


class PublishFake(FakeGitHub):
    """The shared fake plus the two things the publisher also uses: deleting a pending review, review threads."""

    def _register(self) -> None:
        super()._register()
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        self._route("DELETE", repo + r"/pulls/(?P<n>\d+)/reviews/(?P<rid>\d+)", "token", self._delete_review)

    async def _delete_review(self, request: Request, body: Any, owner: str, repo: str, n: str, rid: str) -> Response:
        r = self._repo(owner, repo)
        review = next((rv for rv in r.reviews if rv["id"] == int(rid)), None)
        if review is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        if review["state"] != "PENDING":
            return JSONResponse({"message": "Unprocessable Entity", "errors": ["Can not delete"]}, status_code=422)
        r.reviews.remove(review)
        r.review_comments[:] = [c for c in r.review_comments if c["pull_request_review_id"] != int(rid)]
        return JSONResponse(review)

    async def _graphql(self, request: Request, body: Any) -> Response:
        query = str((body or {}).get("query") or "")
        if "reviewThreads" not in query:
            return await super()._graphql(request, body)
        self.graphql_calls.append({"query": query, "variables": (body or {}).get("variables")})
        variables = (body or {}).get("variables") or {}
        r = self.repo(f"{variables['owner']}/{variables['name']}")
        roots = [
            c for c in r.review_comments if c["in_reply_to_id"] is None and c["pull_number"] == variables["number"]
        ]
        nodes = [
            {"id": f"PRRT_{c['id']}", "isResolved": False, "comments": {"nodes": [{"databaseId": c["id"]}]}}
            for c in roots
        ]
        page = {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}
        return JSONResponse({"data": {"repository": {"pullRequest": {"reviewThreads": page}}}})


BASE = "import os\n\n\ndef load(text):\n    return text\n\n\ndef other():\n    return 1\n" + "".join(
    f"x{i} = {i}\n" for i in range(40)
)
HEAD = BASE.replace("    return text\n", "    data = yaml.load(text)\n    return data\n")


def finding(line: int, rule: str = "security/yaml-load", sev: Severity = Severity.HIGH, **kw: Any) -> Finding:
    values: dict[str, Any] = {
        "rule": rule,
        "analyzer": rule.split("/")[0],
        "severity": sev,
        "confidence": Confidence.HIGH,
        "message": f"{rule} at {line}",
        "path": "app.py",
        "start_line": line,
        "end_line": line,
        "code": f"code-{rule}-{kw.pop('code', line)}",
    }
    values.update(kw)
    return Finding(**values)


@pytest.fixture
def fake() -> PublishFake:
    fake = PublishFake(app_id=42, public_key=KEYS.public_pem)
    return fake


def setup_pull(fake: PublishFake, head: str = HEAD) -> tuple[Any, Any]:
    repo = fake.add_repo("octo", "shop", installation_id=7)
    pull = fake.add_pull(repo, 5, base={"app.py": BASE}, head={"app.py": head})
    return repo, pull


def changeset_of(fake: PublishFake, number: int = 5) -> ChangeSet:
    repo = fake.repo("octo/shop")
    return ChangeSet.from_github_files(repo.pulls[number].files)


async def publish(fake: PublishFake, review: Review, cs: ChangeSet | None = None, **opts: Any) -> Any:
    settings = Settings.for_tests(app_id=42, private_key=KEYS.private_pem, github_api_url="http://github.test")
    app = GitHubApp(settings, transport=fake.transport())
    gh = app.installation_client(7, delivery_id="d-1")
    pull = fake.repo("octo/shop").pulls[5]
    target = PublishTarget("octo", "shop", 5, pull.head_sha, "https://github.test/octo/shop")
    publisher = Publisher(gh, target, PublishOptions(**opts))
    await publisher.start_check()
    return await publisher.publish(cs or changeset_of(fake), review)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_inside_and_outside_findings_all_land_somewhere(fake: PublishFake) -> None:
    repo, _ = setup_pull(fake)
    inside = finding(5, fix=Fix(5, 5, "    data = yaml.safe_load(text)"))
    outside = finding(30, rule="quality/x", sev=Severity.MEDIUM)
    review = Review(findings=(inside, outside), reviewed_files=("app.py",))
    result = run(publish(fake, review))
    assert len(repo.reviews) == 1
    assert repo.reviews[0]["event"] == "COMMENT"
    [comment] = repo.review_comments
    assert comment["line"] == 5
    assert "```suggestion\n    data = yaml.safe_load(text)\n```" in comment["body"]
    assert marker_ids(comment["body"]) == [inside.id]
    [summary] = repo.issue_comments
    assert SUMMARY_MARKER in summary["body"]
    assert "blob/" in summary["body"]
    assert "#L30" in summary["body"]
    assert result.in_summary == [(outside.id, "outside the diff")]
    assert result.rejected == []


def test_a_422_batch_is_split_and_the_rest_posted(fake: PublishFake) -> None:
    repo, _ = setup_pull(fake)
    # A stale change model (as after a racing push): line 12 is in our hunk but not in GitHub's.
    stale_cs = ChangeSet.from_unified_diff(
        "--- a/app.py\n+++ b/app.py\n@@ -5,1 +5,2 @@\n-    return text\n+    data = yaml.load(text)\n+    return data\n"
        "@@ -12,1 +13,1 @@\n-x3 = 3\n+x3 = 33\n"
    )
    good, bad = finding(5), finding(13, rule="quality/y")
    result = run(publish(fake, Review(findings=(good, bad), reviewed_files=("app.py",)), stale_cs))
    assert result.rejected == [bad.id]
    assert result.inline == [good.id]
    assert [rv["state"] for rv in repo.reviews] == ["COMMENTED"]  # probes were deleted, one review shows
    assert [marker_ids(c["body"]) for c in repo.review_comments] == [[good.id]]
    assert "GitHub rejected the position (422)" in repo.issue_comments[0]["body"]


def test_second_push_posts_only_new_resolves_fixed_and_edits_summary(fake: PublishFake) -> None:
    repo, pull = setup_pull(fake)
    a, b = finding(5), finding(6, rule="quality/debug", sev=Severity.MEDIUM)
    run(publish(fake, Review(findings=(a, b), reviewed_files=("app.py",))))
    summary_id = repo.issue_comments[0]["id"]

    fake.push(repo, 5, {"app.py": HEAD.replace("    return data\n", "    print(data)\n    return data\n")})
    c = finding(6, rule="quality/print", sev=Severity.MEDIUM)
    result = run(publish(fake, Review(findings=(b, c), reviewed_files=("app.py",))))

    assert result.inline == [c.id]
    assert result.already_posted == [b.id]
    assert result.resolved == [a.id]
    ids = [i for cm in repo.review_comments if cm["in_reply_to_id"] is None for i in marker_ids(cm["body"])]
    assert sorted(ids) == sorted([a.id, b.id, c.id])  # no id twice
    replies = [cm for cm in repo.review_comments if cm["in_reply_to_id"] is not None]
    assert len(replies) == 1
    assert f"Fixed in {pull.head_sha[:7]}" in replies[0]["body"]
    assert any("resolveReviewThread" in call["query"] for call in fake.graphql_calls)
    assert [cm["id"] for cm in repo.issue_comments] == [summary_id]  # edited in place


def test_redelivery_posts_nothing_twice(fake: PublishFake) -> None:
    repo, _ = setup_pull(fake)
    review = Review(findings=(finding(5),), reviewed_files=("app.py",))
    run(publish(fake, review))
    second = run(publish(fake, review))
    assert len(repo.reviews) == 1
    assert second.review_id is None
    assert len(repo.issue_comments) == 1
    assert len(repo.review_comments) == 1


def test_threads_with_a_human_reply_are_left_alone(fake: PublishFake) -> None:
    repo, _ = setup_pull(fake)
    a = finding(5)
    run(publish(fake, Review(findings=(a,), reviewed_files=("app.py",))))
    root = repo.review_comments[0]
    repo.review_comments.append(
        {**root, "id": 99_999, "in_reply_to_id": root["id"], "body": "this is intended", "user": fake._user("alice")}
    )
    result = run(publish(fake, Review(findings=(), reviewed_files=("app.py",))))
    assert result.resolved == []
    assert not [c for c in repo.review_comments if "Fixed in" in c["body"]]


def test_cap_counts_what_is_left_out_and_threshold_hides_low(fake: PublishFake) -> None:
    setup_pull(fake)
    many = (*tuple(finding(5, rule=f"security/r{i}", code=i) for i in range(4)), finding(6, sev=Severity.LOW))
    result = run(publish(fake, Review(findings=many, reviewed_files=("app.py",)), max_comments=2))
    assert len(result.inline) == 2
    assert sum(1 for _, why in result.in_summary if why == "over the comment cap") == 2
    body = fake.repo("octo/shop").issue_comments[0]["body"]
    assert "2 more finding(s) over the comment cap" in body
    assert "1 finding(s) below the comment severity threshold" in body


def test_check_run_annotations_are_batched_and_gated(fake: PublishFake) -> None:
    repo, _ = setup_pull(fake)
    findings = tuple(finding(5, rule=f"security/r{i}", code=i) for i in range(120))
    result = run(publish(fake, Review(findings=findings, reviewed_files=("app.py",)), fail_on="high"))
    patches = [r for r in fake.requests if r.method == "PATCH" and re.search(r"/check-runs/\d+$", r.path)]
    sizes = [len((r.json or {}).get("output", {}).get("annotations", [])) for r in patches]
    assert sizes == [50, 50, 20]
    assert result.conclusion == "failure"
    [run_] = repo.check_runs
    assert run_["status"] == "completed"
    assert run_["conclusion"] == "failure"


def test_incomplete_review_is_never_a_clean_pass(fake: PublishFake) -> None:
    from analyzers.diff import Skipped

    repo, _ = setup_pull(fake)
    review = Review(findings=(), reviewed_files=("app.py",), skipped=(Skipped("big.min.js", "too large"),))
    result = run(publish(fake, review))
    assert result.conclusion == "neutral"
    assert "incomplete" in repo.check_runs[0]["output"]["title"]
