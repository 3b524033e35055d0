"""The finding a command refers to: found in the bot's review comments by id or thread, restated without an LLM."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app import commands as text

if TYPE_CHECKING:
    from app.context import Context
    from app.handlers.commands import Replier

_MARKER = re.compile(r"<!-- diffwise:finding:([0-9a-f]{8,64}) -->")


@dataclass(frozen=True)
class FindingRef:
    """A finding the bot posted, as found in its comment on the pull request."""

    finding_id: str
    body: str  # the bot's comment that carries the finding's marker
    path: str | None = None
    line: int | None = None
    rule: str | None = None


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
