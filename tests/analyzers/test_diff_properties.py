"""Hypothesis properties of the change model: diffs round-trip, numbering is exact, placements are commentable."""

from __future__ import annotations

import difflib
import re
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzers.diff import (
    ChangedFile,
    ChangeSet,
    DiffError,
    LineKind,
    PlacementKind,
    Side,
    commentable_positions,
    is_commentable,
    place,
)

# a small alphabet makes diffs with many hunks, shared lines and repeated lines likely
LINES = st.lists(st.sampled_from(["a", "b", "c", "d", "", "    x = 1", "}", "def f():", "é ü"]), max_size=40)


def _text(lines: list[str], final_newline: bool = True) -> str:
    if not lines:
        return ""
    return "\n".join(lines) + ("\n" if final_newline else "")


def _apply(old: list[str], f: ChangedFile) -> list[str]:
    """Rebuild the new file from the old one and the hunks, checking every line number on the way."""
    out: list[str] = []
    pos = 0
    for h in f.hunks:
        start = h.old_start - 1 if h.old_length > 0 else h.old_start
        assert start >= pos
        out.extend(old[pos:start])
        pos = start
        for ln in h.lines:
            if ln.kind is not LineKind.ADDED:
                assert ln.old == pos + 1
                assert old[pos] == ln.text
                pos += 1
            if ln.kind is not LineKind.REMOVED:
                out.append(ln.text)
                assert ln.new == len(out)
    out.extend(old[pos:])
    return out


def _oracle(diff: str) -> set[tuple[Side, int]]:
    """GitHub's rule, read straight off the diff text: RIGHT = added + context, LEFT = removed + context."""
    ok: set[tuple[Side, int]] = set()
    old = new = 0
    for raw in diff.splitlines():
        m = re.match(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@", raw)
        if m:
            old, new = int(m.group(1)), int(m.group(2))  # an empty side (",0") never yields a line
            continue
        if raw.startswith(("---", "+++")) or not raw or raw.startswith("\\"):
            continue
        if raw[0] == " ":
            ok.add(("RIGHT", new))
            ok.add(("LEFT", old))
            old, new = old + 1, new + 1
        elif raw[0] == "+":
            ok.add(("RIGHT", new))
            new += 1
        elif raw[0] == "-":
            ok.add(("LEFT", old))
            old += 1
    return ok


def _check(old: list[str], new: list[str], diff: str) -> ChangeSet:
    cs = ChangeSet.from_unified_diff(diff)
    if old == new:
        assert cs.files == ()
        return cs
    assert len(cs.files) == 1
    f = cs.files[0]
    assert _apply(old, f) == new
    # every added line maps to exactly one new-file line, and the numbers are distinct
    added = [ln.new for h in f.hunks for ln in h.lines if ln.kind is LineKind.ADDED]
    assert all(n is not None and 1 <= n <= len(new) for n in added)
    assert len(added) == len(set(added)) == len(f.added_lines)
    assert {(side, line) for _, side, line in commentable_positions(cs)} == _oracle(diff)
    return cs


@settings(max_examples=150, deadline=None)
@given(old=LINES, new=LINES, context=st.integers(0, 4))
def test_difflib_diff_reproduces_new_text(old: list[str], new: list[str], context: int) -> None:
    diff = "".join(
        difflib.unified_diff(_text(old).splitlines(True), _text(new).splitlines(True), "a/f.txt", "b/f.txt", n=context)
    )
    _check(old, new, diff)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=LINES, new=LINES, old_eol=st.booleans(), new_eol=st.booleans(), context=st.integers(0, 3))
def test_git_diff_reproduces_new_text(
    old: list[str], new: list[str], old_eol: bool, new_eol: bool, context: int
) -> None:
    old_text, new_text = _text(old, old_eol), _text(new, new_eol)
    old, new = old_text.split("\n"), new_text.split("\n")  # what the files hold, line by line
    old, new = (old[:-1] if old[-1] == "" else old), (new[:-1] if new[-1] == "" else new)
    old_eol, new_eol = old_text.endswith("\n"), new_text.endswith("\n")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "old").write_text(old_text)
        Path(tmp, "new").write_text(new_text)
        proc = subprocess.run(
            ["git", "diff", "--no-index", "--no-color", f"-U{context}", "old", "new"],
            cwd=tmp,
            capture_output=True,
            check=False,
        )
    assert proc.returncode in (0, 1), proc.stderr
    diff = proc.stdout.decode()
    cs = ChangeSet.from_unified_diff(diff)
    if old_text == new_text:
        assert cs.files == ()
        return
    f = cs.files[0]
    assert _apply(old, f) == new
    # the newline at the end of the file: the last hunk says so when it reaches the end
    last = f.hunks[-1] if f.hunks else None
    if new and last is not None and last.new_start + last.new_length - 1 == len(new):
        assert last.new_missing_newline == (not new_eol)
    if old and last is not None and last.old_start + last.old_length - 1 == len(old):
        assert last.old_missing_newline == (not old_eol)
    assert {(side, line) for _, side, line in commentable_positions(cs)} == _oracle(diff)


