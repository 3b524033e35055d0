"""The LLM reviewer: plan file groups within budget, call with a forced tool, retry bad output once, audit.

The pieces live beside it (app.llm_plan, llm_prompt, llm_findings, llm_anchor, llm_result, llm_answers, llm_usage);
their public names are importable from here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzers.base import Finding
from analyzers.diff import ChangeSet
from app import prompts
from app.audit import AuditEntry, AuditLog
from app.cost_meter import CostMeter
from app.llm import LLMClient, LLMConfig, LLMUnavailable, prewarm
from app.llm_anchor import Anchor, anchor
from app.llm_answers import LLMAnswer, LLMAnswering, ask, explain
from app.llm_context import FileContext, build_file_contexts, estimate_tokens, redactor
from app.llm_findings import (
    Category,
    ModelFinding,
    ModelReview,
    clean_model_text,
    merge_findings,
    parse_review,
    validate_findings,
)
from app.llm_plan import ASSUMED_OUTPUT_TOKENS, Budget, Plan, plan_groups
from app.llm_prompt import EPHEMERAL, REVIEW_PROMPTS, TOOL, render_files, retry_params, review_params, review_parts
from app.llm_result import GroupOutcome, LLMResult, combine
from app.llm_usage import LLMUsage

__all__ = [
    "ASSUMED_OUTPUT_TOKENS",
    "EPHEMERAL",
    "REVIEW_PROMPTS",
    "TOOL",
    "Anchor",
    "Budget",
    "Category",
    "LLMAnswer",
    "LLMRequest",
    "LLMResult",
    "LLMReviewer",
    "LLMUsage",
    "ModelFinding",
    "ModelReview",
    "Plan",
    "anchor",
    "ask",
    "explain",
    "plan_groups",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LLMRequest:
    changeset: ChangeSet
    syntax: Any = None  # analyzers.syntax.SyntaxMap (duck-typed: innermost(path, line))
    read_head: Callable[[str], str | None] | None = None
    pr_title: str = ""
    pr_body: str = ""
    instructions: str = ""
    path_instructions: Mapping[str, Sequence[str]] = field(default_factory=dict)
    prior_findings: Sequence[Finding] = ()
    repo: str = ""  # owner/name, for the audit
    pr_number: int | None = None
    head_sha: str = ""
    meter: CostMeter | None = None  # the PR's spend, shared with the test writer; None: this review's own


# ---- the reviewer --------------------------------------------------------------------------------


class LLMReviewer(LLMAnswering):
    """One object per job: `await reviewer.review(request)` never raises."""

    def __init__(
        self,
        client: LLMClient | None,
        budget: Budget | None = None,
        *,
        audit: AuditLog | None = None,
        disabled_reason: str = "LLM review skipped: no ANTHROPIC_API_KEY set; analyzers only",
        cache_salt: bytes | None = None,
        count_tokens: bool = True,
    ) -> None:
        self.client = client
        self.budget = budget or Budget()
        self.audit = audit
        self.disabled_reason = disabled_reason
        self.count_tokens = count_tokens
        key = client.config.api_key if client is not None else None
        self._known_secrets = [key] if key else []
        self._salt = cache_salt if cache_salt is not None else (hashlib.sha256(key.encode()).digest() if key else None)

    @classmethod
    def from_settings(
        cls, settings: Any = None, policy: Any = None, *, audit: AuditLog | None = None, sdk: Any = None
    ) -> LLMReviewer:
        llm = getattr(policy, "llm", None) if policy is not None and not isinstance(policy, Mapping) else None
        if isinstance(policy, Mapping):
            llm = policy.get("llm")
        enabled = True
        model = None
        if llm is not None:
            enabled = bool(llm.get("enabled", True) if isinstance(llm, Mapping) else getattr(llm, "enabled", True))
            model = llm.get("model") if isinstance(llm, Mapping) else getattr(llm, "model", None)
        budget = Budget.from_policy(llm) if llm is not None else Budget()
        config = LLMConfig.from_settings(settings, model=model)
        if not enabled:
            return cls(None, budget, disabled_reason="LLM review disabled by policy")
        if not config.configured:
            return cls(None, budget)
        prewarm()  # the SDK import overlaps the rest of the job (fetching files, analyzers)
        if audit is None:
            try:
                audit = AuditLog.from_settings(settings)
            except Exception:
                log.exception("LLM audit store unavailable; calls will not be recorded")
        return cls(LLMClient(config, sdk), budget, audit=audit)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], policy: Any = None, *, audit: AuditLog | None = None) -> LLMReviewer:
        """For `diffwise review` without a Settings object: the same variables, read from `environ`."""
        settings = {
            "anthropic_api_key": environ.get("ANTHROPIC_API_KEY"),
            "anthropic_base_url": environ.get("ANTHROPIC_BASE_URL"),
            "model": environ.get("DIFFWISE_MODEL"),
            "llm_provider": environ.get("DIFFWISE_LLM_PROVIDER"),
            "state_dir": environ.get("DIFFWISE_STATE_DIR") or ".diffwise",
            "database_url": environ.get("DIFFWISE_DATABASE_URL"),
        }
        return cls.from_settings(settings, policy, audit=audit)

    @property
    def prompt_version(self) -> str:
        return "+".join([prompts.versions(*REVIEW_PROMPTS), prompts.load_tool(TOOL).id])

    async def review(self, request: LLMRequest) -> LLMResult:
        if self.client is None:
            return LLMResult(notes=[self.disabled_reason])
        try:
            return await asyncio.wait_for(self._review(request), self.budget.deadline_seconds)
        except TimeoutError:
            return LLMResult(
                notes=[f"LLM review timed out after {self.budget.deadline_seconds:.0f}s; analyzers only"],
                retry_later=True,
            )
        except Exception:  # degrade, don't fail
            log.exception("LLM review failed")
            return LLMResult(notes=["LLM review failed (internal error); analyzers only"])
        finally:
            await self.client.aclose()

    # -- the steps ----------------------------------------------------------------------------------

    async def _review(self, request: LLMRequest) -> LLMResult:
        assert self.client is not None
        started = time.monotonic()
        redact = redactor(self._known_secrets)
        contexts = build_file_contexts(
            request.changeset,
            syntax=request.syntax,
            read_head=request.read_head,
            prior=request.prior_findings,
            redact=redact,
        )
        version = self.prompt_version
        if not contexts:
            return LLMResult(prompt_version=version)
        boundary, system, preamble = review_parts(request, contexts, self._known_secrets, self._salt)
        tool_tokens = estimate_tokens(str(prompts.load_tool(TOOL).param()))
        template = prompts.load("review.files").template
        overhead = estimate_tokens(system) + estimate_tokens(preamble) + tool_tokens + estimate_tokens(template)
        overhead += 200  # fences, analyzer findings, path instructions
        plan = plan_groups(contexts, overhead, self.budget, self.client.model)
        if (
            self.count_tokens
            and plan.groups
            and sum(c.tokens for g in plan.groups for c in g) > 0.5 * (self.budget.max_input_tokens)
        ):
            plan = await self._recount(request, contexts, plan, boundary, system, preamble)
        if not plan.groups:
            return LLMResult(
                notes=["LLM review skipped: the change does not fit the LLM budget"],
                not_sent=plan.not_sent,
                prompt_version=version,
            )
        semaphore = asyncio.Semaphore(self.budget.max_concurrency)
        meter = request.meter or CostMeter(self.budget.max_cost_usd)
        total_files = len(contexts)

        async def run(group: list[FileContext]) -> GroupOutcome | None:
            async with semaphore:
                if meter.exhausted():
                    return None
                files_text = render_files(request, group, boundary, total_files, self._known_secrets)
                params = review_params(system, preamble, files_text, self.budget)
                outcome = await self._call_group(request, group, params, boundary)
                meter.add(outcome.usage.cost_usd)
                return outcome

        outcomes = await asyncio.gather(*(run(g) for g in plan.groups))
        seconds = time.monotonic() - started
        return combine(plan, outcomes, version, seconds, self.client.model, self.budget.max_cost_usd)

    async def _recount(
        self,
        request: LLMRequest,
        contexts: Sequence[FileContext],
        plan: Plan,
        boundary: str,
        system: str,
        preamble: str,
    ) -> Plan:
        """Near the budget the estimate matters: calibrate it with the API's count of the first group."""
        assert self.client is not None
        first = plan.groups[0]
        text = render_files(request, first, boundary, len(contexts), self._known_secrets)
        params = review_params(system, preamble, text, self.budget)
        counted = await self.client.count_tokens(
            system=params["system"], tools=params["tools"], messages=params["messages"]
        )
        estimated = plan.overhead_tokens + sum(c.tokens for c in first)
        if not counted or estimated <= 0:
            return plan
        ratio = counted / estimated
        if 0.8 <= ratio <= 1.25:
            return plan
        scaled = [
            FileContext(c.path, c.text, int(c.tokens * ratio) + 1, c.risk, c.changed_lines, c.symbols) for c in contexts
        ]
        return plan_groups(scaled, int(plan.overhead_tokens * ratio) + 1, self.budget, self.client.model)

    async def _call_group(
        self, request: LLMRequest, group: list[FileContext], params: dict[str, Any], boundary: str
    ) -> GroupOutcome:
        assert self.client is not None
        outcome = GroupOutcome()
        redact = redactor(self._known_secrets)
        for attempt in (1, 2):
            started = time.monotonic()
            try:
                message = await self.client.create(**params)
            except LLMUnavailable as exc:
                self._audit(request, group, started, LLMUsage(), outcome="error", error=exc.reason)
                outcome.failure = exc
                return outcome
            usage = LLMUsage.of(self.client.model, getattr(message, "usage", None))
            outcome.usage = outcome.usage + usage
            parsed, error, tool_block = parse_review(message)
            if parsed is None:
                self._audit(request, group, started, usage, outcome="malformed", error=error)
                if attempt == 2:
                    outcome.malformed = error
                    return outcome
                params = retry_params(params, message, tool_block, error)
                continue
            valid, outside, reasons = validate_findings(request, group, parsed, boundary, redact, self.prompt_version)
            kept, merged = merge_findings(valid, request.prior_findings)
            if merged:
                reasons["duplicate of an analyzer finding"] += len(merged)
            if len(valid) - len(merged) > len(kept):
                reasons["duplicate"] += len(valid) - len(merged) - len(kept)
            outcome.findings = kept
            outcome.merged = merged
            outcome.outside = outside
            outcome.summary = clean_model_text(parsed.summary, boundary, redact, 1500)
            dropped = len(parsed.findings) - len(kept)
            self._audit(
                request,
                group,
                started,
                usage,
                returned=len(parsed.findings),
                kept=len(kept),
                dropped=dropped,
                reasons=reasons,
            )
            return outcome
        return outcome  # pragma: no cover - the loop always returns

    def _audit(
        self,
        request: LLMRequest,
        group: Sequence[FileContext],
        started: float,
        usage: LLMUsage,
        *,
        outcome: str = "ok",
        error: str = "",
        returned: int = 0,
        kept: int = 0,
        dropped: int = 0,
        reasons: Mapping[str, int] | None = None,
    ) -> None:
        if self.audit is None or self.client is None:
            return
        self.audit.record(
            AuditEntry.of_call(
                "review",
                self.prompt_version,
                self.client.model,
                usage,
                started,
                repo=request.repo,
                pr_number=request.pr_number,
                head_sha=request.head_sha,
                files=len(group),
                outcome=outcome,
                error=error,
                returned=returned,
                kept=kept,
                dropped=dropped,
                drop_reasons=reasons,
            )
        )
