"""Size findings against the base version: a change is told about a limit it crossed, not one it inherited.

The quality analyzer measures every function whose lines a change touches. A one-line fix inside a function
that was already 230 lines long is not the place to ask for a refactor: that comment is noise and teaches
people to ignore the bot. So each size finding (complexity, length, parameters, nesting) is compared with the
same function (by qualified name) in the base version of its file:

- the function is new, or was within the limit before: kept (this change crossed it);
- it was over the limit and the change made it worse: kept at low severity (the summary, not an inline
  comment: one more parameter on a 20-parameter API is rarely the moment to redesign it), saying what it was;
- it was over the limit and the change did not make it worse: dropped.

`merge_per_function` then folds the size findings of one function into one (the most severe first), so a
function over three limits gets one comment, not three.

Base versions are read for at most `max_files` files; a file whose base cannot be read keeps its findings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from analyzers.base import FileReader, Finding, Severity
from analyzers.diff import ChangeSet, FileStatus
from analyzers.languages import detect_language, new_parser
from analyzers.metrics import FunctionInfo, functions

METRICS = {
    "quality/complexity": "complexity",
    "quality/function-length": "length",
    "quality/too-many-params": "params",
    "quality/deep-nesting": "nesting",
}
MAX_FILES = 25


def compare_with_base(
    findings: Sequence[Finding], changeset: ChangeSet, read_base: FileReader | None, max_files: int = MAX_FILES
) -> tuple[list[Finding], int]:
    """(findings to keep, how many were dropped as inherited). Blocking: `read_base` may fetch files."""
    if read_base is None:
        return list(findings), 0
    by_path: dict[str, list[int]] = defaultdict(list)
    for index, f in enumerate(findings):
        if f.rule in METRICS and f.source == "analyzer":
            by_path[f.path].append(index)
    verdicts: dict[int, Finding | None] = {}
    for path in sorted(by_path)[:max_files]:
        base = _base_functions(changeset, path, read_base)
        if base is None:
            continue
        for index in by_path[path]:
            verdicts[index] = _judge(findings[index], base)
    kept = [verdicts.get(i, f) for i, f in enumerate(findings)]
    out = [f for f in kept if f is not None]
    return out, len(findings) - len(out)


def _base_functions(changeset: ChangeSet, path: str, read_base: FileReader) -> dict[str, FunctionInfo] | None:
    changed = changeset.get(path)
    if changed is None:
        return None
    if changed.status == FileStatus.ADDED:
        return {}  # a new file: every function in it is new
    base_path = changed.old_path or path
    text = read_base(base_path)
    if text is None:
        return None
    lang = detect_language(base_path, text)
    parser = new_parser(lang) if lang is not None else None
    if parser is None or lang is None:
        return None
    data = text.encode("utf-8", "surrogatepass")
    found: dict[str, FunctionInfo] = {}
    for fn in functions(parser.parse(data).root_node, lang, data):
        found.setdefault(fn.qualname, fn)  # a redefinition keeps the first, as the head side does
    return found


def _judge(finding: Finding, base: dict[str, FunctionInfo]) -> Finding | None:
    before = base.get(finding.symbol or "")
    value, limit = finding.extra.get("value"), finding.extra.get("limit")
    if before is None or not isinstance(value, int) or not isinstance(limit, int):
        return finding  # a new function (or nothing to compare): the change brought it in
    was = int(getattr(before, METRICS[finding.rule]))
    if was <= limit:
        return finding  # this change crossed the limit
    if value <= was:
        return None  # inherited, and not made worse
    message = finding.message.rstrip(".") + f" (it was already {was} before this change, which made it worse)."
    severity = min(finding.severity, Severity.LOW)
    return replace(finding, message=message, severity=severity, extra={**finding.extra, "base_value": was})


def merge_per_function(findings: Sequence[Finding]) -> list[Finding]:
    """One size finding per function: the most severe, with the other limits it breaks appended."""
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        if f.rule in METRICS and f.source == "analyzer" and f.symbol:
            groups[(f.path, f.symbol)].append(f)
    merged: dict[int, Finding | None] = {}
    order = list(METRICS)
    for group in groups.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda f: (-int(f.severity), order.index(f.rule)))
        primary, others = group[0], group[1:]
        also = "; ".join(f"{_label(f)} {f.extra.get('value')} (limit {f.extra.get('limit')})" for f in others)
        merged[id(primary)] = replace(
            primary,
            message=f"{primary.message} Also over its limits: {also}.",
            extra={**primary.extra, "also": [f.rule for f in others]},
        )
        for f in others:
            merged[id(f)] = None
    out: list[Finding] = []
    for f in findings:
        kept = merged.get(id(f), f)
        if kept is not None:
            out.append(kept)
    return out


def _label(f: Finding) -> str:
    return {
        "quality/complexity": "cyclomatic complexity",
        "quality/function-length": "length",
        "quality/too-many-params": "parameter count",
        "quality/deep-nesting": "nesting depth",
    }[f.rule]
