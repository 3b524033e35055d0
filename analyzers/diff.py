"""The change model: a ChangeSet of ChangedFiles and Hunks (unidiff underneath) and where comments may go."""

from __future__ import annotations

import bisect
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import unidiff

Side = Literal["RIGHT", "LEFT"]

# GitHub's limits: the diff media type refuses PRs over 300 files; the files API lists up to 3,000.
GITHUB_DIFF_FILE_LIMIT = 300
GITHUB_FILES_API_LIMIT = 3000


class FileStatus(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    REMOVED = "removed"
    RENAMED = "renamed"
    COPIED = "copied"
    BINARY = "binary"
    MODE_ONLY = "mode-only"


class LineKind(StrEnum):
    ADDED = "+"
    REMOVED = "-"
    CONTEXT = " "


@dataclass(frozen=True, slots=True)
class Line:
    kind: LineKind
    old: int | None  # line number in the old file (removed and context lines)
    new: int | None  # line number in the new file (added and context lines)
    text: str  # without the trailing newline (and without a trailing CR)


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_length: int
    new_start: int
    new_length: int
    header: str  # the text after the second @@ (often the enclosing function, per git)
    lines: tuple[Line, ...]

    @cached_property
    def added(self) -> tuple[int, ...]:
        return tuple(ln.new for ln in self.lines if ln.kind is LineKind.ADDED and ln.new is not None)

    @cached_property
    def removed(self) -> tuple[int, ...]:
        return tuple(ln.old for ln in self.lines if ln.kind is LineKind.REMOVED and ln.old is not None)

    @cached_property
    def right_lines(self) -> tuple[int, ...]:
        """New-file lines GitHub accepts a RIGHT-side comment on: added and context lines, ascending."""
        return tuple(ln.new for ln in self.lines if ln.new is not None)

    @cached_property
    def left_lines(self) -> tuple[int, ...]:
        """Old-file lines GitHub accepts a LEFT-side comment on: removed and context lines, ascending."""
        return tuple(ln.old for ln in self.lines if ln.old is not None)

    def lines_on(self, side: Side) -> tuple[int, ...]:
        return self.right_lines if side == "RIGHT" else self.left_lines

    @property
    def new_end(self) -> int:
        return self.new_start + max(self.new_length, 1) - 1


@dataclass(frozen=True)
class ChangedFile:
    path: str  # new path ("" never; for removed files, the old path)
    status: FileStatus
    hunks: tuple[Hunk, ...] = ()
    old_path: str | None = None  # previous path, for renames and copies
    is_binary: bool = False
    additions: int = 0
    deletions: int = 0

    @cached_property
    def added_lines(self) -> frozenset[int]:
        return frozenset(n for h in self.hunks for n in h.added)

    @cached_property
    def removed_lines(self) -> frozenset[int]:
        return frozenset(n for h in self.hunks for n in h.removed)

    @cached_property
    def _right_index(self) -> dict[int, int]:
        return {n: i for i, h in enumerate(self.hunks) for n in h.right_lines}

    @cached_property
    def _left_index(self) -> dict[int, int]:
        return {n: i for i, h in enumerate(self.hunks) for n in h.left_lines}

    def hunk_index(self, line: int, side: Side = "RIGHT") -> int | None:
        """Index of the hunk whose commentable lines include `line` on `side`, else None."""
        index = self._right_index if side == "RIGHT" else self._left_index
        return index.get(line)

    def commentable(self, side: Side = "RIGHT") -> frozenset[int]:
        index = self._right_index if side == "RIGHT" else self._left_index
        return frozenset(index)

    def hunk_containing(self, line: int) -> Hunk | None:
        """The hunk whose new-file span (start..end) covers `line`, even if `line` is not itself listed."""
        for h in self.hunks:
            if h.new_start <= line <= h.new_end:
                return h
        return None


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class ChangeSet:
    files: tuple[ChangedFile, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    @cached_property
    def by_path(self) -> dict[str, ChangedFile]:
        return {f.path: f for f in self.files}

    def get(self, path: str) -> ChangedFile | None:
        return self.by_path.get(path)

    @property
    def changed_line_count(self) -> int:
        return sum(len(f.added_lines) + len(f.removed_lines) for f in self.files)

    def with_skipped(self, extra: Iterable[Skipped]) -> ChangeSet:
        extra = tuple(extra)
        drop = {s.path for s in extra}
        return ChangeSet(tuple(f for f in self.files if f.path not in drop), self.skipped + extra)

    # ---- constructors -------------------------------------------------------------------------
    @classmethod
    def from_unified_diff(cls, diff: str | bytes) -> ChangeSet:
        """Parse `git diff` output or GitHub's diff media type. Undecodable bytes are replaced."""
        text = _decode(diff)
        if not text.strip():
            return cls()
        try:
            patch = unidiff.PatchSet(text)
        except unidiff.UnidiffParseError as exc:
            raise DiffError(f"malformed unified diff: {exc}") from exc
        files: list[ChangedFile] = []
        skipped: list[Skipped] = []
        for pf in patch:
            changed = _from_patched_file(pf)
            files.append(changed)
            if changed.is_binary:
                skipped.append(Skipped(changed.path, "binary file"))
        return cls(tuple(f for f in files if not f.is_binary), tuple(skipped))

    @classmethod
    def from_github_files(cls, files: Iterable[Mapping[str, Any]]) -> ChangeSet:
        """Build from GitHub's `GET /pulls/{n}/files` items, whose `patch` has no ---/+++ header."""
        out: list[ChangedFile] = []
        skipped: list[Skipped] = []
        for item in files:
            path = str(item.get("filename") or "")
            if not path:
                continue
            old_path = item.get("previous_filename")
            gh_status = str(item.get("status") or "modified")
            patch = item.get("patch")
            changes = int(item.get("changes") or 0)
            if patch is None:
                if gh_status == "renamed" and changes == 0:
                    out.append(ChangedFile(path, FileStatus.RENAMED, (), old_path=old_path))
                elif changes == 0 and gh_status == "modified":
                    out.append(ChangedFile(path, FileStatus.MODE_ONLY, ()))
                elif changes == 0 and gh_status in ("added", "removed"):
                    skipped.append(Skipped(path, "binary file or empty file (no patch from GitHub)"))
                else:
                    skipped.append(Skipped(path, "diff too large or binary (GitHub sent no patch)"))
                continue
            src = f"a/{old_path or path}" if gh_status != "added" else "/dev/null"
            dst = f"b/{path}" if gh_status != "removed" else "/dev/null"
            text = f"--- {src}\n+++ {dst}\n{_decode(patch)}"
            if not text.endswith("\n"):
                text += "\n"
            try:
                parsed = unidiff.PatchSet(text)
            except unidiff.UnidiffParseError:
                skipped.append(Skipped(path, "patch could not be parsed"))
                continue
            hunks = tuple(_hunk(h) for pf in parsed for h in pf)
            status = _STATUS_FROM_GITHUB.get(gh_status, FileStatus.MODIFIED)
            out.append(
                ChangedFile(
                    path,
                    status,
                    hunks,
                    old_path=old_path if status in (FileStatus.RENAMED, FileStatus.COPIED) else None,
                    additions=int(item.get("additions") or sum(len(h.added) for h in hunks)),
                    deletions=int(item.get("deletions") or sum(len(h.removed) for h in hunks)),
                )
            )
        return cls(tuple(out), tuple(skipped))

    @classmethod
    def from_git(cls, repo: str | Path, base: str, head: str | None = None) -> ChangeSet:
        """The change base..head in a local repository (head None: base against the working tree)."""
        args = ["git", "-C", str(repo), "-c", "core.quotepath=false", "diff", "--no-color", "--no-ext-diff"]
        args += ["--find-renames", "--src-prefix=a/", "--dst-prefix=b/", base]
        if head is not None:
            args.append(head)
        proc = subprocess.run(args, capture_output=True, check=False)
        if proc.returncode != 0:
            message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise DiffError(f"git diff failed: {message[-1] if message else 'exit ' + str(proc.returncode)}")
        return cls.from_unified_diff(proc.stdout)


class DiffError(ValueError):
    """A diff that cannot be read (malformed, or git refused)."""


_STATUS_FROM_GITHUB = {
    "added": FileStatus.ADDED,
    "removed": FileStatus.REMOVED,
    "modified": FileStatus.MODIFIED,
    "renamed": FileStatus.RENAMED,
    "copied": FileStatus.COPIED,
    "changed": FileStatus.MODE_ONLY,
    "unchanged": FileStatus.MODIFIED,
}


def _decode(data: str | bytes) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def _strip_prefix(name: str | None) -> str | None:
    if name is None or name == "/dev/null":
        return None
    if name.startswith(("a/", "b/")):
        return name[2:]
    return name


def _hunk(h: unidiff.Hunk) -> Hunk:
    lines: list[Line] = []
    for ln in h:
        if ln.line_type == unidiff.LINE_TYPE_ADDED:
            kind = LineKind.ADDED
        elif ln.line_type == unidiff.LINE_TYPE_REMOVED:
            kind = LineKind.REMOVED
        elif ln.line_type == unidiff.LINE_TYPE_CONTEXT:
            kind = LineKind.CONTEXT
        else:  # "\ No newline at end of file" and empty markers carry no line
            continue
        text = ln.value.rstrip("\n")
        if text.endswith("\r"):
            text = text[:-1]
        old = ln.source_line_no if kind is not LineKind.ADDED else None
        new = ln.target_line_no if kind is not LineKind.REMOVED else None
        lines.append(Line(kind, old, new, text))
    return Hunk(h.source_start, h.source_length, h.target_start, h.target_length, h.section_header, tuple(lines))


def _from_patched_file(pf: unidiff.PatchedFile) -> ChangedFile:
    info = "".join(str(x) for x in (pf.patch_info or []))
    source = _strip_prefix(pf.source_file)
    target = _strip_prefix(pf.target_file)
    hunks = tuple(_hunk(h) for h in pf)
    path = target or source or pf.path
    if pf.is_binary_file:
        # unidiff gives "a/x" / "b/x" style names from the "Binary files ... differ" line
        path = _strip_prefix(pf.path) or pf.path
        return ChangedFile(path, FileStatus.BINARY, (), is_binary=True)
    old_path: str | None = None
    if pf.is_added_file:
        status = FileStatus.ADDED
    elif pf.is_removed_file:
        status = FileStatus.REMOVED
        path = source or pf.path
    elif "\ncopy from " in "\n" + info:
        status, old_path = FileStatus.COPIED, source
    elif pf.is_rename:
        status, old_path = FileStatus.RENAMED, source
    elif not hunks and "old mode" in info:
        status = FileStatus.MODE_ONLY
    else:
        status = FileStatus.MODIFIED
    if old_path is None and status in (FileStatus.RENAMED, FileStatus.COPIED):
        old_path = _rename_from(info)
    return ChangedFile(
        path,
        status,
        hunks,
        old_path=old_path,
        additions=sum(len(h.added) for h in hunks),
        deletions=sum(len(h.removed) for h in hunks),
    )


def _rename_from(info: str) -> str | None:
    for line in info.splitlines():
        for key in ("rename from ", "copy from "):
            if line.startswith(key):
                return line[len(key) :].strip()
    return None


# ---- placement --------------------------------------------------------------------------------


class PlacementKind(StrEnum):
    EXACT = "exact"  # the finding's lines are commentable as they are
    NEAREST = "nearest"  # moved to the nearest commentable line(s) of the same hunk
    OUTSIDE = "outside"  # not in the diff: goes to the summary


@dataclass(frozen=True)
class Placement:
    kind: PlacementKind
    path: str
    side: Side = "RIGHT"
    line: int | None = None  # the (last) line of the comment
    start_line: int | None = None  # set only for a multi-line comment (start_line < line)
    reason: str = ""

    @property
    def inline(self) -> bool:
        return self.kind is not PlacementKind.OUTSIDE

    @property
    def moved(self) -> bool:
        return self.kind is PlacementKind.NEAREST


def place(
    changeset: ChangeSet, path: str, start_line: int, end_line: int | None = None, side: Side = "RIGHT"
) -> Placement:
    """Where GitHub will accept a comment for lines start..end of `path` on `side`.

    Exact when the end line is commentable (the range is clipped to the part inside that hunk);
    otherwise the nearest commentable line of the hunk whose span covers the location; otherwise
    OUTSIDE, which the publisher turns into a summary entry (never a 422).
    """
    end = end_line if end_line is not None and end_line >= start_line else start_line
    changed = changeset.get(path)
    if changed is None:
        return Placement(PlacementKind.OUTSIDE, path, side, reason="file not in the diff")
    index = changed.hunk_index(end, side)
    if index is not None:
        lines = changed.hunks[index].lines_on(side)
        first = next((n for n in lines if n >= start_line), end)
        start = first if first < end else None
        return Placement(PlacementKind.EXACT, path, side, end, start)
    index = changed.hunk_index(start_line, side)
    if index is not None:
        # the end runs past the hunk: keep the part that lies inside it
        lines = changed.hunks[index].lines_on(side)
        last = max(n for n in lines if n <= end)
        start = start_line if start_line < last else None
        return Placement(PlacementKind.EXACT, path, side, last, start, reason="range clipped to its hunk")
    for hunk in changed.hunks:
        lines = hunk.lines_on(side)
        if lines and start_line <= lines[-1] and end >= lines[0]:
            nearest = _nearest(lines, end)
            return Placement(PlacementKind.NEAREST, path, side, nearest, reason="moved inside its hunk")
    return Placement(PlacementKind.OUTSIDE, path, side, reason="line not in the diff")


def _nearest(lines: tuple[int, ...], target: int) -> int:
    i = bisect.bisect_left(lines, target)
    candidates = [lines[j] for j in (i - 1, i) if 0 <= j < len(lines)]
    return min(candidates, key=lambda n: (abs(n - target), n))
