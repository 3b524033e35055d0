"""What each slash command does, once the handler has acknowledged it and checked the policy and permission."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from app import commands as text
from app.commands import Command
from app.handlers.command_findings import find_finding, offline_explanation
from app.pr_state import PrState

if TYPE_CHECKING:
    from app.context import Context
    from app.handlers.commands import Replier, Services

WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


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
        return self.ctx.repo_name()


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


RUNNERS: dict[str, Runner] = {
    "config": _config,
    "review": _review,
    "tests": _tests,
    "explain": _explain,
    "ask": _ask,
    "ignore": _ignore,
    "pause": _pause,
    "resume": _pause,
}
