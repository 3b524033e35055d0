"""The diff filter: whether a finding is in scope for a filter mode (added, diff_context, file)."""

from __future__ import annotations

from analyzers.base import FilterMode, Finding
from analyzers.diff import ChangeSet

MODES: tuple[FilterMode, ...] = ("added", "diff_context", "file")


def in_scope(finding: Finding, changeset: ChangeSet, mode: FilterMode = "added") -> bool:
    """True when the finding should be reported under `mode`, like reviewdog's filter modes.

    added: one of the finding's lines (start..end) is an added line. diff_context: one of its lines lies
    inside a hunk's new-file span. file: any finding in a file of the change (or any file at all, for
    local whole-file runs, since the file reader may name files outside the diff).
    """
    if mode == "file":
        return True
    changed = changeset.get(finding.path)
    if changed is None:
        return False
    end = max(finding.end_line, finding.start_line)
    if finding.side == "LEFT":
        if mode == "added":
            return any(n in changed.removed_lines for n in range(finding.start_line, end + 1))
        return any(changed.hunk_index(n, "LEFT") is not None for n in range(finding.start_line, end + 1))
    if mode == "added":
        added = changed.added_lines
        if end - finding.start_line > len(added):
            return any(finding.start_line <= n <= end for n in added)
        return any(n in added for n in range(finding.start_line, end + 1))
    if mode == "diff_context":
        return any(h.new_start <= end and finding.start_line <= h.new_end for h in changed.hunks)
    raise ValueError(f"unknown filter mode {mode!r}; expected one of {', '.join(MODES)}")


def lines_in_scope(changeset: ChangeSet, path: str, mode: FilterMode = "added") -> frozenset[int] | None:
    """The new-file lines of `path` in scope for `mode`; None means every line (file mode)."""
    if mode == "file":
        return None
    changed = changeset.get(path)
    if changed is None:
        return frozenset()
    if mode == "added":
        return changed.added_lines
    return frozenset(n for h in changed.hunks for n in range(h.new_start, h.new_end + 1))
