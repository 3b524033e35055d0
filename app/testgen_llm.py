"""The LLM test writer: testgen's `writer` hook through a forced tool call, redacted, fenced and audited."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analyzers.diff import ChangeSet
from analyzers.testcheck import check_test_module
from analyzers.testgen import SuggestedTest, TestTarget
from app import prompts
from app.audit import AuditEntry, AuditLog
from app.cost_meter import CostMeter
from app.llm import LLMClient, LLMConfig, LLMUnavailable
from app.llm_context import choose_boundary, fence, redactor
from app.llm_usage import LLMUsage

log = logging.getLogger(__name__)

PROMPTS = ("tests.system", "tests.user")
TOOL = "tests.tool"
EPHEMERAL = {"type": "ephemeral"}
MAX_OUTPUT_TOKENS = 6_000
DEADLINE_SECONDS = 120.0
MAX_CONCURRENCY = 4  # test-writer calls in flight for one review
MAX_SOURCE_CHARS = 12_000
MAX_DRAFT_CHARS = 10_000
MAX_OUTLINE_LINES = 80
MAX_CALLERS = 5
MAX_CALLER_FILES = 20

T = TypeVar("T")
Reader = Callable[[str], str | None]


class LLMTestsRejected(ValueError):
    """The model's answer is unusable (malformed, leaks a secret or the fence token, tests something else)."""


class ModelTests(BaseModel):
    model_config = ConfigDict(extra="forbid")

    module: str = Field(min_length=1, max_length=20_000)
    properties: list[str] = Field(default_factory=list, max_length=12)


