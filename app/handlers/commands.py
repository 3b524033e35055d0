"""Slash commands in PR comments and review-thread replies: acknowledge, check permission and limits, run, reply."""

from __future__ import annotations

import asyncio
import importlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from app import commands as text
from app.commands import Command, parse_command
from app.errors import RetryLater
from app.pr_state import PrState
from app.routing import Router

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from app.context import Context
    from app.events import Comment
    from app.settings import Settings

WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
DEFAULT_SLUG = "diffwise"
_MARKER = re.compile(r"<!-- diffwise:finding:([0-9a-f]{8,64}) -->")


@dataclass(frozen=True)
class FindingRef:
    """A finding the bot posted, as found in its comment on the pull request."""

    finding_id: str
    body: str  # the bot's comment that carries the finding's marker
    path: str | None = None
    line: int | None = None
    rule: str | None = None


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


def _optional(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def _llm_configured(settings: Settings) -> bool:
    config = _optional("app.llm", "LLMConfig")
    return bool(config is not None and config.from_settings(settings).configured)


def discover_services() -> Services:
    """The implementations present in this installation (other features may not be built yet)."""
    has_llm = _optional("app.llm_review", "explain") is not None and _optional("app.llm_review", "ask") is not None
    has_testgen = _optional("analyzers.testgen", "synthesize_tests") is not None
    return Services(
        rereview=_optional("app.handlers.review", "rereview_pull_request"),
        explain=llm_explain if has_llm else None,
        ask=llm_ask if has_llm else None,
        tests=suggest_tests if has_testgen else None,
        commit_tests=commit_suggested_tests if has_testgen else None,
        llm_available=_llm_configured,
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
        r = self.ctx.repo()
        return f"/repos/{r['owner']}/{r['repo']}"

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
    repo_name = f"{ctx.repo()['owner']}/{ctx.repo()['repo']}"
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
    if command.problem is not None:
        await replier.reply(text.problem_text(command))
        return False
    if command.name == "help":
        await replier.reply(text.help_text(app_slug(ctx), command.unknown))
        return command.unknown is None
    if policy.command_needs_write(command.name):
        permission = await ctx.source.permission(login)
        if permission not in WRITE_PERMISSIONS:
            shown = "tests commit" if command.commit else command.name
            await replier.reply(text.denied_text(login, shown, permission))
            return False
    return await _RUNNERS[command.name](Call(ctx, services, command, replier, policy, login))


@dataclass(frozen=True)
class Call:
    """One command being run: who asked, where, under which policy."""

    ctx: Context
    services: Services
    command: Command
    replier: Replier
    policy: Any
    login: str

    @property
    def number(self) -> int:
        return self.replier.number

    @property
    def repo_name(self) -> str:
        r = self.ctx.repo()
        return f"{r['owner']}/{r['repo']}"


Runner = Callable[[Call], Awaitable[bool]]


async def _rate_limited(call: Call) -> bool:
    """Count one LLM command; on refusal reply politely and return True."""
    from app.ratelimit import Limits, RateLimiter

    engine = call.services.engine_for(call.ctx.settings)
    clock = call.services.clock
    limiter = RateLimiter(engine, clock) if clock is not None else RateLimiter(engine)
    limits = Limits.from_hourly(call.policy.commands.llm_rate_limit_per_hour)
    decision = await asyncio.to_thread(limiter.acquire, call.login, call.repo_name, call.number, limits)
    if decision.allowed:
        return False
    per_user = decision.scope.startswith("user:")
    await call.replier.reply(text.rate_limited_text(call.login, decision.retry_after, per_user))
    return True


async def _config(call: Call) -> bool:
    from app.policy import leaf_paths
    from app.policy_loader import format_issue, pending_policy_change

    result = await call.ctx.policy_result()
    files = await call.ctx.source.files(call.number)
    pending = pending_policy_change(f.path for f in files.changeset.files)
    if result is None:
        data = call.policy.to_data()
        sources = {".".join(p): "default" for p in leaf_paths(data)}
        await call.replier.reply(text.config_text(data, sources, pending=pending))
        return True
    errors = [format_issue(e) for e in result.errors]
    await call.replier.reply(text.config_text(result.policy.to_data(), result.sources, errors, pending))
    return True


async def _review(call: Call) -> bool:
    rereview = call.services.rereview
    if rereview is None:
        await call.replier.reply(text.unavailable_text("an on-demand re-review"))
        return False
    # Say so first: a full review (LLM included) can take a minute.
    await call.replier.reply(text.review_queued_text(None))
    await rereview(call.ctx, call.number)
    return True


async def _tests(call: Call) -> bool:
    if call.command.commit:
        return await _tests_commit(call)
    suggest = call.services.tests
    if suggest is None:
        await call.replier.reply(text.unavailable_text("test synthesis"))
        return False
    if not call.policy.tests.enabled:
        await call.replier.reply(text.unavailable_text("test synthesis (`tests.enabled: false` in the policy)"))
        return False
    if await _rate_limited(call):
        return False
    await call.replier.reply(await suggest(call.ctx, call.number, call.command, call.policy))
    return True


async def _tests_commit(call: Call) -> bool:
    """Pushing to the branch changes the repository: write access is needed whatever the policy opens up."""
    committer = call.services.commit_tests
    if committer is None:
        await call.replier.reply(text.unavailable_text("committing suggested tests"))
        return False
    if not call.policy.tests.enabled:
        await call.replier.reply(text.unavailable_text("test synthesis (`tests.enabled: false` in the policy)"))
        return False
    if not call.policy.command_needs_write("tests"):  # else execute() has checked it already
        permission = await call.ctx.source.permission(call.login)
        if permission not in WRITE_PERMISSIONS:
            await call.replier.reply(text.denied_text(call.login, "tests commit", permission))
            return False
    if await _rate_limited(call):
        return False
    done, reply = await committer(call.ctx, call.number, call.command, call.policy)
    await call.replier.reply(reply)
    return done


async def _explain(call: Call) -> bool:
    finding_id = call.command.finding_id
    finding = await find_finding(call.ctx, call.replier, finding_id)
    if finding is None:
        reply = text.explain_needs_id_text() if finding_id is None else text.unknown_finding_text(finding_id)
        await call.replier.reply(reply)
        return False
    answer: str | None = None
    explain = call.services.explain
    if explain is not None and call.policy.llm.enabled and call.services.llm_available(call.ctx.settings):
        if await _rate_limited(call):
            return False
        answer = await explain(call.ctx, finding)
    await call.replier.reply(text.answer_text(answer) if answer else offline_explanation(finding))
    return True


async def _ask(call: Call) -> bool:
    ask = call.services.ask
    if ask is None or not call.policy.llm.enabled or not call.services.llm_available(call.ctx.settings):
        await call.replier.reply(text.unavailable_text("answering questions (no LLM is configured)"))
        return False
    if await _rate_limited(call):
        return False
    answer = await ask(call.ctx, call.number, call.command.question or "")
    if not answer:
        await call.replier.reply(text.unavailable_text("an answer"))
        return False
    await call.replier.reply(text.answer_text(answer))
    return True


async def _ignore(call: Call) -> bool:
    command = call.command
    rule_of_finding: str | None = None
    if command.rule is None:
        # A finding id (or, in a finding's thread, none): find the finding to know its rule.
        finding = await find_finding(call.ctx, call.replier, command.finding_id)
        if finding is None and command.finding_id is None:
            await call.replier.reply(text.ignore_needs_target_text())
            return False
        if finding is not None:
            command = replace(command, finding_id=finding.finding_id)
            rule_of_finding = finding.rule
    kind = command.ignore_kind or "finding"
    target = (command.rule if kind == "rule" else command.finding_id) or ""
    state = PrState(call.services.engine_for(call.ctx.settings))
    await asyncio.to_thread(state.suppress, call.repo_name, call.number, kind, target, call.login)
    if command.repo_wide:
        await call.replier.reply(text.ignore_repo_text(command, rule_of_finding))
    else:
        await call.replier.reply(text.ignored_text(command))
    return True


async def _pause(call: Call) -> bool:
    state = PrState(call.services.engine_for(call.ctx.settings))
    paused = call.command.name == "pause"
    already = await asyncio.to_thread(state.set_paused, call.repo_name, call.number, paused, call.login)
    await call.replier.reply(text.paused_text(already) if paused else text.resumed_text(already))
    return True


_RUNNERS: dict[str, Runner] = {
    "config": _config,
    "review": _review,
    "tests": _tests,
    "explain": _explain,
    "ask": _ask,
    "ignore": _ignore,
    "pause": _pause,
    "resume": _pause,
}


# -- findings --------------------------------------------------------------------------------------------


async def find_finding(ctx: Context, replier: Replier, finding_id: str | None) -> FindingRef | None:
    """The bot's comment for `finding_id` (a unique prefix is enough), or the finding of the current thread."""
    comments = await ctx.source.review_comments(replier.number)
    mine = [c for c in comments if _by_bot(c) and _MARKER.search(c.get("body") or "")]
    if finding_id is None:
        if not replier.in_review_thread or replier.comment.in_reply_to_id is None:
            return None
        root = next((c for c in mine if c.get("id") == replier.comment.in_reply_to_id), None)
        return _ref(root, None) if root is not None else None
    for c in mine:
        ids = _MARKER.findall(c.get("body") or "")
        match = next((i for i in ids if i.startswith(finding_id)), None)
        if match is not None:
            return _ref(c, match)
    return None


def _by_bot(comment: dict[str, Any]) -> bool:
    user = comment.get("user") or {}
    return user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]")


_RULE = re.compile(r"`([a-z0-9][a-z0-9_.-]*/[a-z0-9][a-z0-9_./-]*)`")


def _ref(comment: dict[str, Any], finding_id: str | None) -> FindingRef:
    body = str(comment.get("body") or "")
    fid = finding_id or _MARKER.findall(body)[0]
    rule = _RULE.search(body)
    return FindingRef(fid, body, comment.get("path"), comment.get("line"), rule.group(1) if rule else None)


def offline_explanation(finding: FindingRef) -> str:
    """Without an LLM: the finding's own text (rule, message, fix, CWE link), restated in the thread."""
    where = f" at `{finding.path}:{finding.line}`" if finding.path and finding.line else ""
    rule = f" (rule `{finding.rule}`)" if finding.rule else ""
    details = _MARKER.sub("", finding.body).strip()
    quoted = "\n".join(f"> {line}" if line else ">" for line in details.splitlines())
    return text.answer_text(
        f"Finding `{finding.finding_id}`{rule}{where}:\n\n{quoted}\n\n"
        "_An AI explanation is not available on this server; this is the rule's own description._"
    )


# -- test suggestions (deterministic synthesis from analyzers.testgen) ----------------------------------


async def suggest_tests(ctx: Context, number: int, command: Command, policy: Any) -> str:
    from analyzers.testgen import render_tests_comment

    view = await _pull_view(ctx, number, command.path)
    if command.path is not None and not view.changeset.files:
        return _not_changed(command.path)
    return render_tests_comment(await _synthesize(ctx, view, number, command, policy))


def _not_changed(path: str) -> str:
    return text.answer_text(f"`{path}` is not changed in this pull request.")


async def _synthesize(ctx: Context, view: _PullView, number: int, command: Command, policy: Any) -> Any:
    """TestSuggestions for the head in `view`; with the LLM writer when a key is set and the policy allows."""
    from analyzers.testgen import TestRequest, TestTarget, synthesize_tests

    only = (TestTarget(command.path, command.function),) if command.path and command.function else ()
    request = TestRequest(
        changeset=view.changeset,
        read_head=view.read_head,
        syntax=view.syntax,
        max_functions=policy.tests.max_functions,
        max_examples=policy.tests.max_examples,
        only=only,
        writer=_test_writer(ctx, view, number, policy),
    )
    return await asyncio.to_thread(synthesize_tests, request)


def _test_writer(ctx: Context, view: _PullView, number: int, policy: Any) -> Any:
    if not (policy.tests.enabled and policy.llm.enabled and _llm_configured(ctx.settings)):
        return None
    try:
        from app.testgen_llm import LLMTestWriter
    except ImportError:
        return None
    return LLMTestWriter.from_settings(
        ctx.settings,
        policy,
        changeset=view.changeset,
        read_head=view.read_head,
        repo=f"{ctx.repo()['owner']}/{ctx.repo()['repo']}",
        pr_number=number,
        head_sha=view.head_sha,
    )


async def commit_suggested_tests(ctx: Context, number: int, command: Command, policy: Any) -> tuple[bool, str]:
    """`/diffwise tests commit`: synthesize for the current head and push the files as one commit."""
    from analyzers.testgen import default_run_command
    from app.tests_commit import commit_tests, head_branch

    view = await _pull_view(ctx, number, command.path)
    head = head_branch(view.raw)
    if head is None:
        return False, text.commit_gone_text()
    if view.raw.get("state", "open") != "open":
        return False, text.commit_closed_text()
    if not head.writable:
        return False, text.commit_fork_text()
    if command.path is not None and not view.changeset.files:
        return False, _not_changed(command.path)
    suggestions = await _synthesize(ctx, view, number, command, policy)

    async def read(path: str) -> bytes | None:
        return await ctx.source.read_bytes(path, head.sha, owner=head.owner, repo=head.repo)

    login = command_login(ctx)
    result = await commit_tests(ctx.gh, head, suggestions.tests, read, login)
    if result.status == "committed":
        by_path = {t.path: t for t in suggestions.tests}
        written = [replace(by_path[f.suggested], path=f.path) for f in result.files]
        paths = [f.path for f in result.files]
        run = default_run_command(written)
        return True, text.commit_done_text(result.branch, result.sha, paths, run, result.detail)
    replies = {
        "unchanged": lambda: text.commit_unchanged_text(result.branch),
        "nothing": lambda: text.commit_nothing_text(result.detail),
        "fork": text.commit_fork_text,
        "gone": text.commit_gone_text,
        "moved": lambda: text.commit_moved_text(result.branch),
        "no-permission": text.commit_no_access_text,
    }
    return result.status == "unchanged", replies[result.status]()


def command_login(ctx: Context) -> str:
    comment = ctx.payload.comment
    login = comment.user.login if comment is not None else None
    return str(login or (ctx.payload.sender.login if ctx.payload.sender else ""))


# -- the LLM (app.llm_review) behind explain and ask ----------------------------------------------------


@dataclass(frozen=True)
class _PullView:
    title: str
    head_sha: str
    changeset: Any
    read_head: Callable[[str], str | None]
    syntax: Any
    raw: dict[str, Any] = field(default_factory=dict)  # the pull request's JSON as GitHub sent it


async def _pull_view(ctx: Context, number: int, only_path: str | None = None) -> _PullView:
    from analyzers.diff import ChangeSet

    pr, raw = await ctx.source.pull(number)
    changeset = (await ctx.source.files(number)).changeset
    if only_path is not None:
        changeset = ChangeSet(tuple(f for f in changeset.files if f.path == only_path), changeset.skipped)
    contents, _skipped = await ctx.source.head_files(changeset, pr.head.sha)
    syntax = None
    try:
        from analyzers.syntax import build_syntax_map

        syntax = await asyncio.to_thread(build_syntax_map, changeset, contents.get)
    except Exception as exc:  # the LLM context works without symbols, only less precisely
        ctx.log.info("no syntax map: %s", exc)
    return _PullView(pr.title, pr.head.sha, changeset, contents.get, syntax, raw)


def finding_of(ref: FindingRef) -> Any:
    """A Finding rebuilt from the bot's comment, enough for the explain prompt."""
    from analyzers.base import Confidence, Finding, Severity

    severity = next((s for s in Severity if f"{s.name.title()}**" in ref.body), Severity.MEDIUM)
    message = _MARKER.sub("", ref.body).strip()
    rule = ref.rule or "unknown/finding"
    line = ref.line or 1
    return Finding(
        rule=rule,
        analyzer=rule.split("/", 1)[0],
        severity=severity,
        confidence=Confidence.MEDIUM,
        message=message,
        path=ref.path or "",
        start_line=line,
        end_line=line,
    )


async def llm_explain(ctx: Context, ref: FindingRef) -> str | None:
    from app.llm_review import explain

    number = ctx.payload.pull_number
    if number is None:
        return None
    view = await _pull_view(ctx, number, ref.path)
    policy = await ctx.config()
    answer = await explain(
        finding_of(ref),
        changeset=view.changeset,
        read_head=view.read_head,
        syntax=view.syntax,
        settings=ctx.settings,
        policy=policy,
        repo=f"{ctx.repo()['owner']}/{ctx.repo()['repo']}",
        pr_number=number,
        head_sha=view.head_sha,
    )
    return answer.text if answer.ok else None


async def llm_ask(ctx: Context, number: int, question: str) -> str | None:
    from app.llm_review import ask

    view = await _pull_view(ctx, number)
    policy = await ctx.config()
    answer = await ask(
        question,
        changeset=view.changeset,
        read_head=view.read_head,
        syntax=view.syntax,
        pr_title=view.title,
        settings=ctx.settings,
        policy=policy,
        repo=f"{ctx.repo()['owner']}/{ctx.repo()['repo']}",
        pr_number=number,
        head_sha=view.head_sha,
    )
    return answer.text if answer.ok else None


router = make_router()

__all__ = ["FindingRef", "Services", "discover_services", "make_router", "router"]
