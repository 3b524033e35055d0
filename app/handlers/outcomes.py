"""On `pull_request.closed` (merged or not) and on demand: classify every finding diffwise posted on the PR."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from githubkit.exception import GraphQLFailed, RequestFailed

from app.db import database_url, get_engine
from app.outcome_store import OutcomeStore, iso_to_epoch
from app.outcomes import Classification, PostedFinding, PrHistory, Reaction, classify_history, threads
from app.pr_state import suppressions
from app.review_state import ReviewState
from app.routing import Router

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from app.context import Context

router = Router()

THREADS_QUERY = (
    "query($owner: String!, $name: String!, $number: Int!, $after: String) {"
    " repository(owner: $owner, name: $name) { pullRequest(number: $number) {"
    " reviewThreads(first: 100, after: $after) { pageInfo { hasNextPage endCursor }"
    " nodes { id isResolved comments(first: 1) { nodes { databaseId } } } } } } }"
)
MAX_THREAD_PAGES = 30
MAX_REACTION_PAGES = 10


@router.on("pull_request.closed")
async def classify_closed_pull_request(ctx: Context) -> None:
    pr = ctx.payload.pull_request
    if pr is None:
        return
    raw_pr = ctx.raw.get("pull_request")
    raw_pr = raw_pr if isinstance(raw_pr, dict) else {}
    results = await classify_pull(
        ctx,
        pr.number,
        head_sha=pr.head.sha or None,
        merged=bool(pr.merged),
        closed_at=iso_to_epoch(raw_pr.get("closed_at")),
        opened_at=iso_to_epoch(raw_pr["created_at"]) if raw_pr.get("created_at") else None,
    )
    ctx.log.info("classified %d finding(s) on closed #%s", len(results), pr.number)


def store_engine(settings: Any) -> Engine:
    return get_engine(
        database_url(getattr(settings, "state_dir", ".diffwise"), getattr(settings, "database_url", None))
    )


async def classify_pull(
    ctx: Context,
    number: int,
    *,
    head_sha: str | None = None,
    merged: bool = False,
    closed_at: float | None = None,
    opened_at: float | None = None,
    engine: Engine | None = None,
) -> list[Classification]:
    """Read the PR's history from GitHub and the store, classify each posted finding, store the outcomes.

    The closed-PR handler passes `closed_at`; called on demand for an open PR, the outcomes so far are stored
    (and replaced when it closes) but no closure is.
    """
    engine = engine or store_engine(ctx.settings)
    history = await read_history(ctx, number, engine, head_sha)
    results = classify_history(history)
    full_name = "{owner}/{repo}".format(**ctx.repo())
    OutcomeStore(engine).record_outcomes(
        full_name,
        number,
        results,
        merged=merged,
        closed_at=closed_at,
        opened_at=opened_at,
        first_review_at=await first_bot_review(ctx, number),
    )
    return results


async def first_bot_review(ctx: Context, number: int) -> float | None:
    """When diffwise first reviewed the PR on GitHub (its earliest submitted review), for time-to-first-review."""
    times = [
        iso_to_epoch(str(item["submitted_at"]))
        for item in await ctx.source.reviews(number)
        if item.get("submitted_at") and _ours(item)
    ]
    return min(times) if times else None


def _ours(review: dict[str, Any]) -> bool:
    user = review.get("user") or {}
    login = str(user.get("login", ""))
    is_bot = user.get("type") == "Bot" or login.endswith("[bot]")
    return is_bot and ("diffwise" in login or "diffwise" in str(review.get("body") or ""))


async def read_history(ctx: Context, number: int, engine: Engine, head_sha: str | None = None) -> PrHistory:
    full_name = ctx.repo_name()
    findings, replies = threads(await ctx.source.review_comments(number))
    if not findings:
        return PrHistory(findings=())
    if head_sha is None:
        pr, _raw = await ctx.source.pull(number)
        head_sha = pr.head.sha
    reactions = {f.comment_id: await _reactions(ctx, f.comment_id) for f in findings}
    ignored = suppressions(engine, full_name, number)
    last = ReviewState(engine).last_reviewed(full_name, number)
    firing = frozenset(last.posted_ids) if last is not None else None
    before, final = await _texts(ctx, findings, head_sha)
    return PrHistory(
        findings=tuple(findings),
        replies=replies,
        reactions=reactions,
        resolved=await _resolved_threads(ctx, number),
        ignored_ids=ignored.finding_ids,
        ignored_rules=ignored.rules,
        firing=firing,
        texts_before=before,
        texts_final=final,
    )


async def _reactions(ctx: Context, comment_id: int) -> tuple[Reaction, ...]:
    """Reactions have no webhooks: read them when the PR closes."""
    url = "/repos/{owner}/{repo}/pulls/comments/{cid}/reactions".format(**ctx.repo(), cid=comment_id)
    out: list[Reaction] = []
    for page in range(1, MAX_REACTION_PAGES + 1):
        try:
            response = await ctx.gh.arequest("GET", url, params={"per_page": 100, "page": page})
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                break
            raise
        chunk = response.json() or []
        for item in chunk:
            user = item.get("user") or {}
            login = str(user.get("login") or "")
            out.append(Reaction(str(item.get("content")), login, user.get("type") == "Bot" or login.endswith("[bot]")))
        if len(chunk) < 100:
            break
    return tuple(out)


async def _resolved_threads(ctx: Context, number: int) -> frozenset[int]:
    """Root comment ids of resolved review threads (GraphQL only); unknown → none resolved."""
    r = ctx.repo()
    resolved: set[int] = set()
    after: str | None = None
    for _ in range(MAX_THREAD_PAGES):
        try:
            data = await ctx.gh.async_graphql(
                THREADS_QUERY, {"owner": r["owner"], "name": r["repo"], "number": number, "after": after}
            )
        except GraphQLFailed as exc:
            ctx.log.warning("could not read review threads of #%s: %s", number, exc)
            break
        threads_page = data["repository"]["pullRequest"]["reviewThreads"]
        for node in threads_page["nodes"]:
            first = node["comments"]["nodes"]
            if first and node.get("isResolved"):
                resolved.add(int(first[0]["databaseId"]))
        if not threads_page["pageInfo"]["hasNextPage"]:
            break
        after = threads_page["pageInfo"]["endCursor"]
    return frozenset(resolved)


async def _texts(
    ctx: Context, findings: list[PostedFinding], head_sha: str
) -> tuple[dict[tuple[str, str], str | None], dict[str, str | None]]:
    """File texts where each finding was posted and at the final head (one read per path and commit)."""
    before: dict[tuple[str, str], str | None] = {}
    final: dict[str, str | None] = {}
    for f in findings:
        if not f.path:
            continue
        if f.commit_id and (f.path, f.commit_id) not in before:
            before[(f.path, f.commit_id)] = (await ctx.source.read_text(f.path, f.commit_id)).text
        if f.path not in final:
            final[f.path] = (await ctx.source.read_text(f.path, head_sha)).text
    return before, final