@dataclass
class LLMTestWriter:
    """`TestRequest.writer`: one forced tool call per target; whatever it returns, testgen validates again."""

    client: LLMClient
    changeset: ChangeSet | None = None
    read_head: Reader | None = None
    max_examples: int = 50
    max_cost_usd: float | None = 1.00  # for all the calls of this writer (one command or one review)
    repo: str = ""
    pr_number: int | None = None
    head_sha: str = ""
    audit: AuditLog | None = None
    spent_usd: float = 0.0  # this writer's own calls
    calls: int = 0
    meter: CostMeter | None = None  # the PR's spend, shared with the review (max_cost_usd is then the PR's cap)
    _salt: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        policy: Any,
        *,
        changeset: ChangeSet | None = None,
        read_head: Reader | None = None,
        repo: str = "",
        pr_number: int | None = None,
        head_sha: str = "",
        audit: AuditLog | None = None,
        sdk: Any = None,
    ) -> LLMTestWriter | None:
        """None when the policy turns the LLM or tests off, or no key is configured."""
        llm = _get(policy, "llm")
        tests = _get(policy, "tests")
        if not _get(llm, "enabled", True) or not _get(tests, "enabled", True):
            return None
        config = LLMConfig.from_settings(settings, model=_get(llm, "model"))
        if not config.configured:
            return None
        if audit is None:
            try:
                audit = AuditLog.from_settings(settings)
            except Exception:
                log.exception("LLM audit store unavailable; test-writer calls will not be recorded")
        cost = _get(llm, "max_cost_usd", 1.00)
        return cls(
            LLMClient(config, sdk),
            changeset=changeset,
            read_head=read_head,
            max_examples=int(_get(tests, "max_examples", 50) or 50),
            max_cost_usd=float(cost) if cost is not None else None,
            repo=repo,
            pr_number=pr_number,
            head_sha=head_sha,
            audit=audit,
        )

    @classmethod
    def from_reviewer(
        cls,
        reviewer: Any,
        policy: Any = None,
        *,
        changeset: ChangeSet | None = None,
        read_head: Reader | None = None,
        repo: str = "",
        pr_number: int | None = None,
        head_sha: str = "",
        meter: CostMeter | None = None,
    ) -> LLMTestWriter | None:
        """For the review pipeline: the reviewer's client, budget and audit (None when its LLM is off)."""
        client = getattr(reviewer, "client", None)
        if client is None or not _get(_get(policy, "llm"), "enabled", True):
            return None
        budget = getattr(reviewer, "budget", None)
        return cls(
            LLMClient(client.config),  # its own SDK client: the writer runs on testgen's thread
            changeset=changeset,
            read_head=read_head,
            max_examples=int(_get(_get(policy, "tests"), "max_examples", 50) or 50),
            max_cost_usd=getattr(budget, "max_cost_usd", 1.00),
            repo=repo,
            pr_number=pr_number,
            head_sha=head_sha,
            audit=getattr(reviewer, "audit", None),
            meter=meter,
        )

    @property
    def prompt_version(self) -> str:
        return "+".join([prompts.versions(*PROMPTS), prompts.load_tool(TOOL).id])

    def __call__(self, target: TestTarget, function_source: str, draft: SuggestedTest) -> SuggestedTest | None:
        """A better module for `target`, or None (budget spent); raises when the model could not help."""
        [outcome] = self.write_many([(target, function_source, draft)], concurrency=1)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def write_many(
        self, jobs: Sequence[tuple[TestTarget, str, SuggestedTest]], concurrency: int = MAX_CONCURRENCY
    ) -> list[SuggestedTest | BaseException | None]:
        """Several targets at once on one event loop, at most `concurrency` calls in flight; results in order.

        Each entry is the better module, None (the PR's budget was spent before its call started), or what the
        call raised. One event loop for all of them: the SDK client's connection pool belongs to a loop.
        """

        async def run_all() -> list[SuggestedTest | BaseException | None]:
            semaphore = asyncio.Semaphore(max(concurrency, 1))

            async def one(job: tuple[TestTarget, str, SuggestedTest]) -> SuggestedTest | None:
                async with semaphore:
                    if self._budget_spent():
                        return None
                    return await self._write(*job)

            try:
                return list(await asyncio.gather(*(one(job) for job in jobs), return_exceptions=True))
            finally:
                await self.client.aclose()

        if not jobs:
            return []
        return _run_sync(run_all)

    def _budget_spent(self) -> bool:
        if self.meter is not None and self.meter.exhausted():
            return True
        return self.max_cost_usd is not None and self.spent_usd >= self.max_cost_usd

    # -- one call --------------------------------------------------------------------------------------

    def request(self, target: TestTarget, function_source: str, draft: SuggestedTest) -> tuple[str, dict[str, Any]]:
        """(fence token, Messages parameters) for one target: every PR-derived text redacted and fenced."""
        key = self.client.config.api_key
        redact = redactor([key] if key else [])
        where = f"# {target.path}::{target.function} (lines {target.line}-{target.end_line})\n"
        function = redact(where + _clip(function_source, MAX_SOURCE_CHARS))
        callers = redact(self._callers(target)) or "(no calls found in the changed files)"
        outline = redact(self._outline(target.path)) or "(not available)"
        draft_text = redact(_clip(draft.content, MAX_DRAFT_CHARS))
        salt = self._salt or (hashlib.sha256(key.encode()).digest() if key else None)
        scope = f"tests:{self.repo}#{self.pr_number}:{target.path}::{target.function}"
        boundary = choose_boundary([function, callers, outline, draft_text], salt, scope)
        user = prompts.load("tests.user").render(
            boundary=boundary,
            function=fence(function, boundary, "function"),
            callers=fence(callers, boundary, "callers"),
            outline=fence(outline, boundary, "module-outline"),
            draft=fence(draft_text, boundary, "draft"),
            max_examples=str(self.max_examples),
        )
        tool = prompts.load_tool(TOOL)
        params: dict[str, Any] = {
            "max_tokens": MAX_OUTPUT_TOKENS,
            "system": [{"type": "text", "text": prompts.load("tests.system").render(), "cache_control": EPHEMERAL}],
            "tools": [tool.param()],
            "tool_choice": {"type": "tool", "name": tool.name},
            "messages": [{"role": "user", "content": user}],
        }
        return boundary, params

    async def _write(self, target: TestTarget, function_source: str, draft: SuggestedTest) -> SuggestedTest:
        boundary, params = self.request(target, function_source, draft)
        started = time.monotonic()
        usage = LLMUsage()
        try:
            message = await asyncio.wait_for(self.client.create(**params), DEADLINE_SECONDS)
            usage = LLMUsage.of(self.client.model, getattr(message, "usage", None))
            self.spent_usd += usage.cost_usd
            if self.meter is not None:
                self.meter.add(usage.cost_usd)
            self.calls += 1
            answer = _parse(message)
            candidate = self._candidate(answer, boundary, target, draft)
        except (LLMUnavailable, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, LLMUnavailable) else "timed out"
            self._audit(started, usage, outcome="error", error=reason)
            raise
        except LLMTestsRejected as exc:
            self._audit(started, usage, outcome="malformed", error=str(exc), returned=1, dropped=1, reason=str(exc))
            raise
        problems = check_test_module(candidate.content, module_names=self._module_names(target.path, draft.module))
        if problems:
            first = problems[0].split(":", 1)[-1].strip() if ":" in problems[0] else problems[0]
            self._audit(started, usage, returned=1, dropped=1, reason=f"failed validation: {first}"[:120])
        else:
            self._audit(started, usage, returned=1, kept=1)
        return candidate  # testgen validates it again and keeps the draft when it is invalid

    def _candidate(self, answer: ModelTests, boundary: str, target: TestTarget, draft: SuggestedTest) -> SuggestedTest:
        module = answer.module.replace("\r\n", "\n")
        if boundary in module:
            raise LLMTestsRejected("the answer contains the fence token")
        key = self.client.config.api_key
        if redactor([key] if key else [])(module) != module:
            raise LLMTestsRejected("the answer contains a secret-like value")
        name = target.function.rsplit(".", 1)[-1]
        if not re.search(rf"\b{re.escape(name)}\b", module):
            raise LLMTestsRejected(f"the answer does not test {target.function}")
        families = tuple(dict.fromkeys(p.strip() for p in answer.properties if p.strip())) or draft.properties
        return replace(draft, content=_with_docstring(module, draft.content), properties=families)

    # -- context ---------------------------------------------------------------------------------------

    def _read(self, path: str) -> str | None:
        if self.read_head is None:
            return None
        try:
            return self.read_head(path)
        except Exception:  # a context read failing must not stop the writer
            return None

    def _callers(self, target: TestTarget) -> str:
        """Call sites of the function in the changed Python files (cheap: a word search, no parsing)."""
        name = target.function.rsplit(".", 1)[-1]
        pattern = re.compile(rf"(?<![\w.])(?:\w+\.)*{re.escape(name)}\s*\(")
        paths = [target.path]
        if self.changeset is not None:
            paths += [f.path for f in self.changeset.files if f.path.endswith(".py") and f.path != target.path]
        snippets: list[str] = []
        for path in paths[:MAX_CALLER_FILES]:
            lines = (self._read(path) or "").splitlines()
            for index, line in enumerate(lines, start=1):
                own = path == target.path and target.line <= index <= target.end_line
                if own or not pattern.search(line) or re.match(r"\s*(async\s+)?def\s", line):
                    continue
                lo, hi = max(1, index - 2), min(len(lines), index + 2)
                body = "\n".join(f"{n:>5}  {lines[n - 1]}" for n in range(lo, hi + 1))
                snippets.append(f"{path}:{index}\n{body}")
                if len(snippets) >= MAX_CALLERS:
                    return "\n\n".join(snippets)
        return "\n\n".join(snippets)

    def _outline(self, path: str) -> str:
        text = self._read(path)
        if not text:
            return ""
        keep = re.compile(r"^(import |from |def |async def |class |@|[A-Z_][A-Z0-9_]* *[:=]|    (async )?def )")
        lines = [line.rstrip() for line in text.splitlines() if keep.match(line)]
        more = len(lines) - MAX_OUTLINE_LINES
        shown = lines[:MAX_OUTLINE_LINES] + ([f"... ({more} more lines)"] if more > 0 else [])
        return "\n".join(shown)

    def _module_names(self, path: str, module: str) -> Callable[[str], frozenset[str] | None]:
        from analyzers.strategies import parse_module

        names: frozenset[str] | None = None
        text = self._read(path)
        if text is not None:
            try:
                info = parse_module(text)
                names = info.bound_names | frozenset(info.functions)
            except (SyntaxError, ValueError, RecursionError):
                names = None
        return lambda dotted: names if dotted == module else None

    def _audit(
        self,
        started: float,
        usage: LLMUsage,
        *,
        outcome: str = "ok",
        error: str = "",
        returned: int = 0,
        kept: int = 0,
        dropped: int = 0,
        reason: str = "",
    ) -> None:
        if self.audit is None:
            return
        self.audit.record(
            AuditEntry.of_call(
                "tests",
                self.prompt_version,
                self.client.model,
                usage,
                started,
                repo=self.repo,
                pr_number=self.pr_number,
                head_sha=self.head_sha,
                files=1,
                outcome=outcome,
                error=error,
                returned=returned,
                kept=kept,
                dropped=dropped,
                drop_reasons={reason: 1} if reason else {},
            )
        )


