"""Golden tests of the change model on real `git diff` output (fixtures recorded from git 2.x, plus live git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from analyzers.diff import ChangedFile, ChangeSet, DiffError, FileStatus, LineKind, Skipped

DIFFS = Path(__file__).parent.parent / "fixtures" / "diffs"


def _file(cs: ChangeSet, path: str) -> ChangedFile:
    changed = cs.get(path)
    assert changed is not None, f"{path} missing from {[f.path for f in cs.files]}"
    return changed


def _lines(f: ChangedFile) -> list[tuple[str, int | None, int | None, str]]:
    return [(ln.kind.value, ln.old, ln.new, ln.text) for h in f.hunks for ln in h.lines]


@pytest.fixture(scope="module")
def cases() -> ChangeSet:
    return ChangeSet.from_unified_diff((DIFFS / "git_cases.diff").read_bytes())


def test_statuses(cases: ChangeSet) -> None:
    statuses = {f.path: (f.status, f.old_path) for f in cases.files}
    assert statuses == {
        "copied.txt": (FileStatus.COPIED, "ren_edit.txt"),
        "copysrc.txt": (FileStatus.MODIFIED, None),
        "crlf.txt": (FileStatus.MODIFIED, None),
        "empty_new.txt": (FileStatus.RENAMED, "empty_gone.txt"),
        "gone.txt": (FileStatus.REMOVED, None),
        "latin1.txt": (FileStatus.MODIFIED, None),
        "mode.sh": (FileStatus.MODE_ONLY, None),
        "noeol.txt": (FileStatus.MODIFIED, None),
        "renamed_edit.txt": (FileStatus.RENAMED, "ren_edit.txt"),
        "renamed_same.txt": (FileStatus.RENAMED, "ren_same.txt"),
        "with space.txt": (FileStatus.MODIFIED, None),
        "ünï.txt": (FileStatus.ADDED, None),  # git quoted it as "b/\303\274n\303\257.txt"
    }
    assert cases.skipped == (Skipped("bin.dat", "binary file"),)


def test_rename_without_edits_has_no_hunks(cases: ChangeSet) -> None:
    f = _file(cases, "renamed_same.txt")
    assert f.hunks == ()
    assert f.commentable() == frozenset()


def test_rename_with_edits(cases: ChangeSet) -> None:
    f = _file(cases, "renamed_edit.txt")
    assert f.added_lines == {5}
    assert f.removed_lines == {5}
    assert f.commentable("RIGHT") == frozenset(range(2, 9))
    assert f.commentable("LEFT") == frozenset(range(2, 9))
    assert f.hunks[0].header == "line1"


def test_no_newline_at_end_of_file(cases: ChangeSet) -> None:
    f = _file(cases, "noeol.txt")
    assert _lines(f) == [(" ", 1, 1, "a"), ("-", 2, None, "b"), ("+", None, 2, "b"), ("+", None, 3, "c")]
    assert f.hunks[0].old_missing_newline
    assert not f.hunks[0].new_missing_newline


def test_crlf_lines_lose_only_the_cr(cases: ChangeSet) -> None:
    assert _lines(_file(cases, "crlf.txt")) == [(" ", 1, 1, "x"), ("-", 2, None, "y"), ("+", None, 2, "Y")]


def test_non_utf8_bytes_are_replaced(cases: ChangeSet) -> None:
    f = _file(cases, "latin1.txt")
    assert _lines(f)[0] == (" ", 1, 1, "caf\ufffd")
    assert _lines(f)[2] == ("+", None, 2, "new\ufffd")


def test_removed_file_is_commentable_on_the_left_only(cases: ChangeSet) -> None:
    f = _file(cases, "gone.txt")
    assert f.commentable("RIGHT") == frozenset()
    assert f.commentable("LEFT") == {1}


def test_counts(cases: ChangeSet) -> None:
    assert _file(cases, "copysrc.txt").additions == 1
    assert _file(cases, "renamed_edit.txt").deletions == 1
    assert cases.changed_line_count == sum(f.additions + f.deletions for f in cases.files)


def test_whole_diff_through_crlf_conversion_parses_the_same(cases: ChangeSet) -> None:
    crlf = (DIFFS / "git_cases.diff").read_bytes().replace(b"\n", b"\r\n")
    assert ChangeSet.from_unified_diff(crlf) == cases


def test_empty_files_binary_added_and_quoted_names() -> None:
    cs = ChangeSet.from_unified_diff((DIFFS / "git_empty_and_quoted.diff").read_bytes())
    assert [(f.path, f.status, len(f.hunks)) for f in cs.files] == [
        ("newe", FileStatus.ADDED, 0),
        ("olde", FileStatus.REMOVED, 0),
        ('tab\t"q".txt', FileStatus.ADDED, 1),
    ]
    assert cs.skipped == (Skipped("newbin", "binary file"),)


@pytest.mark.parametrize("diff", ["", "\n", b"", b"  \n"])
def test_empty_diff(diff: str | bytes) -> None:
    cs = ChangeSet.from_unified_diff(diff)
    assert cs.files == ()
    assert cs.skipped == ()
    assert cs.changed_line_count == 0


def test_malformed_diff_raises_diff_error() -> None:
    with pytest.raises(DiffError):
        ChangeSet.from_unified_diff("--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n")


# ---- live git ------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    _git(tmp_path, "config", "core.autocrlf", "false")
    return tmp_path


def test_from_git_live_cases(repo: Path) -> None:
    body = "".join(f"line{i}\n" for i in range(1, 21))
    (repo / "a.py").write_text(body)
    (repo / "noeol.txt").write_bytes(b"x\ny")
    (repo / "tool.sh").write_text("echo\n")
    (repo / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "mv", "a.py", "b.py")
    (repo / "b.py").write_text(body.replace("line10\n", "line10\nnew\n"))
    (repo / "noeol.txt").write_bytes(b"x\nz")
    (repo / "tool.sh").chmod(0o755)
    (repo / "crlf.txt").write_bytes(b"one\r\nTWO\r\n")
    (repo / "data.bin").write_bytes(bytes(range(256)))
    (repo / "latin.txt").write_bytes(b"\xe9t\xe9\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "head")

    cs = ChangeSet.from_git(repo, "HEAD~1", "HEAD")
    renamed = _file(cs, "b.py")
    assert (renamed.status, renamed.old_path, renamed.added_lines) == (FileStatus.RENAMED, "a.py", frozenset({11}))
    noeol = _file(cs, "noeol.txt")
    assert noeol.hunks[0].old_missing_newline
    assert noeol.hunks[0].new_missing_newline
    assert _file(cs, "tool.sh").status is FileStatus.MODE_ONLY
    assert [ln.text for h in _file(cs, "crlf.txt").hunks for ln in h.lines if ln.kind is LineKind.ADDED] == ["TWO"]
    assert _file(cs, "latin.txt").hunks[0].lines[0].text == "\ufffdt\ufffd"
    assert cs.skipped == (Skipped("data.bin", "binary file"),)
    assert ChangeSet.from_git(repo, "HEAD", "HEAD").files == ()


def test_from_git_working_tree_and_merge_base(repo: Path) -> None:
    (repo / "f.txt").write_text("a\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "checkout", "-qb", "topic")
    (repo / "f.txt").write_text("a\nb\n")
    _git(repo, "commit", "-qam", "topic")
    _git(repo, "checkout", "-q", "main")
    (repo / "other.txt").write_text("o\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "main moves on")
    direct = ChangeSet.from_git(repo, "main", "topic")
    assert {f.path for f in direct.files} == {"f.txt", "other.txt"}
    pr = ChangeSet.from_git(repo, "main", "topic", merge_base=True)
    assert [f.path for f in pr.files] == ["f.txt"]
    (repo / "other.txt").write_text("o\np\n")
    worktree = ChangeSet.from_git(repo, "HEAD")
    assert [(f.path, f.added_lines) for f in worktree.files] == [("other.txt", frozenset({2}))]


def test_from_git_bad_ref_raises(repo: Path) -> None:
    with pytest.raises(DiffError, match="git diff failed"):
        ChangeSet.from_git(repo, "no-such-ref", "HEAD")


def test_start_git_runs_git_while_the_caller_works_and_result_reads_it(repo: Path) -> None:
    _git(repo, "commit", "-q", "--allow-empty", "-m", "base")
    (repo / "big.txt").write_text("".join(f"line {i}\n" for i in range(20_000)))  # more than a pipe holds
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "big")
    pending = ChangeSet.start_git(repo, "HEAD~1", "HEAD")
    bad = ChangeSet.start_git(repo, "no-such-ref", "HEAD")
    assert pending.result() == ChangeSet.from_git(repo, "HEAD~1", "HEAD")
    assert len(pending.result().files[0].added_lines) == 20_000
    with pytest.raises(DiffError, match="git diff failed"):
        bad.result()


def test_file_modes(cases: ChangeSet) -> None:
    modes = {f.path: (f.old_mode, f.new_mode) for f in cases.files}
    assert modes["mode.sh"] == ("100644", "100755")
    assert modes["gone.txt"] == ("100644", None)
    assert modes["ünï.txt"] == (None, "100644")
    assert modes["crlf.txt"] == ("100644", "100644")


def test_git_show_and_format_patch_output(repo: Path) -> None:
    (repo / "a.py").write_text("a = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    (repo / "a.py").write_text("a = 1\nb = 2\n")
    _git(repo, "commit", "-qam", "Subject line\n\nBody mentioning --- a/x and +++ b/y and @@ -1 +1 @@")
    for command in (["show", "--no-color", "HEAD"], ["format-patch", "-1", "--stdout", "HEAD"]):
        out = subprocess.run(["git", "-C", str(repo), *command], capture_output=True, check=True).stdout
        cs = ChangeSet.from_unified_diff(out)
        assert [(f.path, f.added_lines) for f in cs.files] == [("a.py", frozenset({2}))], command
