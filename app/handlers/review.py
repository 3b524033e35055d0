"""The review handler: on PR open/reopen/ready/push, review the change and post one COMMENT review."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from analyzers.base import Finding, Severity
from analyzers.diff import ChangeSet, PlacementKind, Skipped, place
from app.comments import SUMMARY_MARKER, SummaryData, finding_body, marker_ids, summary_body
from app.events import PullRequest
from app.routing import Router
from app.source import pull_info

if TYPE_CHECKING:
    from app.context import Context
    from app.pipeline import Review

router = Router()

TRIGGERS = ("opened", "reopened", "ready_for_review", "synchronize")


@dataclass(frozen=True)
class ReviewTarget:
    owner: str
    repo: str
    number: int
    head_sha: str
    html_url: str


@dataclass(frozen=True)
class PlannedReview:
    """What one review will say: the summary body and the inline comments GitHub will accept."""

    body: str
    comments: tuple[dict[str, Any], ...]
    inline: tuple[Finding, ...]
    in_summary: tuple[tuple[Finding, str], ...]
    fallback_body: str  # the summary with every inline finding listed, for when GitHub refuses a position


def skip_reason(pr: PullRequest, policy: Any, action: str | None) -> str | None:
    """Why this PR is not reviewed automatically, or None. Pure: payload + policy only."""
    if not pr.is_open:
        return f"pull request is {pr.state}"
    review = getattr(policy, "review", None)
    if pr.draft and not getattr(review, "drafts", False):
        return "draft pull request"
    if review is None:
        return None
    if not getattr(review, "auto", True):
        return "automatic review is off in the policy"
    if action is not None and action not in getattr(review, "on", TRIGGERS):
        return f"policy does not review on {action}"
    author = pr.user.login
    if author and author in getattr(review, "ignore_authors", ()):
        return f"author {author} is ignored by the policy"
    if pr.user.is_bot and getattr(review, "ignore_bots", True):
        return f"author {author} is a bot"
    labels = set(pr.label_names) & set(getattr(review, "skip_labels", ()))
    if labels:
        return f"labelled {', '.join(sorted(labels))}"
    return None


@router.on(*(f"pull_request.{action}" for action in TRIGGERS))
async def review_pull_request(ctx: Context) -> None:
    event_pr = ctx.payload.pull_request
    if event_pr is None:
        return
    # A closed PR costs no API call; drafts need the policy first (`review.drafts` may allow them).
    if not event_pr.is_open:
        ctx.log.info("skipping #%s: pull request is %s", event_pr.number, event_pr.state)
        return
    policy = await ctx.config()
    reason = skip_reason(event_pr, policy, ctx.action)
    if reason is not None:
        ctx.log.info("skipping #%s: %s", event_pr.number, reason)
        return
    await review_pull(ctx, event_pr.number, policy=policy, expected_head=event_pr.head.sha or None)


async def rereview_pull_request(ctx: Context, number: int) -> None:
    """`/diffwise review`: a full review on request, even of a head SHA already reviewed (drafts included)."""
    await review_pull(ctx, number, force=True)


async def review_pull(
    ctx: Context, number: int, *, policy: Any = None, expected_head: str | None = None, force: bool = False
) -> int | None:
    """Fetch the PR as it is now, review its files, post one COMMENT review; the review id, or None if skipped."""
    if policy is None:
        policy = await ctx.config()
    source = ctx.source
    pr, _raw = await source.pull(number)  # uncached: the payload may be older than the PR
    if force:  # asked for explicitly: only a closed PR is refused
        reason = None if pr.is_open else f"pull request is {pr.state}"
    else:
        reason = skip_reason(pr, policy, None)
    if reason is not None:
        ctx.log.info("skipping #%s: now %s", pr.number, reason)
        return None
    if expected_head and pr.head.sha != expected_head:
        ctx.log.info("skipping #%s at %s: head moved to %s", pr.number, expected_head[:12], pr.head.sha[:12])
        return None
    if not force and await already_reviewed(ctx, pr.number, pr.head.sha):
        ctx.log.info("#%s at %s is already reviewed", pr.number, pr.head.sha[:12])
        return None

    files = await source.files(pr.number)
    included = getattr(policy, "path_included", None)
    contents, unreadable = await source.head_files(files.changeset, pr.head.sha, wanted=included)
    changeset = files.changeset.with_skipped(unreadable)
    notes: list[str] = []
    if files.truncated:
        notes.append(f"GitHub lists at most {files.listed} files; this PR changes more, the rest were not reviewed.")
    notes += await policy_notes(ctx, pr.number, [f.path for f in changeset.files])

    from app.pipeline import ReviewInput, run_review  # heavy: analyzers and tree-sitter

    owner, repo = source.owner, source.repo
    review = await run_review(
        ReviewInput(
            changeset=changeset,
            read_head=contents.get,
            policy=policy,
            pr=pull_info(owner, repo, pr),
            llm=make_llm(ctx.settings, policy),
        )
    )
    target = ReviewTarget(owner, repo, pr.number, pr.head.sha, f"https://github.com/{owner}/{repo}")
    posted = await posted_finding_ids(ctx, pr.number)
    plan = plan_review(changeset, review, target, policy, notes, posted)
    review_id = await post_review(ctx, target, plan)
    ctx.log.info(
        "reviewed #%s at %s: %d finding(s), %d inline, review %s",
        pr.number,
        pr.head.sha[:12],
        len(review.findings),
        len(plan.comments),
        review_id,
    )
    return review_id


async def policy_notes(ctx: Context, number: int, changed_paths: Sequence[str]) -> list[str]:
    """Summary notes about the policy; an invalid policy file also gets its one (upserted) PR comment."""
    try:
        from app.policy_loader import (
            POLICY_COMMENT_MARKER,
            format_issue,
            pending_policy_change,
            pending_policy_note,
            render_policy_comment,
        )
    except ImportError:
        return []
    notes = [pending_policy_note()] if pending_policy_change(changed_paths) else []
    result = await ctx.policy_result()
    errors = list(getattr(result, "errors", None) or [])
    if errors:
        notes.append(f"The policy file has {len(errors)} error(s); those keys used their defaults.")
        notes += [format_issue(issue) for issue in errors[:10]]
        await upsert_issue_comment(ctx, number, POLICY_COMMENT_MARKER, render_policy_comment(errors))
    return notes


async def upsert_issue_comment(ctx: Context, number: int, marker: str, body: str) -> None:
    """Edit the bot's comment carrying `marker` in place, or create it once."""
    base = "/repos/{owner}/{repo}".format(**ctx.repo())
    for comment in await ctx.source.issue_comments(number):
        user = comment.get("user") or {}
        if marker in (comment.get("body") or "") and user.get("type") == "Bot":
            if comment.get("body") != body:
                await ctx.gh.arequest("PATCH", f"{base}/issues/comments/{comment['id']}", json={"body": body})
            return
    await ctx.gh.arequest("POST", f"{base}/issues/{number}/comments", json={"body": body})


