"""Fewer, better comments: code a change only moved, and one construct reported line by line.

- Moved code. A refactor that moves a function to another module "adds" every line of it, and a line-based
  filter then holds the PR responsible for whatever the moved code always did. A security finding whose
  flagged lines all appear among the lines the same change removes (anywhere in it) is kept at low severity:
  it goes to the summary, not an inline comment, and says the code was moved.
- Repeats. Two lines that together switch certificate checks off, or three string-built queries in a row, are
  one thing to fix: findings of one rule in one function within a few lines of each other become one, which
  names the other lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from analyzers.base import FileReader, Finding, Severity
from analyzers.diff import ChangeSet, LineKind

NEARBY_LINES = 3
MIN_MOVED_CHARS = 8  # a bare "}" or "else:" proves nothing about where code came from


def normalise_line(text: str) -> str:
    return " ".join(text.split())


def removed_texts(changeset: ChangeSet) -> set[str]:
    """The normalised text of every substantial line the change removes, in any file: where moved code came from."""
    return {
        norm
        for f in changeset.files
        for h in f.hunks
        for ln in h.lines
        if ln.kind is LineKind.REMOVED and len(norm := normalise_line(ln.text)) >= MIN_MOVED_CHARS
    }


def demote_moved_code(findings: Sequence[Finding], changeset: ChangeSet, read_head: FileReader) -> list[Finding]:
    removed = removed_texts(changeset)
    if not removed:
        return list(findings)
    texts: dict[str, list[str] | None] = {}
    out: list[Finding] = []
    for f in findings:
        if f.analyzer == "security" and f.source == "analyzer" and f.severity > Severity.LOW:
            if f.path not in texts:
                text = read_head(f.path)
                texts[f.path] = text.split("\n") if text is not None else None
            lines = texts[f.path]
            if lines is not None:
                flagged = [normalise_line(x) for x in lines[f.start_line - 1 : f.end_line]]
                flagged = [x for x in flagged if x]
                if flagged and all(x in removed for x in flagged):
                    f = replace(
                        f,
                        severity=Severity.LOW,
                        message=f"{f.message} (These lines also appear among the lines this change removes: the "
                        "code was moved, not written here.)",
                        extra={**f.extra, "moved": True},
                    )
        out.append(f)
    return out


def merge_nearby(findings: Sequence[Finding], within: int = NEARBY_LINES) -> list[Finding]:
    """Findings of one rule in one symbol whose lines are within `within` of the previous one become one."""
    ordered = sorted(range(len(findings)), key=lambda i: (findings[i].path, findings[i].start_line))
    absorbed: dict[int, list[int]] = {}
    gone: set[int] = set()
    last: dict[tuple[str, str, str | None], tuple[int, int]] = {}  # (path, rule, symbol) → (head index, last line)
    for i in ordered:
        f = findings[i]
        if f.source != "analyzer" or f.analyzer not in ("security", "quality"):
            continue
        key = (f.path, f.rule, f.symbol)
        previous = last.get(key)
        if previous is not None and f.side == findings[previous[0]].side and f.start_line - previous[1] <= within:
            absorbed.setdefault(previous[0], []).append(i)
            gone.add(i)
            last[key] = (previous[0], f.end_line)
        else:
            last[key] = (i, f.end_line)
    out: list[Finding] = []
    for i, f in enumerate(findings):
        if i in gone:
            continue
        others = absorbed.get(i)
        if others:
            lines = ", ".join(str(findings[j].start_line) for j in others)
            word = "line" if len(others) == 1 else "lines"
            f = replace(
                f,
                message=f"{f.message} (Also on {word} {lines}.)",
                severity=max(f.severity, *(findings[j].severity for j in others)),
                extra={**f.extra, "also_lines": [findings[j].start_line for j in others]},
            )
        out.append(f)
    return out
