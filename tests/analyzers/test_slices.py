"""Context slices: whole enclosing symbols, bounded, with exact new-file line numbers and changed lines marked."""

from __future__ import annotations

import difflib
import itertools
import re
import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers.diff import ChangeSet
from analyzers.slices import Slice, context_slices
from analyzers.syntax import build_syntax_map

NUMBERED = re.compile(r"^([+ -]) +(\d*) \| (.*)$")


def _git_lines(text: str) -> list[str]:
    """Lines with their ends, split on "\\n" only, as git does (str.splitlines also splits on form feeds)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _diff(path: str, old: str, new: str) -> ChangeSet:
    text = "".join(difflib.unified_diff(_git_lines(old), _git_lines(new), f"a/{path}", f"b/{path}"))
    return ChangeSet.from_unified_diff(text)


def _slices(path: str, old: str, new: str, **kwargs: object) -> list[Slice]:
    cs = _diff(path, old, new)
    smap = build_syntax_map(cs, lambda p: new)
    return context_slices(cs, smap, lambda p: new, **kwargs)  # type: ignore[arg-type]


def _check_numbers(s: Slice, new: str) -> list[int]:
    """Every numbered line shows exactly the new file's line; returns the numbers, which must ascend."""
    lines = new.split("\n")  # git's lines: form feeds and U+2028 do not end a line
    numbers: list[int] = []
    for row in s.text.split("\n"):
        m = NUMBERED.match(row)
        if m is None:
            assert row.strip() == "⋮"
            continue
        if m.group(1) == "-":
            assert m.group(2) == ""
            continue
        n = int(m.group(2))
        assert lines[n - 1] == m.group(3)
        numbers.append(n)
    assert numbers == sorted(set(numbers))
    assert numbers[0] == s.start_line
    assert numbers[-1] == s.end_line
    return numbers


OLD = """\
import os


class Cart:
    def total(self, items):
        def helper(x):
            return x

        return sum(helper(i) for i in items)

    def other(self):
        return 1


def free(a):
    c = 1
    return a
"""
NEW = OLD.replace("            return x\n", "            return x * 2\n").replace("    c = 1\n", "")


def test_nested_change_gives_the_innermost_function() -> None:
    slices = _slices("m.py", OLD, NEW)
    assert [(s.symbol, s.start_line, s.end_line) for s in slices] == [
        ("Cart.total.helper", 6, 7),
        ("free", 15, 16),
    ]
    assert slices[0].text == "  6 |         def helper(x):\n+ 7 |             return x * 2"
    assert slices[0].changed == (7,)
    assert slices[0].outer == ("class Cart", "def total(self, items)")
    assert slices[1].changed == ()
    assert slices[1].outer == ()
    for s in slices:
        _check_numbers(s, NEW)


def test_removed_lines_can_be_shown_in_place() -> None:
    slices = _slices("m.py", OLD, NEW, include_removed=True)
    assert slices[1].text == "  15 | def free(a):\n-    |     c = 1\n  16 |     return a"


def test_two_hunks_in_one_function_make_one_slice() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(40))
    old = f"def big():\n{body}    return 0\n"
    new = old.replace("    x2 = 2\n", "    x2 = 20\n").replace("    x35 = 35\n", "    x35 = 350\n")
    slices = _slices("m.py", old, new)
    assert [(s.symbol, s.start_line, s.end_line, s.changed) for s in slices] == [("big", 1, 42, (4, 37))]


def test_long_symbol_is_bounded_and_keeps_its_header() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(300))
    old = f"def big(a,\n        b):\n{body}    return 0\n"
    new = old.replace("    x150 = 150\n", "    x150 = -1\n")
    (s,) = _slices("m.py", old, new, max_lines=20)
    assert s.symbol == "big"
    numbers = _check_numbers(s, new)
    assert len(numbers) <= 20
    assert numbers[:3] == [1, 2, 3]  # the signature
    assert 153 in numbers
    assert s.changed == (153,)
    assert "⋮" in s.text


