"""The LLM review's result: each group's outcome, combined into findings, a summary, usage and notes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from analyzers.base import Finding
from app.llm import LLMUnavailable
from app.llm_plan import Plan
from app.llm_usage import LLMUsage

log = logging.getLogger(__name__)


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


@dataclass
class GroupOutcome:
    findings: list[Finding] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # summary lines for findings outside the diff
    summary: str = ""
    usage: LLMUsage = field(default_factory=LLMUsage)
    failure: LLMUnavailable | None = None
    malformed: str = ""
    merged: list[tuple[str, str]] = field(default_factory=list)


def combine(
    plan: Plan,
    outcomes: Sequence[GroupOutcome | None],
    version: str,
    seconds: float,
    model: str,
    max_cost_usd: float | None,
) -> LLMResult:
    """One result from the groups' outcomes (None: not sent, the cost budget was spent), with notes on what failed."""
    usage = LLMUsage(model=model)
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
        notes.append(f"LLM cost budget (${max_cost_usd:.2f}) reached: {over_cost} of {groups} parts not sent")
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
