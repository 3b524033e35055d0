"""The pure parts of benchmarks/noise.py: the `git diff -U0` added-lines parser and the inline-comment rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import noise
from benchmarks.noise import (
    added_lines,
    added_python_lines,
    cached_sdist,
    inline_count,
    on_added,
    per_thousand,
    posts_inline,
)

DIFF_U0 = """\
diff --git a/pkg/mod.py b/pkg/mod.py
index 1111111..2222222 100644
--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -3 +3 @@ def f():
-    return 1
+    return 2
@@ -10,0 +11,3 @@ def g():
+    a = 1
+    b = 2
+    return a + b
@@ -20,2 +23,0 @@ def h():
-    x = 1
-    y = 2
diff --git a/gone.py b/gone.py
deleted file mode 100644
index 3333333..0000000
--- a/gone.py
+++ /dev/null
@@ -1,2 +0,0 @@
-import os
-print(os.name)
diff --git a/new.py b/new.py
new file mode 100644
index 0000000..4444444
--- /dev/null
+++ b/new.py
@@ -0,0 +1,2 @@
++subprocess.run("ls", shell=True)
diff --git "a/odd \\"name\\".py" "b/odd \\"name\\".py"
--- "a/odd \\"name\\".py"
+++ "b/odd \\"name\\".py"
@@ -1 +1 @@
-x = 1
+x = 2
"""


def test_added_lines_reads_hunk_headers_per_file() -> None:
    added = added_lines(DIFF_U0)
    assert added["pkg/mod.py"] == {3, 11, 12, 13}  # the pure deletion at -20,2 +23,0 adds nothing
    assert added["new.py"] == {1, 2}
    assert "gone.py" not in added
    assert added['odd "name".py'] == {1}


def test_added_lines_on_empty_diff() -> None:
    assert added_lines("") == {}


def test_added_lines_matches_real_git(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return noise.git(tmp_path, *args)

    git("init", "-q")
    (tmp_path / "a.py").write_text("one\ntwo\nthree\nfour\n")
    git("add", "a.py")
    git("commit", "-qm", "base")
    (tmp_path / "a.py").write_text("one\nTWO\nthree\nfour\nfive\nsix\n")
    (tmp_path / "b.py").write_text("x\n")
    git("add", "a.py", "b.py")
    git("commit", "-qm", "head")
    assert added_lines(git("diff", "-U0", "HEAD~1", "HEAD")) == {"a.py": {2, 5, 6}, "b.py": {1}}
    assert added_python_lines(git("diff", "--numstat", "HEAD~1", "HEAD")) == (2, 4)


def test_added_python_lines_counts_py_files_only() -> None:
    numstat = "3\t1\tpkg/mod.py\n10\t0\tREADME.md\n-\t-\tlogo.png\n4\t4\tpkg/{old.py => new.py}\n"
    assert added_python_lines(numstat) == (4, 7)


def test_on_added_keeps_results_on_added_lines() -> None:
    added = {"a.py": {2, 5}}
    results = [("a.py", 2, "B101"), ("a.py", 3, "B101"), ("b.py", 2, "S101")]
    assert on_added(results, added) == [("a.py", 2, "B101")]


@pytest.mark.parametrize(
    ("finding", "posted"),
    [
        ({"severity": "critical", "analyzer": "secrets"}, True),
        ({"severity": "high", "analyzer": "security", "confidence": "high"}, True),
        ({"severity": "medium", "analyzer": "quality"}, True),
        ({"severity": "low", "analyzer": "quality"}, False),
        ({"severity": "info", "analyzer": "quality"}, False),
        ({"severity": "high", "analyzer": "security", "confidence": "low"}, False),
        ({"severity": "high", "analyzer": "secrets", "confidence": "low"}, True),  # the floor is security's only
    ],
)
def test_posts_inline_default_policy(finding: dict[str, str], posted: bool) -> None:
    assert posts_inline(finding) is posted


def test_posts_inline_with_other_thresholds() -> None:
    assert posts_inline({"severity": "low"}, min_severity="low")
    assert not posts_inline({"severity": "medium"}, min_severity="high")


def test_inline_count_applies_threshold_and_cap() -> None:
    findings = [{"severity": "high"}] * 10 + [{"severity": "medium"}] * 5 + [{"severity": "low"}] * 7
    assert inline_count(findings) == 12  # 15 eligible, comments.max_comments: 12
    assert inline_count(findings, max_comments=100) == 15
    assert inline_count(findings, min_severity="high") == 10
    assert inline_count([]) == 0


def test_per_thousand() -> None:
    assert per_thousand(3, 1500) == "2.00"
    assert per_thousand(1, 0) == "n/a"


def test_cached_sdist_matches_normalised_names(tmp_path: Path) -> None:
    for name in ("Django-5.0.1.tar.gz", "flask-3.0.0.tar.gz", "zope.interface-6.0.zip", "notes.txt"):
        (tmp_path / name).write_text("")
    assert cached_sdist("django", "5.0.1", tmp_path) == tmp_path / "Django-5.0.1.tar.gz"
    assert cached_sdist("Flask", "3.0.0", tmp_path) == tmp_path / "flask-3.0.0.tar.gz"
    assert cached_sdist("zope-interface", "6.0", tmp_path) == tmp_path / "zope.interface-6.0.zip"
    assert cached_sdist("flask", "2.3.3", tmp_path) is None
    assert cached_sdist("flask", "3.0.0", tmp_path / "missing") is None
