"""Smoke tests of the change model on real `git diff` output (golden cases live in test_diff_git.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from analyzers.diff import ChangeSet, FileStatus, PlacementKind, place


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_range_statuses(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "f.py").write_text("a = 1\nb = 2\nc = 3\n")
    (tmp_path / "old.txt").write_text("one\ntwo\nthree\nfour\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "base")
    (tmp_path / "f.py").write_text("a = 1\nb = 20\nc = 3\nd = 4\n")
    _git(tmp_path, "mv", "old.txt", "new.txt")
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01\x02")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "head")

    cs = ChangeSet.from_git(tmp_path, "HEAD~1", "HEAD")
    f = cs.get("f.py")
    assert f is not None
    assert f.status is FileStatus.MODIFIED
    assert f.added_lines == {2, 4}
    renamed = cs.get("new.txt")
    assert renamed is not None
    assert renamed.status is FileStatus.RENAMED
    assert renamed.old_path == "old.txt"
    assert [s.path for s in cs.skipped] == ["bin.dat"]
    assert place(cs, "f.py", 2).kind is PlacementKind.EXACT
    assert place(cs, "f.py", 40).kind is PlacementKind.OUTSIDE
