"""Review → GitHub: one COMMENT review, the summary edited in place, a check run, no duplicates ever."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from githubkit.exception import RequestFailed

from analyzers.base import Finding, Severity
from analyzers.diff import ChangeSet, PlacementKind, place
from app.comments import (
    LLM_BADGE,
    SUMMARY_MARKER,
    SummaryData,
    annotation,
    check_output,
    finding_body,
    fixed_reply,
    head_marker,
    marker_ids,
    suggestion_block,
    summary_body,
)
from app.pipeline import Review

log = logging.getLogger(__name__)

ANNOTATIONS_PER_REQUEST = 50  # GitHub's limit for check-run annotations in one request
FIXED_MARKER = "<!-- diffwise:fixed -->"
CHECK_NAME = "diffwise"


@dataclass(frozen=True)
class PublishTarget:
    owner: str
    repo: str
    number: int
    head_sha: str
    html_url: str = ""  # https://github.com/o/r

    @property
    def base(self) -> str:
        return f"/repos/{self.owner}/{self.repo}"


@dataclass(frozen=True)
class PublishOptions:
    max_comments: int = 12
    min_severity: Severity = Severity.MEDIUM
    suggestions: bool = True
    fail_on: str | None = "high"
    checks: bool = True

    @classmethod
    def from_policy(cls, policy: Any) -> PublishOptions:
        if policy is None:
            return cls()
        comments = getattr(policy, "comments", None)
        checks = getattr(policy, "checks", None)
        return cls(
            max_comments=int(getattr(comments, "max_comments", 12)),
            min_severity=Severity.parse(getattr(comments, "min_severity", "medium")),
            suggestions=bool(getattr(comments, "suggestions", True)),
            fail_on=getattr(checks, "fail_on", "high"),
            checks=bool(getattr(checks, "enabled", True)),
        )


@dataclass
class PublishResult:
    review_id: int | None = None
    inline: list[str] = field(default_factory=list)
    in_summary: list[tuple[str, str]] = field(default_factory=list)
    already_posted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # 422s recovered by moving them to the summary
    resolved: list[str] = field(default_factory=list)
    summary_comment_id: int | None = None
    check_run_id: int | None = None
    conclusion: str | None = None
    api_calls: int = 0


@dataclass(frozen=True)
class ExistingComment:
    id: int
    node_id: str
    path: str
    finding_ids: tuple[str, ...]
    in_reply_to: int | None
    author_is_bot: bool
    body: str


class Publisher:
    """Speaks for one PR at one head SHA. `gh` is a githubkit installation client."""

    def __init__(self, gh: Any, target: PublishTarget, options: PublishOptions) -> None:
        self.gh = gh
        self.target = target
        self.options = options
        self.calls = 0
        self.check_run_id: int | None = None
        self._bot_comments: list[dict[str, Any]] | None = None

    async def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.calls += 1
        response = await self.gh.arequest(method, url, **kwargs)
        return response.json() if response.content else None

    async def _paginate(self, url: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            chunk = await self._request("GET", url, params={"per_page": 100, "page": page})
            if not chunk:
                break
            items.extend(chunk)
            if len(chunk) < 100:
                break
            page += 1
        return items

    # ---- check run -------------------------------------------------------------------------------
    async def start_check(self) -> int | None:
        """Mark the head `in_progress`, reusing a run a retried job left in progress (no orphaned checks)."""
        if not self.options.checks:
            return None
        listing = await self._request(
            "GET",
            f"{self.target.base}/commits/{self.target.head_sha}/check-runs",
            params={"check_name": CHECK_NAME, "per_page": 100},
        )
        for existing in (listing or {}).get("check_runs", []):
            if existing.get("name") == CHECK_NAME and existing.get("status") != "completed":
                self.check_run_id = int(existing["id"])
                return self.check_run_id
        run = await self._request(
            "POST",
            f"{self.target.base}/check-runs",
            json={
                "name": CHECK_NAME,
                "head_sha": self.target.head_sha,
                "status": "in_progress",
                "output": {"title": "Reviewing", "summary": "parse → analyze → LLM → publish: started"},
            },
        )
        self.check_run_id = int(run["id"])
        return self.check_run_id

    async def progress(self, stage: str) -> None:
        if self.check_run_id is None:
            return
        await self._request(
            "PATCH",
            f"{self.target.base}/check-runs/{self.check_run_id}",
            json={"output": {"title": "Reviewing", "summary": f"Stage finished: {stage}"}},
        )

    async def fail_check(self, title: str, summary: str) -> None:
        """A run that could not review (invalid policy, crash) says so; never a clean pass."""
        payload = {"status": "completed", "conclusion": "failure", "output": {"title": title, "summary": summary}}
        if self.check_run_id is None and self.options.checks:
            payload |= {"name": CHECK_NAME, "head_sha": self.target.head_sha}
            await self._request("POST", f"{self.target.base}/check-runs", json=payload)
        elif self.check_run_id is not None:
            await self._request("PATCH", f"{self.target.base}/check-runs/{self.check_run_id}", json=payload)

    async def _complete_check(self, review: Review, result: PublishResult, failure: str | None = None) -> None:
        if not self.options.checks:
            return
        output = check_output(
            review.findings,
            self.options.fail_on,
            review.reviewed_files,
            [(s.path, s.reason) for s in review.skipped],
            review.failed_analyzers,
        )
        if failure:  # e.g. an invalid policy file: the gate fails whatever was found
            output = replace(output, title=f"{failure} · {output.title}", conclusion="failure")
        annotations = [annotation(f) for f in review.findings]
        batches = [annotations[i : i + ANNOTATIONS_PER_REQUEST] for i in range(0, len(annotations), 50)] or [[]]
        base_output = {"title": output.title, "summary": output.summary}
        if self.check_run_id is None:
            run = await self._request(
                "POST",
                f"{self.target.base}/check-runs",
                json={"name": CHECK_NAME, "head_sha": self.target.head_sha, "status": "in_progress"},
            )
            self.check_run_id = int(run["id"])
        url = f"{self.target.base}/check-runs/{self.check_run_id}"
        for batch in batches[:-1]:
            await self._request("PATCH", url, json={"output": base_output | {"annotations": batch}})
        await self._request(
            "PATCH",
            url,
            json={
                "status": "completed",
                "conclusion": output.conclusion,
                "output": base_output | {"annotations": batches[-1]},
            },
        )
        result.check_run_id = self.check_run_id
        result.conclusion = output.conclusion

    # ---- existing state on GitHub (the source of truth when local state is behind) --------------
    async def existing_comments(self) -> list[ExistingComment]:
        raw = await self._paginate(f"{self.target.base}/pulls/{self.target.number}/comments")
        out = []
        for c in raw:
            user = c.get("user") or {}
            out.append(
                ExistingComment(
                    id=int(c["id"]),
                    node_id=str(c.get("node_id", "")),
                    path=str(c.get("path", "")),
                    finding_ids=tuple(marker_ids(c.get("body", ""))),
                    in_reply_to=c.get("in_reply_to_id"),
                    author_is_bot=user.get("type") == "Bot",
                    body=str(c.get("body", "")),
                )
            )
        return out

    # ---- the review ----------------------------------------------------------------------------
    def plan(
        self, changeset: ChangeSet, findings: Sequence[Finding], posted: set[str]
    ) -> tuple[list[tuple[Finding, dict[str, Any]]], list[tuple[Finding, str]], list[Finding], int, int]:
        """Decide inline vs summary: (inline comments, summary entries, already posted, over cap, below)."""
        inline: list[tuple[Finding, dict[str, Any]]] = []
        summary: list[tuple[Finding, str]] = []
        already: list[Finding] = []
        over_cap = below = 0
        for f in findings:
            if f.id in posted:
                already.append(f)
                continue
            if f.severity < self.options.min_severity:
                below += 1
                continue
            if len(inline) >= self.options.max_comments:
                over_cap += 1
                summary.append((f, "over the comment cap"))
                continue
            comment = self._comment_for(changeset, f)
            if comment is None:
                summary.append((f, "outside the diff"))
            else:
                inline.append((f, comment))
        return inline, summary, already, over_cap, below

    def _comment_for(self, changeset: ChangeSet, f: Finding) -> dict[str, Any] | None:
        placement = place(changeset, f.path, f.start_line, f.end_line, f.side)
        if placement.kind is PlacementKind.OUTSIDE or placement.line is None:
            return None
        suggestion = None
        if (
            self.options.suggestions
            and f.fix is not None
            and placement.kind is PlacementKind.EXACT
            and f.side == "RIGHT"
            and (placement.start_line or placement.line) == f.fix.start_line
            and placement.line == f.fix.end_line
        ):
            original = _new_lines(changeset, f.path, f.fix.start_line, f.fix.end_line)
            if original is not None:
                suggestion = suggestion_block(f.fix.replacement, original)
        moved_from = f.end_line if placement.kind is PlacementKind.NEAREST else None
        comment: dict[str, Any] = {
            "path": f.path,
            "line": placement.line,
            "side": placement.side,
            "body": finding_body(f, suggestion, moved_from),
        }
        if placement.start_line is not None and placement.start_line < placement.line:
            comment["start_line"] = placement.start_line
            comment["start_side"] = placement.side
        return comment

    async def _post_review(self, comments: list[dict[str, Any]], body: str) -> tuple[int | None, list[int]]:
        """Post one COMMENT review; on 422, find the rejected comments and post the rest once."""
        url = f"{self.target.base}/pulls/{self.target.number}/reviews"
        payload = {"commit_id": self.target.head_sha, "event": "COMMENT", "body": body}
        try:
            review = await self._request("POST", url, json=payload | {"comments": comments})
            return int(review["id"]), []
        except RequestFailed as exc:
            if exc.response.status_code != 422:
                raise
            log.warning("GitHub rejected the review (422); locating the rejected comments")
        rejected = await self._find_rejected(list(range(len(comments))), comments)
        good = [c for i, c in enumerate(comments) if i not in set(rejected)]
        if not good:
            return None, rejected
        review = await self._request("POST", url, json=payload | {"comments": good})
        return int(review["id"]), rejected

    async def _find_rejected(self, indices: list[int], comments: list[dict[str, Any]]) -> list[int]:
        """Bisect with PENDING reviews (created, then deleted): nothing is shown to people meanwhile."""
        if not indices:
            return []
        url = f"{self.target.base}/pulls/{self.target.number}/reviews"
        try:
            pending = await self._request(
                "POST", url, json={"commit_id": self.target.head_sha, "comments": [comments[i] for i in indices]}
            )
        except RequestFailed as exc:
            if exc.response.status_code != 422:
                raise
            if len(indices) == 1:
                return indices
            mid = len(indices) // 2
            return await self._find_rejected(indices[:mid], comments) + await self._find_rejected(
                indices[mid:], comments
            )
        await self._request("DELETE", f"{url}/{pending['id']}")
        return []

    async def _resolve_outdated(
        self,
        existing: list[ExistingComment],
        current: set[str],
        reviewed: set[str],
        llm_paths: frozenset[str] | None = None,
    ) -> list[str]:
        """Findings that no longer fire in a re-reviewed file: reply "fixed in <sha>" and resolve the thread."""
        replies_to: dict[int, list[ExistingComment]] = {}
        for c in existing:
            if c.in_reply_to is not None:
                replies_to.setdefault(c.in_reply_to, []).append(c)
        resolved: list[str] = []
        thread_ids: dict[int, str] | None = None
        for c in existing:
            if not c.author_is_bot or c.in_reply_to is not None or not c.finding_ids:
                continue
            if c.path not in reviewed or any(fid in current for fid in c.finding_ids):
                continue
            if llm_paths is not None and LLM_BADGE in c.body and c.path not in llm_paths:
                continue  # an AI finding in a file the LLM did not look at this time: still stands
            replies = replies_to.get(c.id, [])
            if any(not r.author_is_bot for r in replies):
                continue  # a human took part: leave the thread to people
            if any(FIXED_MARKER in r.body for r in replies):
                continue  # already marked fixed by an earlier run
            await self._request(
                "POST",
                f"{self.target.base}/pulls/{self.target.number}/comments",
                json={"body": fixed_reply(self.target.head_sha), "in_reply_to": c.id},
            )
            if thread_ids is None:
                thread_ids = await self._thread_ids()
            thread = thread_ids.get(c.id)
            if thread:
                await self._graphql(
                    "mutation($id: ID!) { resolveReviewThread(input: {threadId: $id}) { thread { id } } }",
                    {"id": thread},
                )
            resolved.extend(c.finding_ids)
        return resolved

    async def _graphql(self, query: str, variables: dict[str, Any]) -> Any:
        self.calls += 1
        return await self.gh.async_graphql(query, variables)

    async def _thread_ids(self) -> dict[int, str]:
        query = (
            "query($owner: String!, $name: String!, $number: Int!, $after: String) {"
            " repository(owner: $owner, name: $name) { pullRequest(number: $number) {"
            " reviewThreads(first: 100, after: $after) { pageInfo { hasNextPage endCursor }"
            " nodes { id isResolved comments(first: 1) { nodes { databaseId } } } } } } }"
        )
        out: dict[int, str] = {}
        after: str | None = None
        for _ in range(30):
            data = await self._graphql(
                query,
                {"owner": self.target.owner, "name": self.target.repo, "number": self.target.number, "after": after},
            )
            threads = data["repository"]["pullRequest"]["reviewThreads"]
            for node in threads["nodes"]:
                first = node["comments"]["nodes"]
                if first and not node.get("isResolved"):
                    out[int(first[0]["databaseId"])] = node["id"]
            if not threads["pageInfo"]["hasNextPage"]:
                break
            after = threads["pageInfo"]["endCursor"]
        return out

    async def publish(
        self,
        changeset: ChangeSet,
        review: Review,
        *,
        incremental_from: str | None = None,
        pending_policy_change: bool = False,
        extra_notes: Sequence[str] = (),
        check_failure: str | None = None,
        demoted_rules: Sequence[str] = (),
        llm_paths: frozenset[str] | None = None,
    ) -> PublishResult:
        result = PublishResult()
        existing = await self.existing_comments()
        posted = {fid for c in existing if c.author_is_bot for fid in c.finding_ids}
        inline, in_summary, already, over_cap, below = self.plan(changeset, review.findings, posted)

        review_id: int | None = None
        rejected: list[Any] = []
        if inline:
            body = (
                f"diffwise found {len(inline)} new issue(s) at `{self.target.head_sha[:7]}`; see the summary comment."
            )
            review_id, rejected = await self._post_review([c for _, c in inline], body)
        rejected_ids = {inline[i][0].id for i in rejected}
        for i in rejected:
            in_summary.append((inline[i][0], "GitHub rejected the position (422)"))
        result.review_id = review_id
        result.inline = [f.id for f, _ in inline if f.id not in rejected_ids]
        result.rejected = sorted(rejected_ids)
        result.in_summary = [(f.id, why) for f, why in in_summary]
        result.already_posted = [f.id for f in already]

        current = {f.id for f in review.findings}
        result.resolved = await self._resolve_outdated(existing, current, set(review.reviewed_files), llm_paths)

        llm_line = None
        if review.llm.used:
            llm_line = (
                f"LLM: `{review.llm.model}` · {review.llm.input_tokens:,} input / {review.llm.output_tokens:,} output"
                f" tokens · ${review.llm.cost_usd:.4f}"
            )
        data = SummaryData(
            head_sha=self.target.head_sha,
            repo_url=self.target.html_url or f"https://github.com/{self.target.owner}/{self.target.repo}",
            findings=review.findings,
            inline=[f for f, _ in inline if f.id not in rejected_ids],
            already_posted=already,
            in_summary=in_summary,
            over_cap=over_cap,
            below_threshold=below,
            resolved=result.resolved,
            reviewed_files=review.reviewed_files,
            skipped=[(s.path, s.reason) for s in review.skipped],
            failed_analyzers=review.failed_analyzers,
            notes=[*review.notes, *extra_notes],
            llm_line=llm_line,
            tests_count=len(review.tests),
            incremental_from=incremental_from,
            pending_policy_change=pending_policy_change,
            demoted_rules=tuple(demoted_rules),
        )
        result.summary_comment_id = await self.upsert_issue_comment(SUMMARY_MARKER, summary_body(data))
        await self._complete_check(review, result, check_failure)
        result.api_calls = self.calls
        return result

    async def bot_issue_comments(self) -> list[dict[str, Any]]:
        """The bot's PR conversation comments, listed once per run (summary, tests, policy all look here)."""
        if self._bot_comments is None:
            listing = await self._paginate(f"{self.target.base}/issues/{self.target.number}/comments")
            self._bot_comments = [c for c in listing if (c.get("user") or {}).get("type") == "Bot"]
        return self._bot_comments

    async def summary_covers(self, head_sha: str) -> bool:
        """GitHub is the truth when local state is behind: the bot's summary names the head it reviewed."""
        marker = head_marker(head_sha)
        return any(
            SUMMARY_MARKER in (c.get("body") or "") and marker in (c.get("body") or "")
            for c in await self.bot_issue_comments()
        )

    async def upsert_issue_comment(self, marker: str, body: str) -> int:
        """Edit the bot's comment carrying `marker` in place, or create it once."""
        comments = await self.bot_issue_comments()
        existing = next((c for c in comments if marker in (c.get("body") or "")), None)
        if existing is not None:
            if existing.get("body") != body:  # unchanged text: no write (and no "edited" noise on the PR)
                await self._request(
                    "PATCH", f"{self.target.base}/issues/comments/{existing['id']}", json={"body": body}
                )
                existing["body"] = body
            return int(existing["id"])
        issue = f"{self.target.base}/issues/{self.target.number}/comments"
        created = await self._request("POST", issue, json={"body": body})
        comments.append({"id": created["id"], "body": body, "user": {"type": "Bot"}})
        return int(created["id"])


def _new_lines(changeset: ChangeSet, path: str, start: int, end: int) -> list[str] | None:
    changed = changeset.get(path)
    if changed is None:
        return None
    texts = {ln.new: ln.text for h in changed.hunks for ln in h.lines if ln.new is not None}
    lines = [texts.get(n) for n in range(start, end + 1)]
    if any(t is None for t in lines):
        return None
    return [t for t in lines if t is not None]