def _parse(message: Any) -> ModelTests:
    tool = prompts.load_tool(TOOL)
    block = next(
        (
            b
            for b in getattr(message, "content", []) or []
            if getattr(b, "type", "") == "tool_use" and getattr(b, "name", "") == tool.name
        ),
        None,
    )
    if block is None:
        raise LLMTestsRejected(f"no {tool.name} tool call in the answer")
    if getattr(message, "stop_reason", None) == "max_tokens":
        raise LLMTestsRejected("the answer was cut off at max_tokens")
    try:
        return ModelTests.model_validate(block.input)
    except ValidationError as exc:
        raise LLMTestsRejected(f"malformed answer: {exc.errors()[0]['msg']}") from exc


def _with_docstring(module: str, draft: str) -> str:
    """The module with the draft's first docstring line (it marks the file as diffwise's in the repository)."""
    first = draft.split("\n", 1)[0]
    own = module.split("\n", 1)[0]
    if own == first or (own.startswith('"""') and own.endswith('"""') and "suggested by diffwise" in own):
        return module
    try:
        tree = ast.parse(module)
    except SyntaxError:
        return f"{first}\n\n{module}"  # testgen's validation rejects it anyway
    lines = module.split("\n")
    head = tree.body[0] if tree.body else None
    if isinstance(head, ast.Expr) and isinstance(head.value, ast.Constant) and isinstance(head.value.value, str):
        lines = lines[head.end_lineno or 1 :]
    return "\n".join([first, *lines]).rstrip("\n") + "\n"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n# ... (clipped)"


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def _run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from testgen's synchronous hook, on this thread or, inside a running loop, on another."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
