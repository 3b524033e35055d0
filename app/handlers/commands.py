"""Slash commands in PR comments and review-thread replies: acknowledge, check permission and limits, run, reply."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app import commands as text
from app.commands import Command, parse_command
from app.errors import RetryLater
from app.handlers.command_findings import FindingRef
from app.handlers.command_runners import RUNNERS, WRITE_PERMISSIONS, Call
from app.handlers.command_services import (
    commit_suggested_tests,
    llm_ask,
    llm_configured,
    llm_explain,
    optional_attribute,
    suggest_tests,
)
from app.pr_state import PrState
from app.routing import Router

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from app.context import Context
    from app.events import Comment
    from app.settings import Settings

DEFAULT_SLUG = "diffwise"

Rereviewer = Callable[["Context", int], Awaitable[None]]
Explainer = Callable[["Context", FindingRef], Awaitable[str | None]]
Asker = Callable[["Context", int, str], Awaitable[str | None]]
TestSuggester = Callable[["Context", int, Command, Any], Awaitable[str]]
TestCommitter = Callable[["Context", int, Command, Any], Awaitable[tuple[bool, str]]]  # (done, reply)


def _default_engine(settings: Settings) -> Engine:
    from app.db import database_url, get_engine

    return get_engine(database_url(settings.state_dir, getattr(settings, "database_url", None)))


@dataclass(frozen=True)
class Services:
    """What commands call into; None means the capability is not available on this server."""

    rereview: Rereviewer | None = None
    explain: Explainer | None = None
    ask: Asker | None = None
    tests: TestSuggester | None = None
    commit_tests: TestCommitter | None = None
    engine_for: Callable[[Settings], Engine] = field(default=_default_engine)
    clock: Callable[[], float] | None = None
    llm_available: Callable[[Settings], bool] = field(default=lambda _settings: True)


def discover_services() -> Services:
    """The implementations present in this installation (other features may not be built yet)."""
    has_llm = all(optional_attribute("app.llm_review", name) is not None for name in ("explain", "ask"))
    has_testgen = optional_attribute("analyzers.testgen", "synthesize_tests") is not None
    return Services(
        rereview=optional_attribute("app.handlers.review", "rereview_pull_request"),
        explain=llm_explain if has_llm else None,
        ask=llm_ask if has_llm else None,
        tests=suggest_tests if has_testgen else None,
        commit_tests=commit_suggested_tests if has_testgen else None,
        llm_available=llm_configured,
    )


def make_router(services: Services | None = None) -> Router:
    """The commands router; tests pass their own services, production discovers them per delivery."""
    router = Router()

    @router.on("issue_comment.created", "pull_request_review_comment.created")
    async def run_command(ctx: Context) -> None:
        await handle_comment(ctx, services or discover_services())

    return router


# -- talking back ----------------------------------------------------------------------------------------


@dataclass
class Replier:
    """Reactions and replies in the place the command was written (conversation or review thread)."""

    ctx: Context
    number: int
    comment: Comment
    in_review_thread: bool

    @property
    def _base(self) -> str:
        return f"/repos/{self.ctx.repo_name()}"

    async def react(self, content: str) -> None:
        kind = "pulls" if self.in_review_thread else "issues"
        url = f"{self._base}/{kind}/comments/{self.comment.id}/reactions"
        try:
            await self.ctx.gh.arequest("POST", url, json={"content": content})
        except RetryLater:
            raise
        except Exception as exc:  # a reaction is a courtesy; never fail the command over it
            self.ctx.log.warning("reaction %s on comment %s failed: %s", content, self.comment.id, exc)

    async def reply(self, body: str) -> None:
        if self.in_review_thread:
            # `in_reply_to` on the comments endpoint: the /replies endpoint refuses installation tokens.
            url = f"{self._base}/pulls/{self.number}/comments"
            payload: dict[str, Any] = {"body": body, "in_reply_to": self.comment.id}
        else:
            url = f"{self._base}/issues/{self.number}/comments"
            payload = {"body": body}
        await self.ctx.gh.arequest("POST", url, json=payload)


# -- the handler -----------------------------------------------------------------------------------------


def app_slug(ctx: Context) -> str:
    return str(getattr(ctx.settings, "app_slug", None) or DEFAULT_SLUG)


def _is_own_text(body: str) -> bool:
    return "<!-- diffwise:" in body


async def handle_comment(ctx: Context, services: Services) -> None:
    comment = ctx.payload.comment
    number = ctx.payload.pull_number
    if comment is None or number is None or ctx.action != "created":
        return
    body = comment.body or ""
    # Never answer a bot (this App included) or a comment that carries one of our markers.
    if ctx.is_bot or comment.user.is_bot or _is_own_text(body):
        return
    in_thread = ctx.name == "pull_request_review_comment"
    command = parse_command(body, app_slug(ctx))
    if command is None:
        if in_thread and comment.in_reply_to_id is not None and _bare_explain(body):
            command = Command("explain")
        else:
            return
    replier = Replier(ctx, number, comment, in_thread)
    state = PrState(services.engine_for(ctx.settings))
    repo_name = ctx.repo_name()
    if not await asyncio.to_thread(state.claim_command, repo_name, comment.id):
        ctx.log.info("command in comment %s was already handled", comment.id)
        return
    await replier.react("eyes")
    try:
        ok = await execute(ctx, services, command, replier)
    except RetryLater:
        await asyncio.to_thread(state.release_command, repo_name, comment.id)
        raise
    except Exception as exc:
        ctx.log.error("command %s on #%s failed: %s", command.name, number, exc, exc_info=exc)
        await replier.reply(text.failed_text())
        await replier.react("confused")
        return
    await replier.react("rocket" if ok else "confused")


def _bare_explain(body: str) -> bool:
    return body.strip().lower().rstrip("?!. ") == "explain"


async def execute(ctx: Context, services: Services, command: Command, replier: Replier) -> bool:
    """Run one parsed command; True when it did what was asked."""
    policy = await ctx.config()
    settings = policy.commands
    login = replier.comment.user.login or (ctx.payload.sender.login if ctx.payload.sender else "")
    if not settings.enabled:
        await replier.reply(text.disabled_text())
        return False
    if command.name == "help":
        await replier.reply(text.help_text(app_slug(ctx), command.unknown))
        return command.unknown is None
    # Permission before arguments: someone who may not run a command is told so, not how to spell it.
    if policy.command_needs_write(command.name):
        permission = await ctx.source.permission(login)
        if permission not in WRITE_PERMISSIONS:
            shown = "tests commit" if command.commit else command.name
            await replier.reply(text.denied_text(login, shown, permission))
            return False
    if command.problem is not None:
        await replier.reply(text.problem_text(command))
        return False
    return await RUNNERS[command.name](Call(ctx, services, command, replier, policy, login))


router = make_router()

__all__ = [
    "WRITE_PERMISSIONS",
    "FindingRef",
    "Services",
    "commit_suggested_tests",
    "discover_services",
    "make_router",
    "router",
    "suggest_tests",
]
