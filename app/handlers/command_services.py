"""The commands' default services: test suggestions and commits (analyzers.testgen), explain and ask (the LLM)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from app import commands as text
from app.commands import Command
from app.handlers.command_findings import finding_of

if TYPE_CHECKING:
    from app.context import Context
    from app.handlers.command_findings import FindingRef
    from app.settings import Settings


def optional_attribute(module: str, name: str) -> Any:
    """`module.name`, or None when the module or the name is not there (a feature not built into this install)."""
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def llm_configured(settings: Settings) -> bool:
    """Whether these settings reach an LLM (a key is set)."""
    config = optional_attribute("app.llm", "LLMConfig")
    return bool(config is not None and config.from_settings(settings).configured)


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
    if not (policy.tests.enabled and policy.llm.enabled and llm_configured(ctx.settings)):
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
        repo=ctx.repo_name(),
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
        repo=ctx.repo_name(),
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
        repo=ctx.repo_name(),
        pr_number=number,
        head_sha=view.head_sha,
    )
    return answer.text if answer.ok else None
