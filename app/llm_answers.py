"""`/diffwise explain` and `/diffwise ask`: one streamed, fenced, audited LLM call each, never raising."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from analyzers.base import Finding
from analyzers.diff import ChangeSet
from app import prompts
from app.audit import AuditEntry, AuditLog
from app.llm import LLMClient, LLMUnavailable
from app.llm_context import FileContext, build_file_contexts, choose_boundary, estimate_tokens, fence, redactor
from app.llm_findings import clean_model_text
from app.llm_prompt import EPHEMERAL
from app.llm_usage import LLMUsage

if TYPE_CHECKING:
    from app.llm_plan import Budget
    from app.llm_review import LLMReviewer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LLMAnswer:
    text: str = ""
    usage: LLMUsage = field(default_factory=LLMUsage)
    notes: list[str] = field(default_factory=list)
    prompt_version: str = ""

    @property
    def ok(self) -> bool:
        return self.usage.calls > 0 and bool(self.text)


@dataclass(frozen=True)
class _Ctx:
    repo: str = ""
    pr_number: int | None = None
    head_sha: str = ""


class LLMAnswering:
    """The reviewer's `explain` and `ask` (LLMReviewer inherits them): its client, budget, audit and secrets."""

    client: LLMClient | None
    budget: Budget
    audit: AuditLog | None
    disabled_reason: str
    _known_secrets: list[str]
    _salt: bytes | None

    async def explain(
        self,
        finding: Finding,
        changeset: ChangeSet | None,
        read_head: Callable[[str], str | None] | None,
        syntax: Any,
        ctx: _Ctx,
    ) -> LLMAnswer:
        redact = redactor(self._known_secrets)
        described = redact(
            f"{finding.rule} ({finding.severity.label}) at {finding.path}:{finding.start_line}-{finding.end_line}\n"
            f"{finding.title}\n\n{finding.message}"
        )
        code = ""
        changed = changeset.get(finding.path) if changeset is not None else None
        if changed is not None and changed.hunks:
            from app.llm_context import render_file

            code = render_file(changed, syntax=syntax, read_head=read_head)[0]
        elif read_head is not None and (source := read_head(finding.path)) is not None:
            code = _numbered_excerpt(source, finding.start_line, finding.end_line)
        code = redact(code) or "(not available)"
        boundary = choose_boundary([described, code], self._salt, f"explain:{finding.id}")
        values = {
            "boundary": boundary,
            "finding": fence(described, boundary, "finding"),
            "code": fence(code, boundary, "code"),
        }
        return await _answer(self, "explain", "explain.system", "explain.user", values, ctx, 1)

    async def ask(
        self,
        question: str,
        changeset: ChangeSet,
        read_head: Callable[[str], str | None] | None,
        syntax: Any,
        pr_title: str,
        ctx: _Ctx,
    ) -> LLMAnswer:
        redact = redactor(self._known_secrets)
        contexts = build_file_contexts(changeset, syntax=syntax, read_head=read_head, redact=redact)
        room = self.budget.per_call_tokens - 1_000 - estimate_tokens(question)
        chosen: list[FileContext] = []
        for c in sorted(contexts, key=lambda c: (-c.risk, c.path)):
            if c.tokens <= room:
                chosen.append(c)
                room -= c.tokens
        files = "\n".join(c.text for c in sorted(chosen, key=lambda c: c.path)) or "(no reviewable changes)"
        if len(chosen) < len(contexts):
            files += f"\n({len(contexts) - len(chosen)} more changed files not shown: over the budget)"
        title = redact(pr_title.strip()) or "(no title)"
        q = redact(question.strip()[:4_000]) or "(empty question)"
        boundary = choose_boundary([files, title, q], None)
        values = {
            "boundary": boundary,
            "pr_title": fence(title, boundary, "pr-title"),
            "files": fence(files, boundary, "diff"),
            "question": fence(q, boundary, "question"),
        }
        return await _answer(self, "ask", "ask.system", "ask.user", values, ctx, len(chosen))

    def _audit_call(
        self,
        kind: str,
        version: str,
        ctx: _Ctx,
        files: int,
        started: float,
        usage: LLMUsage,
        *,
        outcome: str,
        error: str = "",
    ) -> None:
        if self.audit is None or self.client is None:
            return
        self.audit.record(
            AuditEntry.of_call(
                kind,
                version,
                self.client.model,
                usage,
                started,
                repo=ctx.repo,
                pr_number=ctx.pr_number,
                head_sha=ctx.head_sha,
                files=files,
                outcome=outcome,
                error=error,
            )
        )


