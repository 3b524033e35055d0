"""The LLM review: plan file groups within budget, call with a forced tool, validate, re-anchor, merge."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analyzers.base import Confidence, Finding, Fix, Severity, normalize_code
from analyzers.diff import ChangedFile, ChangeSet
from app import prompts
from app.audit import AuditEntry, AuditLog
from app.cost_meter import CostMeter
from app.llm import LLMClient, LLMConfig, LLMUnavailable, prewarm
from app.llm_context import (
    MAX_PR_BODY_CHARS,
    FileContext,
    build_file_contexts,
    choose_boundary,
    estimate_tokens,
    fence,
    path_instruction_text,
    redactor,
    render_prior,
)
from app.pricing import cost_usd, price_for

log = logging.getLogger(__name__)

REVIEW_PROMPTS = ("review.system", "review.user", "review.files", "review.retry")
TOOL = "review.tool"
EPHEMERAL = {"type": "ephemeral"}
ASSUMED_OUTPUT_TOKENS = 1_500  # for projecting a call's cost before it is made

Category = Literal[
    "bug",
    "logic",
    "edge-case",
    "error-handling",
    "security",
    "concurrency",
    "performance",
    "api-misuse",
    "resource-leak",
    "mismatch",
    "maintainability",
]


# ---- the model's output, as validated ------------------------------------------------------------


class ModelFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=1000)
    line: int = Field(ge=1)
    start_line: int | None = Field(default=None, ge=1)
    severity: Literal["critical", "high", "medium", "low", "info"]
    category: Category
    title: str = Field(min_length=3, max_length=200)
    body: str = Field(min_length=1, max_length=4000)
    quote: str = Field(default="", max_length=2000)
    suggestion: str | None = Field(default=None, max_length=8000)


class ModelReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str = Field(default="", max_length=3000)
    findings: list[ModelFinding] = Field(default_factory=list, max_length=25)


# ---- public values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LLMUsage:
    model: str = ""
    input_tokens: int = 0  # uncached input, as the API reports it
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(
            model=self.model or other.model,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 6),
            calls=self.calls + other.calls,
        )

    @classmethod
    def of(cls, model: str, usage: Any) -> LLMUsage:
        """From an SDK `Usage` (missing cache fields count as 0)."""
        inp = int(getattr(usage, "input_tokens", 0) or 0)
        out = int(getattr(usage, "output_tokens", 0) or 0)
        read = int(getattr(usage, "cache_read_input_tokens", 0) or 0)
        write = int(getattr(usage, "cache_creation_input_tokens", 0) or 0)
        return cls(model, inp, out, read, write, cost_usd(model, inp, out, read, write), 1)


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


@dataclass(frozen=True)
class LLMResult:
    findings: list[Finding] = field(default_factory=list)
    summary: str = ""
    usage: LLMUsage = field(default_factory=LLMUsage)
    notes: list[str] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)  # paths the budget left out
    prompt_version: str = ""
    merged: list[tuple[str, str]] = field(default_factory=list)  # (analyzer finding id, the LLM's title)
    retry_later: bool = False  # the failure was transient; policy decides whether to try again

    @property
    def used(self) -> bool:
        return self.usage.calls > 0


@dataclass(frozen=True)
class Budget:
    max_input_tokens: int = 120_000  # per PR, all calls
    max_cost_usd: float | None = 1.00  # per PR
    per_call_tokens: int = 24_000  # input per call, prompt included
    max_concurrency: int = 4
    max_output_tokens: int = 4_096
    deadline_seconds: float = 300.0
    # Cache breakpoints always close the static prefix (tools + system) and the PR preamble. Caching the diff
    # block too makes an identical re-review ~all cache reads but costs 1.25x on every first review's diff.
    cache_diff: bool = False

    @classmethod
    def from_policy(cls, llm: Any) -> Budget:
        def get(name: str) -> Any:
            return llm.get(name) if isinstance(llm, Mapping) else getattr(llm, name, None)

        base = cls()
        max_input = int(get("max_input_tokens") or base.max_input_tokens)
        cost = get("max_cost_usd")
        return cls(
            max_input_tokens=max_input,
            max_cost_usd=float(cost) if cost is not None else base.max_cost_usd,
            per_call_tokens=min(base.per_call_tokens, max_input),
            max_concurrency=max(1, int(get("max_concurrency") or base.max_concurrency)),
        )


@dataclass(frozen=True)
class Plan:
    groups: list[list[FileContext]]
    not_sent: list[str]
    overhead_tokens: int


@dataclass
class _GroupOutcome:
    findings: list[Finding] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # summary lines for findings outside the diff
    summary: str = ""
    usage: LLMUsage = field(default_factory=LLMUsage)
    failure: LLMUnavailable | None = None
    malformed: str = ""
    merged: list[tuple[str, str]] = field(default_factory=list)


# ---- planning ------------------------------------------------------------------------------------


def plan_groups(contexts: Sequence[FileContext], overhead: int, budget: Budget, model: str) -> Plan:
    """Choose files by risk under the PR budget, then pack them (in path order) into per-call groups."""
    per_call = max(budget.per_call_tokens - overhead, 1)
    token_cap = budget.max_input_tokens
    if budget.max_cost_usd is not None:
        price = price_for(model)
        per_call_out = ASSUMED_OUTPUT_TOKENS * price.output / 1_000_000
        # Every call pays its output; input is priced at the uncached rate (the worst case).
        affordable = (budget.max_cost_usd - per_call_out) / (price.input / 1_000_000)
        token_cap = min(token_cap, int(max(affordable, 0)))
    groups: list[list[FileContext]] = []
    room: list[int] = []
    not_sent: list[str] = []
    used = 0
    # Riskiest first; each file goes to the first group with room (first fit), a new group pays the overhead.
    for ctx in sorted(contexts, key=lambda c: (-c.risk, c.path)):
        if ctx.tokens > per_call:
            not_sent.append(ctx.path)
            continue
        slot = next((i for i, r in enumerate(room) if r >= ctx.tokens), None)
        extra = ctx.tokens + (overhead if slot is None else 0)
        if used + extra > token_cap:
            not_sent.append(ctx.path)
            continue
        if slot is None:
            groups.append([])
            room.append(per_call)
            slot = len(groups) - 1
        groups[slot].append(ctx)
        room[slot] -= ctx.tokens
        used += extra
    groups = [sorted(g, key=lambda c: c.path) for g in groups]
    return Plan(groups, sorted(not_sent), overhead)


# ---- validation and anchoring --------------------------------------------------------------------

_NUMBERED = re.compile(r"^\s*\d*\s*[+\- ]?\s")
_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_MENTION = re.compile(r"(?<![\w`])@(?=[A-Za-z0-9][A-Za-z0-9-]{0,38}\b)")
_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")


def _norm(code: str) -> str:
    return normalize_code(code)


def _quote_lines(quote: str) -> list[str]:
    lines = []
    for raw in quote.splitlines():
        text = _norm(_NUMBERED.sub("", raw, count=1)) if re.match(r"^\s*\d+\s", raw) else _norm(raw)
        if text:
            lines.append(text)
    return lines


def _matches(quote: str, line_text: str) -> bool:
    have = _norm(line_text)
    if not quote or not have:
        return False
    return quote == have or (len(quote) >= 8 and quote in have) or (len(have) >= 8 and have in quote)


@dataclass(frozen=True)
class Anchor:
    line: int
    start_line: int | None
    how: Literal["exact", "re-anchored", "unverified"]


def anchor(changed: ChangedFile, line: int, start_line: int | None, quote: str) -> Anchor | None:
    """Where a model finding goes: its own line when it is in the change (moved to the quoted line of the
    same hunk if the quote points elsewhere); a nearby hunk line whose code matches the quote; else None."""
    texts = {ln.new: ln.text for h in changed.hunks for ln in h.lines if ln.new is not None}
    quoted = _quote_lines(quote)
    target = quoted[-1] if quoted else ""
    index = changed.hunk_index(line)
    if index is not None:
        if not target or _matches(target, texts.get(line, "")):
            return Anchor(line, _start(changed, start_line, line), "exact")
        candidates = [n for n in changed.hunks[index].right_lines if _matches(target, texts.get(n, ""))]
        if candidates:
            best = min(candidates, key=lambda n: (abs(n - line), n))
            shifted = start_line + (best - line) if start_line is not None else None
            return Anchor(best, _start(changed, shifted, best), "re-anchored")
        return Anchor(line, _start(changed, start_line, line), "unverified")
    if not target:
        return None
    near = [h for h in changed.hunks if h.right_lines and h.right_lines[0] - 10 <= line <= h.right_lines[-1] + 10]
    candidates = [n for h in near for n in h.right_lines if _matches(target, texts.get(n, ""))]
    if not candidates:
        return None
    best = min(candidates, key=lambda n: (abs(n - line), n))
    shifted = start_line + (best - line) if start_line is not None else None
    return Anchor(best, _start(changed, shifted, best), "re-anchored")


def _start(changed: ChangedFile, start_line: int | None, line: int) -> int | None:
    if start_line is None or start_line >= line:
        return None
    if changed.hunk_index(start_line) != changed.hunk_index(line):
        return None
    return start_line


def _clean(text: str, boundary: str, redact: Callable[[str], str], limit: int) -> str:
    """Model text made safe to publish: redacted, no HTML comments (markers), no pings, no fence token."""
    text = _HTML_COMMENT.sub("", text).replace(boundary, "[fence]")
    text = _MENTION.sub("@\u200b", redact(text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _same_issue(llm: Finding, prior: Finding) -> bool:
    if llm.path != prior.path:
        return False
    if llm.start_line > prior.end_line + 2 or prior.start_line > llm.end_line + 2:
        return False
    category = str(llm.extra.get("category", ""))
    if category == "security" and (prior.cwe is not None or prior.analyzer in ("security", "secrets")):
        return True
    a = set(_WORD.findall(f"{llm.title} {llm.message}".lower()))
    b = set(_WORD.findall(f"{prior.title} {prior.message} {prior.rule.replace('-', ' ')}".lower()))
    return bool(a and b) and len(a & b) / len(a | b) >= 0.2


# ---- the reviewer --------------------------------------------------------------------------------


class LLMReviewer:
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

    def _parts(self, request: LLMRequest, contexts: Sequence[FileContext]) -> tuple[str, str, str]:
        """(boundary, system text, preamble text)."""
        redact = redactor(self._known_secrets)
        title = redact(request.pr_title.strip()) or "(no title)"
        body = redact(request.pr_body.strip()[:MAX_PR_BODY_CHARS])
        prior = render_prior(request.prior_findings, [c.path for c in contexts])
        scope = f"{request.repo}#{request.pr_number}"
        untrusted = [title, body, prior, *(c.text for c in contexts)]
        boundary = choose_boundary(untrusted, self._salt, scope)
        system = prompts.load("review.system").render()
        preamble = prompts.load("review.user").render(
            boundary=boundary,
            pr_title=fence(title, boundary, "pr-title"),
            pr_body=fence(body, boundary, "pr-description") if body else "(no description)",
            instructions=request.instructions.strip() or "(none)",
        )
        return boundary, system, preamble

    def _files_text(self, request: LLMRequest, group: Sequence[FileContext], boundary: str, total: int) -> str:
        redact = redactor(self._known_secrets)
        paths = [c.path for c in group]
        prior = redact(render_prior(request.prior_findings, paths))
        return prompts.load("review.files").render(
            file_count=str(len(group)),
            total_files=str(total),
            files=fence("".join(c.text for c in group), boundary, "diff"),  # each block ends with a newline
            path_instructions=path_instruction_text(request.path_instructions, paths),
            already_reported=fence(prior, boundary, "analyzer-findings") if prior else "(none)",
        )

    def _params(self, system: str, preamble: str, files_text: str) -> dict[str, Any]:
        tool = prompts.load_tool(TOOL)
        cache = self.budget.cache_diff
        return {
            "max_tokens": self.budget.max_output_tokens,
            "system": [{"type": "text", "text": system, "cache_control": EPHEMERAL}],
            "tools": [tool.param()],
            "tool_choice": {"type": "tool", "name": tool.name},
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": preamble, "cache_control": EPHEMERAL},
                        {"type": "text", "text": files_text, **({"cache_control": EPHEMERAL} if cache else {})},
                    ],
                }
            ],
        }

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
        boundary, system, preamble = self._parts(request, contexts)
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

        async def run(group: list[FileContext]) -> _GroupOutcome | None:
            async with semaphore:
                if meter.exhausted():
                    return None
                files_text = self._files_text(request, group, boundary, total_files)
                outcome = await self._call_group(request, group, self._params(system, preamble, files_text), boundary)
                meter.add(outcome.usage.cost_usd)
                return outcome

        outcomes = await asyncio.gather(*(run(g) for g in plan.groups))
        return self._combine(request, plan, outcomes, version, time.monotonic() - started)

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
        params = self._params(system, preamble, self._files_text(request, first, boundary, len(contexts)))
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
    ) -> _GroupOutcome:
        assert self.client is not None
        outcome = _GroupOutcome()
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
            parsed, error, tool_block = self._parse(message)
            if parsed is None:
                self._audit(request, group, started, usage, outcome="malformed", error=error)
                if attempt == 2:
                    outcome.malformed = error
                    return outcome
                params = self._retry_params(params, message, tool_block, error)
                continue
            valid, outside, reasons = self._validate(request, group, parsed, boundary, redact)
            kept, merged = _merge(valid, request.prior_findings)
            if merged:
                reasons["duplicate of an analyzer finding"] += len(merged)
            if len(valid) - len(merged) > len(kept):
                reasons["duplicate"] += len(valid) - len(merged) - len(kept)
            outcome.findings = kept
            outcome.merged = merged
            outcome.outside = outside
            outcome.summary = _clean(parsed.summary, boundary, redact, 1500)
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

    def _parse(self, message: Any) -> tuple[ModelReview | None, str, Any]:
        tool = prompts.load_tool(TOOL)
        blocks = [b for b in getattr(message, "content", []) or [] if getattr(b, "type", "") == "tool_use"]
        block = next((b for b in blocks if getattr(b, "name", "") == tool.name), None)
        if block is None:
            return None, f"no {tool.name} tool call in the answer", None
        if getattr(message, "stop_reason", None) == "max_tokens":
            return None, "the answer was cut off at max_tokens; report fewer, shorter findings", block
        try:
            return ModelReview.model_validate(block.input), "", block
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()[:8]
            )
            return None, problems[:1500], block

    def _retry_params(self, params: dict[str, Any], message: Any, tool_block: Any, error: str) -> dict[str, Any]:
        retry_text = prompts.load("review.retry").render(error=error)
        assistant: list[dict[str, Any]] = []
        for block in getattr(message, "content", []) or []:
            kind = getattr(block, "type", "")
            if kind == "text" and getattr(block, "text", ""):
                assistant.append({"type": "text", "text": block.text})
            elif kind == "tool_use":
                assistant.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
        if tool_block is not None:
            follow: list[dict[str, Any]] = [
                {"type": "tool_result", "tool_use_id": tool_block.id, "is_error": True, "content": retry_text}
            ]
        else:
            follow = [{"type": "text", "text": retry_text}]
        messages = list(params["messages"])
        if assistant:
            messages.append({"role": "assistant", "content": assistant})
            messages.append({"role": "user", "content": follow})
        else:
            first = dict(messages[0])
            first["content"] = [*first["content"], *follow]
            messages = [first]
        return {**params, "messages": messages}

    def _validate(
        self,
        request: LLMRequest,
        group: Sequence[FileContext],
        review: ModelReview,
        boundary: str,
        redact: Callable[[str], str],
    ) -> tuple[list[Finding], list[str], Counter[str]]:
        reasons: Counter[str] = Counter()
        kept: list[Finding] = []
        outside: list[str] = []
        paths = {c.path for c in group}
        version = self.prompt_version
        for item in review.findings:
            title = " ".join(_clean(item.title, boundary, redact, 200).split())
            body = _clean(item.body, boundary, redact, 4000)
            changed = request.changeset.get(item.path)
            if changed is None or item.path not in paths:
                reasons["path not in the change"] += 1
                continue
            where = anchor(changed, item.line, item.start_line, item.quote)
            if where is None:
                reasons["outside the diff (moved to summary)"] += 1
                outside.append(f"{item.path}:{item.line}: {title}")
                continue
            start = where.start_line or where.line
            texts = {ln.new: ln.text for h in changed.hunks for ln in h.lines if ln.new is not None}
            code = "\n".join(texts.get(n, "") for n in range(start, where.line + 1))
            fix = None
            if item.suggestion is not None and where.how == "exact" and boundary not in item.suggestion:
                replacement = redact(item.suggestion)
                if replacement == item.suggestion:  # never publish a suggestion we had to mask
                    fix = Fix(start, where.line, replacement)
            symbol = None
            if request.syntax is not None and hasattr(request.syntax, "innermost"):
                try:
                    sym = request.syntax.innermost(item.path, where.line)
                    symbol = getattr(sym, "qualname", None) if sym is not None else None
                except Exception:
                    symbol = None
            kept.append(
                Finding(
                    rule=f"llm/{item.category}",
                    analyzer="llm",
                    severity=Severity.parse(item.severity),
                    confidence=Confidence.LOW if where.how == "unverified" else Confidence.MEDIUM,
                    message=body,
                    path=item.path,
                    start_line=start,
                    end_line=where.line,
                    title=title,
                    fix=fix,
                    symbol=symbol,
                    code=code,
                    source="llm",
                    extra={"category": item.category, "anchor": where.how, "prompt_version": version},
                )
            )
        return kept, outside, +reasons

    def _combine(
        self,
        request: LLMRequest,
        plan: Plan,
        outcomes: Sequence[_GroupOutcome | None],
        version: str,
        seconds: float,
    ) -> LLMResult:
        usage = LLMUsage(model=self.client.model if self.client else "")
        findings: list[Finding] = []
        summaries: list[str] = []
        outside: list[str] = []
        not_sent = list(plan.not_sent)
        failures: list[LLMUnavailable] = []
        malformed = 0
        for group, outcome in zip(plan.groups, outcomes, strict=True):
            if outcome is None:
                not_sent.extend(c.path for c in group)
                continue
            usage = usage + outcome.usage
            if outcome.failure is not None:
                failures.append(outcome.failure)
                continue
            if outcome.malformed:
                malformed += 1
                continue
            findings.extend(outcome.findings)
            outside.extend(outcome.outside)
            if outcome.summary:
                summaries.append(outcome.summary)
        merged = [m for o in outcomes if o is not None for m in o.merged]
        kept = sorted(findings, key=lambda f: (f.path, f.end_line))
        notes: list[str] = []
        groups = len(plan.groups)
        over_cost = sum(1 for o in outcomes if o is None)
        if over_cost:
            notes.append(
                f"LLM cost budget (${self.budget.max_cost_usd:.2f}) reached: {over_cost} of {groups} parts not sent"
            )
        if failures:
            reason = failures[0].reason
            if len(failures) == groups:
                notes.append(f"LLM review unavailable: {reason}; analyzers only")
            else:
                notes.append(f"LLM review incomplete: {len(failures)} of {groups} parts failed ({reason})")
        if malformed:
            notes.append(f"LLM review: {malformed} of {groups} parts returned malformed output twice and were dropped")
        summary = "\n".join(summaries if len(summaries) <= 1 else [f"- {s}" for s in summaries])
        if outside:
            lines = "\n".join(f"- {o}" for o in outside[:20])
            summary = f"{summary}\n\nAlso noted outside the changed lines:\n{lines}".strip()
        log.info("LLM review: %d groups, %d findings, %.1fs", groups, len(kept), seconds)
        return LLMResult(
            findings=kept,
            summary=summary,
            usage=usage,
            notes=notes,
            not_sent=sorted(set(not_sent)),
            prompt_version=version,
            merged=merged,
            retry_later=bool(failures) and all(f.retryable for f in failures),
        )

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


def _merge(findings: Sequence[Finding], prior: Sequence[Finding]) -> tuple[list[Finding], list[tuple[str, str]]]:
    """Drop LLM findings that repeat an analyzer finding (same place, same issue) or each other."""
    kept: list[Finding] = []
    merged: list[tuple[str, str]] = []
    seen: set[tuple[str, int, str]] = set()
    for f in sorted(findings, key=lambda f: (-int(f.severity), f.path, f.end_line)):
        twin = next((p for p in prior if _same_issue(f, p)), None)
        if twin is not None:
            merged.append((twin.id, f.title))
            continue
        key = (f.path, f.end_line, _norm(f.title).lower())
        if key in seen or any(k.path == f.path and k.end_line == f.end_line and k.rule == f.rule for k in kept):
            continue
        seen.add(key)
        kept.append(f)
    return sorted(kept, key=lambda f: (f.path, f.end_line)), merged


# ---- slash commands: explain and ask ---------------------------------------------------------------


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
    r = reviewer or LLMReviewer.from_settings(settings, policy)
    return await r.ask(question, changeset, read_head, syntax, pr_title, _Ctx(repo, pr_number, head_sha))


def _numbered_excerpt(text: str, start: int, end: int, pad: int = 15) -> str:
    lines = text.splitlines()
    lo, hi = max(1, start - pad), min(len(lines), end + pad)
    return "\n".join(f"{n:>5}   {lines[n - 1]}" for n in range(lo, hi + 1))


async def _answer(
    r: LLMReviewer, kind: str, system_name: str, user_name: str, values: dict[str, str], ctx: _Ctx, files: int
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
        text = _clean(raw, values["boundary"], redact, 6_000)
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
