"""The change model: a ChangeSet of ChangedFiles and Hunks (unidiff underneath) and where comments may go."""

from __future__ import annotations

import bisect
import re
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from unidiff.constants import LINE_TYPE_ADDED, LINE_TYPE_CONTEXT, LINE_TYPE_NO_NEWLINE, LINE_TYPE_REMOVED
from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk as UnidiffHunk
from unidiff.patch import PatchedFile, PatchSet

Side = Literal["RIGHT", "LEFT"]

# GitHub's limits: the diff media type refuses PRs over 300 files; the files API lists up to 3,000.
GITHUB_DIFF_FILE_LIMIT = 300
GITHUB_FILES_API_LIMIT = 3000
MAX_PATCH_CHARS = 2_000_000  # one file's patch; past this it is listed as skipped, never parsed
# place(): how many lines outside a hunk a finding may sit and still be moved onto the hunk's edge.
NEAREST_SLACK = 3


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
    old_missing_newline: bool = False  # "\\ No newline at end of file" after the old side's last line
    new_missing_newline: bool = False  # ... after the new side's last line

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as columns (a large change goes to analysis worker processes): several times smaller and
        faster than a Line object per line, and without the cached line indexes."""
        kinds = "".join(ln.kind.value for ln in self.lines)
        olds = tuple(ln.old for ln in self.lines)
        news = tuple(ln.new for ln in self.lines)
        texts = tuple(ln.text for ln in self.lines)
        head = (self.old_start, self.old_length, self.new_start, self.new_length, self.header)
        return _unpickle_hunk, (head, kinds, olds, news, texts, self.old_missing_newline, self.new_missing_newline)

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

    def span(self, side: Side = "RIGHT") -> tuple[int, int] | None:
        """First and last commentable line on `side` (contiguous), or None when the side is empty."""
        lines = self.lines_on(side)
        return (lines[0], lines[-1]) if lines else None


def _unpickle_hunk(
    head: tuple[int, int, int, int, str],
    kinds: str,
    olds: tuple[int | None, ...],
    news: tuple[int | None, ...],
    texts: tuple[str, ...],
    old_missing_newline: bool,
    new_missing_newline: bool,
) -> Hunk:
    by_value = {k.value: k for k in LineKind}
    lines = tuple(map(Line, map(by_value.__getitem__, kinds), olds, news, texts))
    return Hunk(*head, lines, old_missing_newline, new_missing_newline)


@dataclass(frozen=True)
class ChangedFile:
    path: str  # new path ("" never; for removed files, the old path)
    status: FileStatus
    hunks: tuple[Hunk, ...] = ()
    old_path: str | None = None  # previous path, for renames and copies
    is_binary: bool = False
    additions: int = 0
    deletions: int = 0
    old_mode: str | None = None  # git file modes ("100644", "100755", "120000" symlink), when the diff says
    new_mode: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        """The fields only: the cached line indexes are rebuilt on demand after unpickling."""
        return {f.name: self.__dict__[f.name] for f in fields(self)}

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

    @cached_property
    def _right_spans(self) -> tuple[tuple[int, int], ...]:
        return tuple(sp for sp in (h.span("RIGHT") for h in self.hunks) if sp is not None)

    @cached_property
    def _left_spans(self) -> tuple[tuple[int, int], ...]:
        return tuple(sp for sp in (h.span("LEFT") for h in self.hunks) if sp is not None)

    def spans(self, side: Side = "RIGHT") -> tuple[tuple[int, int], ...]:
        """(first, last) commentable line of each hunk on `side`, ascending; hunks empty on that side left out."""
        return self._right_spans if side == "RIGHT" else self._left_spans

    def hunk_index(self, line: int, side: Side = "RIGHT") -> int | None:
        """Index of the hunk whose commentable lines include `line` on `side`, else None."""
        index = self._right_index if side == "RIGHT" else self._left_index
        return index.get(line)

    def commentable(self, side: Side = "RIGHT") -> frozenset[int]:
        index = self._right_index if side == "RIGHT" else self._left_index
        return frozenset(index)


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
        first_line_end = text.find("\n")
        if first_line_end > 0 and text[first_line_end - 1] == "\r":
            # the whole diff went through a CRLF conversion (headers never end in CR): undo it
            text = text.replace("\r\n", "\n")
        files: list[ChangedFile] = []
        skipped: list[Skipped] = []
        # one file at a time: unidiff's objects for a file are dropped before the next file is read,
        # so peak memory follows the largest file rather than the whole diff
        for chunk in _file_chunks(text):
            try:
                patch = PatchSet(chunk)
            except UnidiffParseError as exc:
                raise DiffError(f"malformed unified diff: {exc}") from exc
            for pf in patch:
                changed = _from_patched_file(pf)
                if changed.is_binary:
                    skipped.append(Skipped(changed.path, "binary file"))
                else:
                    files.append(changed)
        return cls(tuple(files), tuple(skipped))

    @classmethod
    def from_github_files(cls, files: Iterable[Mapping[str, Any]]) -> ChangeSet:
        """Build from GitHub's `GET /pulls/{n}/files` items, whose `patch` has no ---/+++ header."""
        out: list[ChangedFile] = []
        skipped: list[Skipped] = []
        for n, item in enumerate(files):
            path = str(item.get("filename") or "")
            if n >= GITHUB_FILES_API_LIMIT:
                if path:
                    skipped.append(Skipped(path, f"beyond GitHub's {GITHUB_FILES_API_LIMIT}-file listing limit"))
                continue
            if not path:
                continue
            old_path = item.get("previous_filename")
            gh_status = str(item.get("status") or "modified")
            patch = item.get("patch")
            changes = int(item.get("changes") or 0)
            if patch is None:
                if changes == 0 and gh_status in ("renamed", "copied"):
                    status = FileStatus.RENAMED if gh_status == "renamed" else FileStatus.COPIED
                    out.append(ChangedFile(path, status, (), old_path=old_path))
                elif changes == 0 and gh_status in ("modified", "changed", "unchanged"):
                    out.append(ChangedFile(path, FileStatus.MODE_ONLY, ()))
                elif changes == 0 and gh_status in ("added", "removed"):
                    skipped.append(Skipped(path, "binary file or empty file (no patch from GitHub)"))
                else:
                    skipped.append(Skipped(path, "diff too large or binary (GitHub sent no patch)"))
                continue
            if len(patch) > MAX_PATCH_CHARS:
                # Parsing would cost seconds of CPU for a file the review skips as too large anyway.
                size = f"{len(patch) / 1_000_000:.1f} MB"
                skipped.append(
                    Skipped(path, f"too large (a {size} patch; the limit is {MAX_PATCH_CHARS // 1_000_000} MB)")
                )
                continue
            src = f"a/{old_path or path}" if gh_status != "added" else "/dev/null"
            dst = f"b/{path}" if gh_status != "removed" else "/dev/null"
            text = f"--- {src}\n+++ {dst}\n{_decode(patch)}"
            if not text.endswith("\n"):
                text += "\n"
            try:
                parsed = PatchSet(text)
            except UnidiffParseError:
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
    def from_git(cls, repo: str | Path, base: str, head: str | None = None, *, merge_base: bool = False) -> ChangeSet:
        """The change base..head in a local repository (head None: base against the working tree).

        merge_base=True diffs from the merge base of base and head (`base...head`), as a pull request does.
        """
        return cls.start_git(repo, base, head, merge_base=merge_base).result()

    @classmethod
    def start_git(
        cls, repo: str | Path, base: str, head: str | None = None, *, merge_base: bool = False
    ) -> PendingGitDiff:
        """`from_git` in two steps: `git diff` starts now, `.result()` waits for it and parses the diff, so
        the caller can import and load other things while git works (raises OSError if git cannot start)."""
        args = ["git", "-C", str(repo), "-c", "core.quotepath=false", "diff", "--no-color", "--no-ext-diff"]
        args += ["--no-textconv", "--find-renames", "--src-prefix=a/", "--dst-prefix=b/"]
        if head is None:
            args.append(base)
        elif merge_base:
            args.append(f"{base}...{head}")
        else:
            args += [base, head]
        args.append("--")
        return PendingGitDiff(args)


