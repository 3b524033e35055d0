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
from collections.abc import Callable, Sequence
from dataclasses import replace

from analyzers.base import FileReader, Finding, Severity
from analyzers.consolidate import MIN_MOVED_CHARS, normalise_line, removed_texts
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
    findings: Sequence[Finding],
    changeset: ChangeSet,
    read_base: FileReader | None,
    max_files: int = MAX_FILES,
    read_head: FileReader | None = None,
) -> tuple[list[Finding], int]:
    """(findings to keep, how many were dropped as inherited). Blocking: `read_base` may fetch files.

    With `read_head`, a size finding on a function that is new by name but whose lines the change mostly
    removed elsewhere (an extract-method refactor, a function moved to another module) goes to the summary:
    the code is not new, only its place.
    """
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
    dropped = len(findings) - len(out)
    if read_head is not None:  # only functions the base does not have by name can be "new" code in a new place
        new_by_name = {id(verdicts[i]) for i in verdicts if verdicts[i] is not None and _is_new(verdicts[i])}
        out = _demote_moved_functions(out, changeset, read_head, lambda f: id(f) in new_by_name)
    return out, dropped


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
    if before is None:  # a new function, by name: new code, unless its lines were already there (see above)
        return replace(finding, extra={**finding.extra, "new_function": True})
    if not isinstance(value, int) or not isinstance(limit, int):
        return finding  # nothing to compare
    was = int(getattr(before, METRICS[finding.rule]))
    if was <= limit:
        return finding  # this change crossed the limit
    if value <= was:
        return None  # inherited, and not made worse
    message = finding.message.rstrip(".") + f" (it was already {was} before this change, which made it worse)."
    severity = min(finding.severity, Severity.LOW)
    return replace(finding, message=message, severity=severity, extra={**finding.extra, "base_value": was})


MOVED_SHARE = 0.8  # of a function's substantial lines found among the change's removed lines


def _is_new(finding: Finding | None) -> bool:
    return finding is not None and "base_value" not in finding.extra and bool(finding.extra.get("new_function"))


def _demote_moved_functions(
    findings: Sequence[Finding], changeset: ChangeSet, read_head: FileReader, eligible: Callable[[Finding], bool]
) -> list[Finding]:
    removed = removed_texts(changeset)
    texts: dict[str, list[str] | None] = {}
    out: list[Finding] = []
    for f in findings:
        end = f.extra.get("symbol_end_line")
        if eligible(f) and isinstance(end, int) and f.severity > Severity.LOW:
            if f.path not in texts:
                text = read_head(f.path)
                texts[f.path] = text.split("\n") if text is not None else None
            lines = texts[f.path]
            changed = changeset.get(f.path)
            if lines is not None and changed is not None:
                added = changed.added_lines
                # (line number, normalised text) of the function's substantial lines
                body = [(n, normalise_line(lines[n - 1])) for n in range(f.start_line, min(end, len(lines)) + 1)]
                body = [(n, x) for n, x in body if len(x) >= MIN_MOVED_CHARS]
                # a line is old when the diff kept it (unchanged context) or removed the same text elsewhere
                old = sum(1 for n, x in body if n not in added or x in removed)
                if len(body) >= 5 and old >= MOVED_SHARE * len(body):
                    f = replace(
                        f,
                        severity=Severity.LOW,
                        message=f.message.rstrip(".") + " (most of its lines were already there before this change, "
                        "which renamed, extracted or moved them: the code is not new, only its place).",
                        extra={**f.extra, "moved": True},
                    )
        out.append(f)
    return out


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
