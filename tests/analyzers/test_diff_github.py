"""ChangeSet.from_github_files on real `GET /pulls/{n}/files` shapes (patch without header, no patch, 3,000 files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analyzers.diff import GITHUB_FILES_API_LIMIT, ChangeSet, FileStatus, PlacementKind, Skipped, place

DIFFS = Path(__file__).parent.parent / "fixtures" / "diffs"


def _items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((DIFFS / "github_files.json").read_text())
    return items


def test_statuses_and_skips() -> None:
    cs = ChangeSet.from_github_files(_items())
    assert [(f.path, f.status, f.old_path) for f in cs.files] == [
        ("src/app.py", FileStatus.MODIFIED, None),
        ("src/new_module.py", FileStatus.ADDED, None),
        ("src/old.py", FileStatus.REMOVED, None),
        ("docs/guide.md", FileStatus.RENAMED, "docs/old-guide.md"),
        ("lib/util.js", FileStatus.RENAMED, "lib/helpers.js"),
        ("scripts/run.sh", FileStatus.MODE_ONLY, None),
        ("win.txt", FileStatus.MODIFIED, None),
        ("src/copy.py", FileStatus.COPIED, "src/app.py"),
    ]
    assert cs.skipped == (
        Skipped("assets/logo.png", "binary file or empty file (no patch from GitHub)"),
        Skipped("data/huge.sql", "diff too large or binary (GitHub sent no patch)"),
    )


def test_patch_lines_and_numbers() -> None:
    cs = ChangeSet.from_github_files(_items())
    app = cs.get("src/app.py")
    assert app is not None
    assert len(app.hunks) == 2
    assert app.added_lines == {13, 14, 42}
    assert app.removed_lines == {13, 41}
    assert app.commentable("RIGHT") == frozenset(range(10, 18)) | frozenset(range(41, 44))
    assert app.hunks[0].header == "def handler(event):"
    assert (app.additions, app.deletions) == (2, 1)
    added = cs.get("src/new_module.py")
    assert added is not None
    assert added.added_lines == {1, 2, 3}
    removed = cs.get("src/old.py")
    assert removed is not None
    assert removed.commentable("LEFT") == {1, 2}
    assert removed.commentable("RIGHT") == frozenset()
    util = cs.get("lib/util.js")
    assert util is not None
    assert util.hunks[0].new_missing_newline
    win = cs.get("win.txt")
    assert win is not None
    assert [ln.text for ln in win.hunks[0].lines] == ["a", "b", "c"]


def test_placement_on_github_files() -> None:
    cs = ChangeSet.from_github_files(_items())
    assert place(cs, "src/app.py", 13, 14) == place(cs, "src/app.py", 13, 14)
    exact = place(cs, "src/app.py", 13, 14)
    assert (exact.kind, exact.start_line, exact.line) == (PlacementKind.EXACT, 13, 14)
    assert place(cs, "docs/guide.md", 1).kind is PlacementKind.OUTSIDE
    assert place(cs, "data/huge.sql", 1).kind is PlacementKind.OUTSIDE


def test_files_api_limit_3000_entries() -> None:
    items = [
        {
            "filename": f"pkg/m{i}.py",
            "status": "modified",
            "additions": 1,
            "deletions": 0,
            "changes": 1,
            "patch": f"@@ -1,2 +1,3 @@\n a = {i}\n+b = {i}\n c = {i}",
        }
        for i in range(GITHUB_FILES_API_LIMIT + 5)
    ]
    cs = ChangeSet.from_github_files(items)
    assert len(cs.files) == GITHUB_FILES_API_LIMIT
    assert all(f.added_lines == {2} for f in cs.files)
    assert [s.path for s in cs.skipped] == [f"pkg/m{i}.py" for i in range(3000, 3005)]
    assert all("3000-file" in s.reason for s in cs.skipped)


def test_unparseable_patch_is_skipped_not_raised() -> None:
    cs = ChangeSet.from_github_files(
        [{"filename": "x.py", "status": "modified", "changes": 3, "patch": "@@ -1,5 +1,5 @@\n a"}]
    )
    assert cs.files == ()
    assert cs.skipped == (Skipped("x.py", "patch could not be parsed"),)


def test_items_without_filename_are_ignored() -> None:
    assert ChangeSet.from_github_files([{"status": "added"}]) == ChangeSet()