def make_llm(settings: Any, policy: Any) -> Any:
    """The LLM reviewer for this job (it degrades to a note when no key is set or the policy turns it off)."""
    try:
        from app.llm_review import LLMReviewer
    except ImportError:
        return None
    return LLMReviewer.from_settings(settings, policy)


async def posted_finding_ids(ctx: Context, number: int) -> frozenset[str]:
    """Finding ids the bot already has inline on this PR (its review comments' hidden markers)."""
    ids: set[str] = set()
    for comment in await ctx.source.review_comments(number):
        user = comment.get("user") or {}
        if user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]"):
            ids.update(marker_ids(comment.get("body") or ""))
    return frozenset(ids)


async def already_reviewed(ctx: Context, number: int, head_sha: str) -> bool:
    """A redelivered webhook must not post a second review of the same head SHA."""
    for item in await ctx.source.reviews(number):
        user = item.get("user") or {}
        if (
            item.get("commit_id") == head_sha
            and SUMMARY_MARKER in (item.get("body") or "")
            and (user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]"))
        ):
            return True
    return False


def plan_review(
    changeset: ChangeSet,
    review: Review,
    target: ReviewTarget,
    policy: Any,
    notes: Sequence[str] = (),
    posted: Collection[str] = frozenset(),
) -> PlannedReview:
    """Inline comments where GitHub accepts them (EXACT/NEAREST placements), everything else in the summary.

    Findings whose id is in `posted` (an earlier review's inline comment is still there) are not repeated.
    """
    comments_policy = getattr(policy, "comments", None)
    min_severity = Severity.parse(getattr(comments_policy, "min_severity", "medium"))
    max_comments = int(getattr(comments_policy, "max_comments", 12))
    comments: list[dict[str, Any]] = []
    inline: list[Finding] = []
    in_summary: list[tuple[Finding, str]] = []
    already: list[Finding] = []
    below = 0
    ranked = sorted(review.findings, key=lambda f: f.rank, reverse=True)
    for finding in ranked:
        if finding.id in posted:
            already.append(finding)
            continue
        if finding.severity < min_severity:
            below += 1
            continue
        placement = place(changeset, finding.path, finding.start_line, finding.end_line, finding.side)
        if placement.kind is PlacementKind.OUTSIDE or placement.line is None:
            in_summary.append((finding, placement.reason or "outside the diff"))
            continue
        if len(comments) >= max_comments:
            in_summary.append((finding, "over the inline comment cap"))
            continue
        moved = finding.end_line if placement.kind is PlacementKind.NEAREST else None
        comment: dict[str, Any] = {
            "path": placement.path,
            "line": placement.line,
            "side": placement.side,
            "body": finding_body(finding, moved_from=moved),
        }
        if placement.start_line is not None and placement.start_line < placement.line:
            comment["start_line"] = placement.start_line
            comment["start_side"] = placement.side
        comments.append(comment)
        inline.append(finding)
    data = SummaryData(
        head_sha=target.head_sha,
        repo_url=target.html_url,
        findings=review.findings,
        inline=inline,
        already_posted=already,
        in_summary=in_summary,
        below_threshold=below,
        reviewed_files=review.reviewed_files,
        skipped=[(s.path, s.reason) for s in _skipped(changeset, review)],
        failed_analyzers=review.failed_analyzers,
        notes=[*review.notes, *notes],
        tests_count=0,  # this handler posts no tests comment (app.publish does)
    )
    refused = [(f, "GitHub refused the inline position") for f in inline]
    fallback = replace(data, inline=(), in_summary=[*refused, *in_summary])
    return PlannedReview(summary_body(data), tuple(comments), tuple(inline), tuple(in_summary), summary_body(fallback))


