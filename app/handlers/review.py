"""The review handler: on PR open/reopen/ready/push, review the change and publish it (app.publish)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzers.base import Severity
from app.checkout import CheckoutError, fetch_github_checkout, wants_verification
from app.comments import TESTS_MARKER
from app.errors import RetryLater
from app.events import PullRequest
from app.publish import Publisher, PublishOptions, PublishResult, PublishTarget
from app.routing import Router
from app.source import pull_info

if TYPE_CHECKING:
    from app.context import Context
    from app.pipeline import Review

log = logging.getLogger(__name__)

router = Router()

TRIGGERS = ("opened", "reopened", "ready_for_review", "synchronize")
BASELINE_FILES = 10  # base files read to tell inherited size findings from new ones (GitHub API calls)


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
    """`/diffwise review`: a full review on request, even of a head already reviewed (drafts and paused too)."""
    await review_pull(ctx, number, force=True)


def _stores(settings: Any) -> tuple[Any, Any]:
    from app.db import database_url, get_engine
    from app.pr_state import PrState
    from app.review_state import ReviewState

    engine = get_engine(database_url(settings.state_dir, getattr(settings, "database_url", None)))
    return ReviewState(engine), PrState(engine)


async def review_pull(
    ctx: Context, number: int, *, policy: Any = None, expected_head: str | None = None, force: bool = False
) -> PublishResult | None:
    """Fetch the PR as it is now, review it, publish; the publish result, or None if skipped."""
    if policy is None:
        policy = await ctx.config()
    source = ctx.source
    pr, raw = await source.pull(number)  # uncached: the payload may be older than the PR
    owner, repo = source.owner, source.repo
    repo_key = f"{owner}/{repo}"
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
    reviews, pr_state = _stores(ctx.settings)
    target = PublishTarget(owner, repo, pr.number, pr.head.sha, f"https://github.com/{owner}/{repo}")
    publisher = Publisher(ctx.gh, target, PublishOptions.from_policy(policy))
    if not force:
        if pr_state.is_paused(repo_key, pr.number):
            ctx.log.info("skipping #%s: paused with /diffwise pause", pr.number)
            return None
        if reviews.was_reviewed(repo_key, pr.number, pr.head.sha) or await publisher.summary_covers(pr.head.sha):
            ctx.log.info("#%s at %s is already reviewed", pr.number, pr.head.sha[:12])
            return None
    await publisher.start_check()
    try:
        opened_at = _timestamp(raw.get("created_at"))
        return await _review_and_publish(ctx, pr, policy, publisher, reviews, pr_state, force, opened_at)
    except RetryLater:
        raise  # the job is rescheduled; the in-progress check run is picked up again by the next attempt
    except Exception as exc:
        await publisher.fail_check("diffwise could not finish this review", f"{type(exc).__name__}: {exc}")
        raise


async def verification_checkout(
    ctx: Context, policy: Any, pr: PullRequest, scratch: Path, notes: list[str]
) -> Path | None:
    """The head's files on disk when the policy opts in to running suggested tests (tests.verify), else None.

    Only then is PR code fetched to run; a failure to fetch it skips verification with a note, never the review.
    """
    if not wants_verification(policy):
        return None
    source = ctx.source
    try:
        return await fetch_github_checkout(ctx.gh, source.owner, source.repo, pr.head.sha, scratch)
    except CheckoutError as exc:
        ctx.log.warning("test verification skipped for #%s: %s", pr.number, exc)
        notes.append(f"Suggested tests were not run (tests.verify): {exc}.")
        return None


async def _review_and_publish(
    ctx: Context,
    pr: PullRequest,
    policy: Any,
    publisher: Publisher,
    reviews: Any,
    pr_state: Any,
    force: bool,
    opened_at: float | None,
) -> PublishResult:
    source = ctx.source
    owner, repo = source.owner, source.repo
    repo_key = f"{owner}/{repo}"
    files = await source.files(pr.number)
    included = getattr(policy, "path_included", None)
    contents, unreadable = await source.head_files(files.changeset, pr.head.sha, wanted=included)
    changeset = files.changeset.with_skipped(unreadable)
    notes: list[str] = []
    if files.truncated:
        notes.append(f"GitHub lists at most {files.listed} files; this PR changes more, the rest were not reviewed.")
    policy_errors, policy_notes_ = await policy_notes(ctx, publisher)
    notes += policy_notes_
    llm_paths, incremental_from = (None, None) if force else await incremental_scope(ctx, policy, reviews, pr)
    await publisher.progress("parse")

    from app.pipeline import ReviewInput, run_review  # heavy: analyzers and tree-sitter

    # Base versions feed test synthesis (modified-vs-added, the equivalence oracle) and the size findings'
    # baseline (a limit the base already broke is not reported): a few files at most, read on demand.
    max_functions = int(getattr(getattr(policy, "tests", None), "max_functions", 5) or 5)
    limit = 2 * max_functions + BASELINE_FILES
    base_reader = LazyReader(source, pr.base.sha, asyncio.get_running_loop(), limit=limit)
    with tempfile.TemporaryDirectory(prefix="diffwise-head-") as scratch:
        checkout = await verification_checkout(ctx, policy, pr, Path(scratch), notes)
        review = await run_review(
            ReviewInput(
                changeset=changeset,
                read_head=contents.get,
                read_base=base_reader,
                policy=policy,
                pr=pull_info(owner, repo, pr),
                llm=make_llm(ctx.settings, policy),
                llm_paths=llm_paths,
                checkout=checkout,
            )
        )
    await publisher.progress("analyze + LLM")
    review, demoted = apply_feedback(ctx.settings, repo_key, pr.number, policy, review, pr_state)
    check_failure = "invalid .github/diffwise.yml" if policy_errors else None
    from app.policy_loader import pending_policy_change

    result = await publisher.publish(
        changeset,
        review,
        incremental_from=incremental_from,
        pending_policy_change=pending_policy_change([f.path for f in changeset.files]),
        extra_notes=notes,
        check_failure=check_failure,
        demoted_rules=demoted,
        llm_paths=llm_paths,
    )
    if review.tests:
        await publish_tests(publisher, review)
    reviews.record(
        repo_key,
        pr.number,
        pr.head.sha,
        findings=len(review.findings),
        inline=len(result.inline),
        in_summary=len(result.in_summary),
        rejected=len(result.rejected),
        api_calls=result.api_calls,
        incremental_from=incremental_from,
        cost_usd=review.llm.cost_usd,
        posted_ids=[f.id for f in review.findings],  # everything that fires at this head (outcomes read it)
        opened_at=opened_at,
    )
    _observe(review, result)
    ctx.log.info(
        "reviewed #%s at %s: %d finding(s), %d inline, %d in summary, %d resolved, %d API calls",
        pr.number,
        pr.head.sha[:12],
        len(review.findings),
        len(result.inline),
        len(result.in_summary),
        len(result.resolved),
        result.api_calls,
    )
    return result


class LazyReader:
    """A sync file reader for analyzer threads that fetches base-version files on demand, once each."""

    def __init__(self, source: Any, ref: str, loop: asyncio.AbstractEventLoop, limit: int = 50) -> None:
        self._source = source
        self._ref = ref
        self._loop = loop
        self._cache: dict[str, str | None] = {}
        self._limit = limit  # base reads are a nicety (test oracles): never let them eat the rate limit

    def __call__(self, path: str) -> str | None:
        if path in self._cache:
            return self._cache[path]
        if len(self._cache) >= self._limit or not self._ref:
            return None
        try:
            future = asyncio.run_coroutine_threadsafe(self._source.read_text(path, self._ref), self._loop)
            text = future.result(timeout=30).text
        except Exception as exc:  # a base file we cannot read only weakens an oracle
            log.info("base version of %s unavailable: %s", path, exc)
            text = None
        self._cache[path] = text
        return text


async def incremental_scope(
    ctx: Context, policy: Any, reviews: Any, pr: PullRequest
) -> tuple[frozenset[str] | None, str | None]:
    """On a push, the files changed since the last reviewed head (compare API), unless history was rewritten."""
    if not getattr(getattr(policy, "review", None), "incremental", True) or ctx.action != "synchronize":
        return None, None
    last = reviews.last_reviewed(f"{ctx.source.owner}/{ctx.source.repo}", pr.number)
    if last is None or last.head_sha == pr.head.sha:
        return None, None
    url = f"/repos/{ctx.source.owner}/{ctx.source.repo}/compare/{last.head_sha}...{pr.head.sha}"
    try:
        compare = (await ctx.gh.arequest("GET", url)).json()
    except RetryLater:
        raise
    except Exception as exc:  # e.g. 404 after a force push dropped the old head: review everything
        ctx.log.info("compare %s...%s failed (%s); full review", last.head_sha[:7], pr.head.sha[:7], exc)
        return None, None
    if compare.get("status") not in ("ahead", "identical"):
        ctx.log.info("history rewritten since %s (%s); full review", last.head_sha[:7], compare.get("status"))
        return None, None
    return frozenset(str(f.get("filename")) for f in compare.get("files") or []), last.head_sha


def apply_feedback(
    settings: Any, repo_key: str, number: int, policy: Any, review: Review, pr_state: Any
) -> tuple[Review, list[str]]:
    """`/diffwise ignore` suppressions for this PR, and rules this repository keeps dismissing (demoted)."""
    suppressions = pr_state.suppressions(repo_key, number)
    findings = [f for f in review.findings if not suppressions.suppresses(f.id, f.rule)]
    suppressed = len(review.findings) - len(findings)
    demoted: list[str] = []
    from app.demotion import demote, demoted_for

    min_severity = getattr(getattr(policy, "comments", None), "min_severity", "medium")
    rates = demoted_for(pr_state.engine, repo_key, policy)
    if rates:
        findings, demoted = demote(findings, rates, Severity.parse(min_severity))
    notes = list(review.notes)
    if suppressed:
        notes.append(f"{suppressed} finding(s) suppressed on this PR with `/diffwise ignore`.")
    return replace(review, findings=tuple(findings), notes=tuple(notes)), demoted


async def publish_tests(publisher: Publisher, review: Review) -> None:
    from analyzers.testgen import TestSuggestions, render_tests_comment

    body = render_tests_comment(TestSuggestions(tuple(review.tests), ()))
    if TESTS_MARKER not in body:
        body = f"{TESTS_MARKER}\n{body}"
    await publisher.upsert_issue_comment(TESTS_MARKER, body)


async def policy_notes(ctx: Context, publisher: Publisher) -> tuple[list[Any], list[str]]:
    """The policy's errors, and summary notes about them; an invalid file also gets its one PR comment."""
    from app.policy_loader import POLICY_COMMENT_MARKER, format_issue, render_policy_comment

    result = await ctx.policy_result()
    errors = list(getattr(result, "errors", None) or [])
    notes: list[str] = []
    if errors:
        notes.append(f"The policy file has {len(errors)} error(s); those keys used their defaults.")
        notes += [format_issue(issue) for issue in errors[:10]]
        await publisher.upsert_issue_comment(POLICY_COMMENT_MARKER, render_policy_comment(errors))
    return errors, notes


def make_llm(settings: Any, policy: Any) -> Any:
    """The LLM reviewer for this job (it degrades to a note when no key is set or the policy turns it off)."""
    try:
        from app.llm_review import LLMReviewer
    except ImportError:
        return None
    return LLMReviewer.from_settings(settings, policy)


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        from datetime import datetime

        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _observe(review: Review, result: PublishResult) -> None:
    try:
        from app import metrics
    except ImportError:
        return
    observe = getattr(metrics, "observe_review", None)
    if callable(observe):
        observe(review)
    posted = getattr(metrics, "observe_publish", None)
    if callable(posted):
        posted(result)
