"""Support for the quality tests (no tests here): an AnalyzerContext built from head and base file texts."""

from __future__ import annotations

import difflib
from typing import Any

from analyzers.base import AnalyzerContext, Finding
from analyzers.diff import ChangeSet
from analyzers.quality import QualityAnalyzer


def diff_for(path: str, head: str, base: str | None = None) -> str:
    old = [] if base is None else base.splitlines(keepends=True)
    new = head.splitlines(keepends=True)
    src = "/dev/null" if base is None else f"a/{path}"
    lines = difflib.unified_diff(old, new, src, f"b/{path}", n=3)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def context(
    files: dict[str, tuple[str, str | None]], extra: dict[str, str] | None = None, **settings: Any
) -> AnalyzerContext:
    """files: path -> (head text, base text or None for a new file); extra: unchanged files readable by path."""
    diff = "".join(diff_for(p, head, base) for p, (head, base) in files.items())
    texts = {p: head for p, (head, _) in files.items()} | (extra or {})
    return AnalyzerContext(ChangeSet.from_unified_diff(diff), texts.get, settings=settings)


def run(path: str, head: str, base: str | None = None, **settings: Any) -> list[Finding]:
    settings.setdefault("max_untested_hints", 0)
    return QualityAnalyzer().analyze(context({path: (head, base)}, **settings))


def rules(findings: list[Finding]) -> list[str]:
    return sorted(f.rule.split("/", 1)[1] for f in findings)