async def explain(
    finding: Finding,
    *,
    changeset: ChangeSet | None = None,
    read_head: Callable[[str], str | None] | None = None,
    syntax: Any = None,
    settings: Any = None,
    policy: Any = None,
    repo: str = "",
    pr_number: int | None = None,
    head_sha: str = "",
    reviewer: LLMReviewer | None = None,
) -> LLMAnswer:
    """`/diffwise explain <finding>`: a short explanation of one finding in its code. Never raises."""
    from app.llm_review import LLMReviewer

    r = reviewer or LLMReviewer.from_settings(settings, policy)
    return await r.explain(finding, changeset, read_head, syntax, _Ctx(repo, pr_number, head_sha))


async def ask(
    question: str,
    *,
    changeset: ChangeSet,
    read_head: Callable[[str], str | None] | None = None,
    syntax: Any = None,
    pr_title: str = "",
    settings: Any = None,
    policy: Any = None,
    repo: str = "",
    pr_number: int | None = None,
    head_sha: str = "",
    reviewer: LLMReviewer | None = None,
) -> LLMAnswer:
    """`/diffwise ask <question>`: an answer about the change, within one call's budget. Never raises."""
    from app.llm_review import LLMReviewer

    r = reviewer or LLMReviewer.from_settings(settings, policy)
    return await r.ask(question, changeset, read_head, syntax, pr_title, _Ctx(repo, pr_number, head_sha))


def _numbered_excerpt(text: str, start: int, end: int, pad: int = 15) -> str:
    lines = text.splitlines()
    lo, hi = max(1, start - pad), min(len(lines), end + pad)
    return "\n".join(f"{n:>5}   {lines[n - 1]}" for n in range(lo, hi + 1))


async def _answer(
    r: LLMAnswering, kind: str, system_name: str, user_name: str, values: dict[str, str], ctx: _Ctx, files: int
) -> LLMAnswer:
    version = prompts.versions(system_name, user_name)
    if r.client is None:
        return LLMAnswer(notes=[r.disabled_reason], prompt_version=version)
    redact = redactor(r._known_secrets)
    started = time.monotonic()
    usage = LLMUsage()
    try:
        system = prompts.load(system_name).render()
        user = prompts.load(user_name).render(**values)
        message = await r.client.create(
            stream=True,
            max_tokens=1_500,
            system=[{"type": "text", "text": system, "cache_control": EPHEMERAL}],
            messages=[{"role": "user", "content": user}],
        )
        usage = LLMUsage.of(r.client.model, getattr(message, "usage", None))
        raw = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text")
        text = clean_model_text(raw, values["boundary"], redact, 6_000)
        r._audit_call(kind, version, ctx, files, started, usage, outcome="ok" if text else "malformed")
        if not text:
            return LLMAnswer(usage=usage, notes=["The LLM returned no answer"], prompt_version=version)
        return LLMAnswer(text, usage, [], version)
    except LLMUnavailable as exc:
        r._audit_call(kind, version, ctx, files, started, usage, outcome="error", error=exc.reason)
        return LLMAnswer(usage=usage, notes=[f"LLM unavailable: {exc.reason}"], prompt_version=version)
    except Exception:
        log.exception("LLM %s failed", kind)
        return LLMAnswer(usage=usage, notes=[f"LLM {kind} failed (internal error)"], prompt_version=version)
    finally:
        await r.client.aclose()