class PendingGitDiff:
    """A running `git diff` whose output is drained by a thread of its own (git never blocks on a full
    pipe), parsed into a ChangeSet by `result()`."""

    def __init__(self, args: list[str]) -> None:
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._output: tuple[bytes, bytes] = (b"", b"")
        self._reader = threading.Thread(target=self._drain, name="git-diff-reader", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        self._output = self._proc.communicate()

    def result(self) -> ChangeSet:
        """Wait for git; the ChangeSet of its diff, or DiffError when git refused."""
        self._reader.join()
        self._proc.wait()
        stdout, stderr = self._output
        if self._proc.returncode != 0:
            message = stderr.decode("utf-8", "replace").strip().splitlines()
            raise DiffError(f"git diff failed: {message[-1] if message else 'exit ' + str(self._proc.returncode)}")
        return ChangeSet.from_unified_diff(stdout)


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


_FILE_HEADER = re.compile(r"^diff --git ", re.M)


def _file_chunks(text: str) -> Iterator[str]:
    """Split git-style output at its `diff --git` headers (a hunk line always starts with " ", "+" or "-")."""
    starts = [m.start() for m in _FILE_HEADER.finditer(text)]
    if len(starts) <= 1:
        yield text
        return
    if starts[0] > 0:
        starts[0] = 0  # a preamble (e.g. `git format-patch` mail headers) rides with the first file
    for begin, end in zip(starts, [*starts[1:], len(text)], strict=True):
        yield text[begin:end]


def _decode(data: str | bytes) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def _strip_prefix(name: str | None) -> str | None:
    if name is None:
        return None
    name = _unquote(name.rstrip("\t"))
    if name == "/dev/null":
        return None
    if name.startswith(("a/", "b/")):
        return name[2:]
    return name


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of unusual paths: "a/caf\\303\\251 \\"x\\".txt" → a/café "x".txt."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            octal = body[i + 1 : i + 4]
            if len(octal) == 3 and all(c in "01234567" for c in octal):
                out.append(int(octal, 8) & 0xFF)
                i += 4
                continue
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
        out.extend(ch.encode("utf-8", "surrogateescape"))
        i += 1
    return out.decode("utf-8", "replace")


_KINDS = {
    LINE_TYPE_ADDED: LineKind.ADDED,
    LINE_TYPE_REMOVED: LineKind.REMOVED,
    LINE_TYPE_CONTEXT: LineKind.CONTEXT,
}


def _hunk(h: UnidiffHunk) -> Hunk:
    lines: list[Line] = []
    old_missing = new_missing = False
    kinds = _KINDS
    for ln in h:
        kind = kinds.get(ln.line_type)
        if kind is None:
            if ln.line_type == LINE_TYPE_NO_NEWLINE and lines:
                # the marker applies to the line just before it, on that line's side(s)
                last = lines[-1].kind
                old_missing = old_missing or last is not LineKind.ADDED
                new_missing = new_missing or last is not LineKind.REMOVED
            continue
        text = ln.value
        if text[-1:] == "\n":
            text = text[:-1]
        if text[-1:] == "\r":
            text = text[:-1]
        # unidiff leaves the old number None on added lines and the new number None on removed ones
        lines.append(Line(kind, ln.source_line_no, ln.target_line_no, text))
    header = h.section_header or ""
    return Hunk(
        h.source_start, h.source_length, h.target_start, h.target_length, header, tuple(lines), old_missing, new_missing
    )


def _from_patched_file(pf: PatchedFile) -> ChangedFile:
    info = "".join(str(x) for x in (pf.patch_info or []))
    source = _strip_prefix(pf.source_file)
    target = _strip_prefix(pf.target_file)
    hunks = tuple(_hunk(h) for h in pf)
    path = target or source or pf.path
    if pf.is_binary_file:
        return ChangedFile(path, FileStatus.BINARY, (), old_path=source if source != path else None, is_binary=True)
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
    old_mode, new_mode = _modes(info)
    return ChangedFile(
        path,
        status,
        hunks,
        old_path=old_path,
        additions=sum(len(h.added) for h in hunks),
        deletions=sum(len(h.removed) for h in hunks),
        old_mode=old_mode,
        new_mode=new_mode,
    )


def _modes(info: str) -> tuple[str | None, str | None]:
    old_mode = new_mode = None
    for line in info.splitlines():
        key, _, value = line.rpartition(" mode ")
        if key in ("old", "deleted file"):
            old_mode = value.strip()
        elif key in ("new", "new file"):
            new_mode = value.strip()
        elif line.startswith("index ") and line.count(" ") == 2:  # "index abc..def 100644": unchanged mode
            old_mode = new_mode = line.rsplit(" ", 1)[1]
    return old_mode, new_mode


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
    changeset: ChangeSet,
    path: str,
    start_line: int,
    end_line: int | None = None,
    side: Side = "RIGHT",
    slack: int = NEAREST_SLACK,
) -> Placement:
    """Where GitHub will accept a comment for lines start..end of `path` on `side`.

    EXACT when the range touches a hunk: it is clipped to the hunk holding its end line (or, failing
    that, the last hunk it overlaps), because a multi-line comment must stay inside one hunk. NEAREST
    when the range lies outside every hunk but within `slack` lines of one: the comment moves to that
    hunk's closest line, flagged. Otherwise OUTSIDE, which the publisher turns into a summary entry
    (never a 422). Every line returned is commentable on `side`.
    """
    end = end_line if end_line is not None and end_line >= start_line else start_line
    changed = changeset.get(path)
    if changed is None:
        return Placement(PlacementKind.OUTSIDE, path, side, reason="file not in the diff")
    spans = changed.spans(side)
    if not spans:
        return Placement(PlacementKind.OUTSIDE, path, side, reason="no commentable lines on this side")
    # the last hunk starting at or before `end` is the only one that can hold `end` or overlap the range
    i = bisect.bisect_right(spans, end, key=lambda sp: sp[0]) - 1
    if i >= 0 and spans[i][1] >= start_line:
        lo, hi = spans[i]
        first, last = max(start_line, lo), min(end, hi)
        reason = "" if (first, last) == (start_line, end) else "range clipped to its hunk"
        return Placement(PlacementKind.EXACT, path, side, last, first if first < last else None, reason)
    best: tuple[int, int] | None = None  # (distance, line)
    for j in (i, i + 1):
        if 0 <= j < len(spans):
            lo, hi = spans[j]
            candidate = hi if hi < start_line else lo
            distance = start_line - hi if hi < start_line else lo - end
            if distance <= slack and (best is None or distance < best[0]):
                best = (distance, candidate)
    if best is not None:
        return Placement(PlacementKind.NEAREST, path, side, best[1], reason=f"moved {best[0]} line(s) into its hunk")
    return Placement(PlacementKind.OUTSIDE, path, side, reason="line not in the diff")


def commentable_positions(changeset: ChangeSet) -> Iterator[tuple[str, Side, int]]:
    """Every (path, side, line) GitHub accepts a review comment on, file by file, RIGHT before LEFT."""
    sides: tuple[Side, Side] = ("RIGHT", "LEFT")
    for f in changeset.files:
        for side in sides:
            for hunk in f.hunks:
                for line in hunk.lines_on(side):
                    yield f.path, side, line


def is_commentable(
    changeset: ChangeSet, path: str, line: int, side: Side = "RIGHT", start_line: int | None = None
) -> bool:
    """GitHub's rule: `line` is in a hunk on `side`; a range start..line must lie within that same hunk."""
    changed = changeset.get(path)
    if changed is None:
        return False
    index = changed.hunk_index(line, side)
    if index is None:
        return False
    return start_line is None or (start_line < line and changed.hunk_index(start_line, side) == index)