def test_module_level_change_gets_a_window() -> None:
    old = "".join(f"X{i} = {i}\n" for i in range(30))
    new = old.replace("X15 = 15\n", "X15 = 0\n")
    (s,) = _slices("m.py", old, new)
    assert (s.symbol, s.start_line, s.end_line) == (None, 11, 21)
    _check_numbers(s, new)


def test_file_without_grammar_uses_windows_and_read_file() -> None:
    old = "".join(f"line {i}\n" for i in range(1, 31))
    new = old.replace("line 3\n", "line three\n")
    cs = _diff("notes.txt", old, new)
    slices = context_slices(cs, None, lambda p: new)
    assert [(s.symbol, s.start_line, s.end_line, s.changed) for s in slices] == [(None, 1, 8, (3,))]


def test_removed_and_unreadable_files_have_no_slices() -> None:
    cs = _diff("gone.py", "x = 1\n", "")
    assert context_slices(cs, None, lambda p: None) == []


LINE = st.sampled_from(
    ["def f():", "    x = 1", "    return x", "", "class A:", "    def m(self):", "        y = 2", "\x0c", "# a\u2028b"]
)


@settings(max_examples=60, deadline=None)
@given(
    old=st.lists(LINE, max_size=120),
    new=st.lists(LINE, min_size=1, max_size=120),
    max_lines=st.integers(5, 60),
)
def test_slices_show_true_lines_and_every_changed_line_that_fits(
    old: list[str], new: list[str], max_lines: int
) -> None:
    old_text, new_text = "".join(x + "\n" for x in old), "".join(x + "\n" for x in new)
    cs = _diff("m.py", old_text, new_text)
    smap = build_syntax_map(cs, lambda p: new_text)
    slices = context_slices(cs, smap, lambda p: new_text, max_lines=max_lines)
    shown: set[int] = set()
    for s in slices:
        numbers = _check_numbers(s, new_text)
        assert len(numbers) <= max_lines
        shown.update(s.changed)
        assert set(s.changed) <= set(numbers)
    for s, t in itertools.pairwise(slices):
        assert s.end_line < t.start_line  # merged: no two slices overlap
    if cs.files:
        f = cs.files[0]
        if len(f.added_lines) + len(f.removed_lines) + 3 <= max_lines:
            assert f.added_lines <= shown  # every changed line is kept while they fit


def test_far_apart_changes_in_one_long_symbol_are_both_shown() -> None:
    methods = "".join(f"    def m{i}(self):\n        return {i}\n\n" for i in range(100))
    old = f"class Big:\n    limit = 1\n\n{methods}"
    new = old.replace("    limit = 1\n", "    limit = 2\n").replace("        return 95\n", "        return -95\n")
    slices = _slices("m.py", old, new, max_lines=30)
    changed = {n for s in slices for n in s.changed}
    assert changed == {2, 2 + 1 + 95 * 3 + 2}
    for s in slices:
        assert len(_check_numbers(s, new)) <= 30


def test_end_to_end_on_a_git_repository(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "shop.py").write_text(OLD)
    (tmp_path / "web.ts").write_text("export class A {\n  run(x: number): number {\n    return x;\n  }\n}\n")
    git("add", ".")
    git("commit", "-qm", "base")
    (tmp_path / "shop.py").write_text(NEW)
    (tmp_path / "web.ts").write_text("export class A {\n  run(x: number): number {\n    return x * 2;\n  }\n}\n")
    git("commit", "-qam", "head")

    cs = ChangeSet.from_git(tmp_path, "HEAD~1", "HEAD")
    read = lambda p: (tmp_path / p).read_text()  # noqa: E731
    smap = build_syntax_map(cs, read)
    slices = context_slices(cs, smap, read)
    assert [(s.path, s.symbol, s.changed) for s in slices] == [
        ("shop.py", "Cart.total.helper", (7,)),
        ("shop.py", "free", ()),
        ("web.ts", "A.run", (3,)),
    ]
    assert {(c.path, c.symbol.qualname) for c in smap.changed_symbols()} >= {("web.ts", "A.run"), ("shop.py", "free")}