@settings(max_examples=200, deadline=None)
@given(
    old=LINES,
    new=LINES,
    context=st.integers(0, 3),
    start=st.integers(-2, 50),
    length=st.integers(0, 12),
    side=st.sampled_from(["RIGHT", "LEFT"]),
    slack=st.integers(0, 5),
)
def test_place_only_returns_commentable_lines(
    old: list[str], new: list[str], context: int, start: int, length: int, side: Side, slack: int
) -> None:
    diff = "".join(
        difflib.unified_diff(_text(old).splitlines(True), _text(new).splitlines(True), "a/f.txt", "b/f.txt", n=context)
    )
    cs = ChangeSet.from_unified_diff(diff)
    end = start + length
    p = place(cs, "f.txt", start, end, side, slack=slack)
    ok = _oracle(diff)
    if p.kind is PlacementKind.OUTSIDE:
        assert p.line is None
        # nothing commentable within the range (widened by the slack) was missed
        assert not any((side, n) in ok for n in range(start - slack, end + slack + 1))
        return
    assert p.line is not None
    assert (side, p.line) in ok
    assert is_commentable(cs, "f.txt", p.line, side, p.start_line)
    if p.start_line is not None:
        assert p.start_line < p.line
        assert (side, p.start_line) in ok
    if p.kind is PlacementKind.EXACT:
        assert start <= (p.start_line or p.line) <= p.line <= end
        if (side, end) in ok:
            assert p.line == end
    else:
        assert p.start_line is None
        assert min(abs(p.line - start), abs(p.line - end)) <= slack


PIECES = st.sampled_from(
    [
        "diff --git a/x b/x\n", "--- a/x\n", "+++ b/x\n", "--- /dev/null\n", "+++ /dev/null\n", "@@ -1,2 +1,2 @@\n",
        "@@ -0,0 +1 @@\n", "@@ -1 +0,0 @@\n", " a\n", "+b\n", "-c\n", "\\ No newline at end of file\n",
        "Binary files a/x and b/x differ\n", "new file mode 100644\n", "deleted file mode 100644\n",
        "rename from x\n", "rename to y\n", "similarity index 90%\n", "old mode 100644\n", "new mode 100755\n",
        "index 123..456 100644\n", "\n", "garbage\n", "@@ -a +b @@\n", '"', "\r\n", "\x00", "\xff",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(PIECES, max_size=20))
def test_any_input_gives_a_changeset_or_a_diff_error(pieces: list[str]) -> None:
    text = "".join(pieces)
    try:
        cs = ChangeSet.from_unified_diff(text)
    except DiffError:
        return
    for f in cs.files:
        assert f.path
        for h in f.hunks:
            for ln in h.lines:
                assert (ln.old is None) == (ln.kind is LineKind.ADDED)
                assert (ln.new is None) == (ln.kind is LineKind.REMOVED)
    github = ChangeSet.from_github_files([{"filename": "x.py", "status": "modified", "changes": 1, "patch": text}])
    assert len(github.files) + len(github.skipped) == 1


@settings(max_examples=100, deadline=None)
@given(old=LINES, new=LINES, context=st.integers(0, 3))
def test_github_patch_and_unified_diff_agree(old: list[str], new: list[str], context: int) -> None:
    """The same change read as a unified diff and as GitHub's header-less `patch` gives the same hunks."""
    diff = "".join(
        difflib.unified_diff(_text(old).splitlines(True), _text(new).splitlines(True), "a/f.txt", "b/f.txt", n=context)
    )
    if not diff:
        return
    patch = diff.split("\n", 2)[2].rstrip("\n")  # GitHub drops the ---/+++ lines and the final newline
    from_diff = ChangeSet.from_unified_diff(diff).files[0]
    added, removed = len(from_diff.added_lines), len(from_diff.removed_lines)
    item = {"filename": "f.txt", "status": "modified", "additions": added, "deletions": removed, "patch": patch}
    from_github = ChangeSet.from_github_files([item]).files[0]
    assert from_github.hunks == from_diff.hunks
    assert from_github.commentable("RIGHT") == from_diff.commentable("RIGHT")
    assert from_github.commentable("LEFT") == from_diff.commentable("LEFT")
