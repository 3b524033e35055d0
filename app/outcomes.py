"""What became of each finding diffwise posted on a PR: applied, dismissed, disputed or unaddressed (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from app.comments import marker_ids

FIXED_MARKER = "<!-- diffwise:fixed -->"
COMMAND_PREFIXES = ("/diffwise", "@diffwise")
_HEADER_RE = re.compile(r"^\*\*[^*]*?(critical|high|medium|low|info)\*\*\s*·\s*`([^`]+)`", re.IGNORECASE)
_SUGGESTION_RE = re.compile(r"^(`{3,})suggestion[^\n]*\n(.*?)\n?\1\s*$", re.DOTALL | re.MULTILINE)


class Outcome(StrEnum):
    APPLIED = "applied"
    DISMISSED = "dismissed"
    DISPUTED = "disputed"
    UNADDRESSED = "unaddressed"


@dataclass(frozen=True)
class PostedFinding:
    """One finding comment of the bot, with what its body says about the finding."""

    finding_id: str
    rule: str
    analyzer: str
    source: str  # analyzer | llm
    severity: str  # critical | high | medium | low | info
    comment_id: int
    path: str
    line: int | None
    commit_id: str
    suggestion: str | None  # the committable suggestion's text, if the comment offered one
    posted_at: str = ""  # GitHub's created_at (ISO 8601)


@dataclass(frozen=True)
class Reply:
    author: str
    is_bot: bool
    body: str

    @property
    def is_command(self) -> bool:
        return self.body.lstrip().lower().startswith(COMMAND_PREFIXES)


@dataclass(frozen=True)
class Reaction:
    content: str  # +1 | -1 | laugh | confused | heart | hooray | rocket | eyes
    author: str
    is_bot: bool


@dataclass(frozen=True)
class Evidence:
    """What happened to one finding's thread and code by the time the PR closed."""

    replies: tuple[Reply, ...] = ()
    reactions: tuple[Reaction, ...] = ()
    resolved: bool = False
    ignored: bool = False  # `/diffwise ignore` on this finding or its rule
    still_fires: bool | None = None  # among the findings of the last review; None = not known
    code_changed: bool | None = None  # the flagged lines differ at the final head; None = not known
    suggestion_applied: bool = False


@dataclass(frozen=True)
class Classification:
    finding: PostedFinding
    outcome: Outcome
    reason: str


def parse_finding_comment(comment: Mapping[str, object]) -> PostedFinding | None:
    """A review comment of the bot that opens a finding thread, or None for anything else."""
    if comment.get("in_reply_to_id"):
        return None
    body = str(comment.get("body") or "")
    ids = marker_ids(body)
    if not ids:
        return None
    header = _HEADER_RE.search(body)
    rule = header.group(2) if header else "unknown"
    severity = header.group(1).lower() if header else "info"
    first_line = body.split("\n", 1)[0]
    source = "llm" if "_AI review_" in first_line or rule.startswith("llm/") else "analyzer"
    # where the finding was posted: GitHub's original_* fields; line/commit_id move with the PR (line null if outdated)
    line = comment.get("original_line") or comment.get("line")
    return PostedFinding(
        finding_id=ids[-1],
        rule=rule,
        analyzer=rule.split("/", 1)[0] if "/" in rule else rule,
        source=source,
        severity=severity,
        comment_id=int(str(comment.get("id") or 0)),
        path=str(comment.get("path") or ""),
        line=int(str(line)) if line is not None else None,
        commit_id=str(comment.get("original_commit_id") or comment.get("commit_id") or ""),
        suggestion=suggestion_text(body),
        posted_at=str(comment.get("created_at") or ""),
    )


def suggestion_text(body: str) -> str | None:
    match = _SUGGESTION_RE.search(body)
    return match.group(2) if match else None


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines()]


def _contains_block(haystack: Sequence[str], block: Sequence[str]) -> bool:
    if not block:
        return False
    n = len(block)
    return any(list(haystack[i : i + n]) == list(block) for i in range(len(haystack) - n + 1))


def suggestion_applied(suggestion: str | None, final_text: str | None, original: Sequence[str] = ()) -> bool:
    """The suggested lines are in the final file (and, when known, the flagged lines are gone)."""
    if not suggestion or final_text is None:
        return False
    block = [ln for ln in _lines(suggestion) if ln]
    final = [ln for ln in _lines(final_text) if ln]
    if not _contains_block(final, block):
        return False
    flagged = [ln for ln in original if ln.strip()]
    return not flagged or not _contains_block(final, [ln.strip() for ln in flagged])


def flagged_lines(text: str | None, line: int | None, context: int = 0) -> list[str]:
    """The lines a comment flags (GitHub's `line`, 1-based), with `context` lines either side."""
    if text is None or line is None:
        return []
    lines = text.splitlines()
    start, end = max(line - 1 - context, 0), min(line + context, len(lines))
    return lines[start:end]


