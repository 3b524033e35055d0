"""Anchoring a model finding to the diff: its own changed line, or the nearby hunk line its quote matches."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from analyzers.base import normalize_code
from analyzers.diff import ChangedFile

_NUMBERED = re.compile(r"^\s*\d*\s*[+\- ]?\s")


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
