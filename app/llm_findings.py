"""The model's review answer: parsed from its tool call, validated, anchored, cleaned, merged with the analyzers'."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analyzers.base import Confidence, Finding, Fix, Severity, normalize_code
from app import prompts
from app.llm_anchor import anchor
from app.llm_context import FileContext
from app.llm_prompt import TOOL

if TYPE_CHECKING:
    from app.llm_review import LLMRequest

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


_HTML_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_MENTION = re.compile(r"(?<![\w`])@(?=[A-Za-z0-9][A-Za-z0-9-]{0,38}\b)")
_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")


def parse_review(message: Any) -> tuple[ModelReview | None, str, Any]:
    """(the review, "", the tool block); or (None, what is wrong with it, the tool block if there is one)."""
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


def validate_findings(
    request: LLMRequest,
    group: Sequence[FileContext],
    review: ModelReview,
    boundary: str,
    redact: Callable[[str], str],
    version: str,
) -> tuple[list[Finding], list[str], Counter[str]]:
    """(findings anchored in the change, summary lines for those outside it, why the others were dropped)."""
    reasons: Counter[str] = Counter()
    kept: list[Finding] = []
    outside: list[str] = []
    paths = {c.path for c in group}
    for item in review.findings:
        title = " ".join(clean_model_text(item.title, boundary, redact, 200).split())
        body = clean_model_text(item.body, boundary, redact, 4000)
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


def clean_model_text(text: str, boundary: str, redact: Callable[[str], str], limit: int) -> str:
    """Model text made safe to publish: redacted, no HTML comments (markers), no pings, no fence token."""
    text = _HTML_COMMENT.sub("", text).replace(boundary, "[fence]")
    text = _MENTION.sub("@\u200b", redact(text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def merge_findings(
    findings: Sequence[Finding], prior: Sequence[Finding]
) -> tuple[list[Finding], list[tuple[str, str]]]:
    """Drop LLM findings that repeat an analyzer finding (same place, same issue) or each other."""
    kept: list[Finding] = []
    merged: list[tuple[str, str]] = []
    seen: set[tuple[str, int, str]] = set()
    for f in sorted(findings, key=lambda f: (-int(f.severity), f.path, f.end_line)):
        twin = next((p for p in prior if _same_issue(f, p)), None)
        if twin is not None:
            merged.append((twin.id, f.title))
            continue
        key = (f.path, f.end_line, normalize_code(f.title).lower())
        if key in seen or any(k.path == f.path and k.end_line == f.end_line and k.rule == f.rule for k in kept):
            continue
        seen.add(key)
        kept.append(f)
    return sorted(kept, key=lambda f: (f.path, f.end_line)), merged


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