def code_changed(before: str | None, after: str | None, line: int | None) -> bool | None:
    """Whether the flagged line (with its neighbours) is no longer in the file as it was; None if unknown."""
    if before is None or line is None:
        return None
    if after is None:
        return True  # the file is gone
    old = [ln.strip() for ln in flagged_lines(before, line, context=1)]
    if not any(old):
        return None
    return not _contains_block([ln.strip() for ln in after.splitlines()], old)


def classify(finding: PostedFinding, evidence: Evidence) -> Classification:
    """First match wins: applied, then dismissed, then disputed, else unaddressed."""
    human_replies = [r for r in evidence.replies if not r.is_bot and not r.is_command]
    fixed_by_bot = any(r.is_bot and FIXED_MARKER in r.body for r in evidence.replies)

    def result(outcome: Outcome, reason: str) -> Classification:
        return Classification(finding, outcome, reason)

    if evidence.suggestion_applied:
        return result(Outcome.APPLIED, "the committable suggestion was applied")
    if fixed_by_bot:
        return result(Outcome.APPLIED, "a later review found it fixed")
    if evidence.code_changed and evidence.still_fires is False:
        return result(Outcome.APPLIED, "the flagged code changed and the finding no longer fires")
    if evidence.ignored:
        return result(Outcome.DISMISSED, "ignored with /diffwise ignore")
    if any(r.content == "-1" and not r.is_bot for r in evidence.reactions):
        return result(Outcome.DISMISSED, "a 👎 reaction")
    if evidence.resolved:
        return result(Outcome.DISMISSED, "thread resolved without a change")
    if human_replies and evidence.still_fires is not False:
        return result(Outcome.DISPUTED, f"{len(human_replies)} human repl{'y' if len(human_replies) == 1 else 'ies'}")
    return result(Outcome.UNADDRESSED, "no reaction, reply, resolution or change")


@dataclass(frozen=True)
class PrHistory:
    """Everything read about one PR at close time, keyed by the finding comment's id."""

    findings: tuple[PostedFinding, ...]
    replies: Mapping[int, tuple[Reply, ...]] = field(default_factory=dict)
    reactions: Mapping[int, tuple[Reaction, ...]] = field(default_factory=dict)
    resolved: frozenset[int] = frozenset()
    ignored_ids: frozenset[str] = frozenset()
    ignored_rules: frozenset[str] = frozenset()
    firing: frozenset[str] | None = None  # ids of the last review; None = no review on record
    texts_before: Mapping[tuple[str, str], str | None] = field(default_factory=dict)  # (path, sha) → text
    texts_final: Mapping[str, str | None] = field(default_factory=dict)  # path → text at the final head


def evidence_for(finding: PostedFinding, history: PrHistory) -> Evidence:
    before = history.texts_before.get((finding.path, finding.commit_id))
    final_known = finding.path in history.texts_final
    final = history.texts_final.get(finding.path)
    changed = code_changed(before, final, finding.line) if final_known else None
    return Evidence(
        replies=tuple(history.replies.get(finding.comment_id, ())),
        reactions=tuple(history.reactions.get(finding.comment_id, ())),
        resolved=finding.comment_id in history.resolved,
        ignored=finding.finding_id in history.ignored_ids or finding.rule in history.ignored_rules,
        still_fires=None if history.firing is None else finding.finding_id in history.firing,
        code_changed=changed,
        suggestion_applied=suggestion_applied(
            finding.suggestion, final, flagged_lines(before, finding.line) if final_known else ()
        ),
    )


def classify_history(history: PrHistory) -> list[Classification]:
    """One classification per posted finding id (a finding re-posted later counts once, by its latest comment)."""
    latest: dict[str, PostedFinding] = {}
    for f in history.findings:
        if f.finding_id not in latest or f.comment_id > latest[f.finding_id].comment_id:
            latest[f.finding_id] = f
    return [classify(f, evidence_for(f, history)) for f in latest.values()]


def threads(comments: Iterable[Mapping[str, object]]) -> tuple[list[PostedFinding], dict[int, tuple[Reply, ...]]]:
    """Split a PR's review comments into the bot's finding comments and the replies under each."""
    findings: list[PostedFinding] = []
    replies: dict[int, list[Reply]] = {}
    for c in comments:
        user = c.get("user")
        if not isinstance(user, Mapping):
            user = {}
        login = str(user.get("login") or "")
        is_bot = user.get("type") == "Bot" or login.endswith("[bot]")
        parent = c.get("in_reply_to_id")
        if parent:
            replies.setdefault(int(str(parent)), []).append(Reply(login, is_bot, str(c.get("body") or "")))
        elif is_bot:
            posted = parse_finding_comment(c)
            if posted is not None:
                findings.append(posted)
    return findings, {k: tuple(v) for k, v in replies.items()}