def _skipped(changeset: ChangeSet, review: Review) -> list[Skipped]:
    seen: dict[str, Skipped] = {s.path: s for s in changeset.skipped}
    for s in review.skipped:
        seen.setdefault(s.path, s)
    return list(seen.values())


async def post_review(ctx: Context, target: ReviewTarget, plan: PlannedReview) -> int | None:
    """The one GitHub write of this handler: a single COMMENT review (never APPROVE). Swappable for app.publish."""
    url = f"/repos/{target.owner}/{target.repo}/pulls/{target.number}/reviews"
    payload: dict[str, Any] = {
        "commit_id": target.head_sha,
        "event": "COMMENT",
        "body": plan.body,
        "comments": list(plan.comments),
    }
    from githubkit.exception import RequestFailed

    try:
        response = await ctx.gh.arequest("POST", url, json=payload)
    except RequestFailed as exc:
        if exc.response.status_code != 422 or not plan.comments:
            raise
        # A placement GitHub refused (the diff moved under us): keep the review, summary only.
        ctx.log.warning("GitHub refused an inline position (422); posting the summary without inline comments")
        payload["comments"] = []
        payload["body"] = plan.fallback_body
        response = await ctx.gh.arequest("POST", url, json=payload)
    return int(response.json().get("id") or 0) or None
