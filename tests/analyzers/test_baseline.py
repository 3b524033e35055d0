"""Size findings against the base version: crossed here → kept; inherited and not worse → dropped; worse → said."""

from __future__ import annotations

import asyncio

from analyzers.base import AnalyzerContext
from analyzers.baseline import compare_with_base
from analyzers.diff import ChangeSet
from analyzers.quality import QualityAnalyzer


def long_function(name: str, body_lines: int, extra: str = "") -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(body_lines))
    return f"def {name}(a):\n{body}{extra}    return a\n"


def change(base: str, head: str, path: str = "pkg/mod.py") -> ChangeSet:
    import difflib

    diff = "".join(difflib.unified_diff(base.splitlines(True), head.splitlines(True), f"a/{path}", f"b/{path}", n=3))
    return ChangeSet.from_unified_diff(diff)


def quality(cs: ChangeSet, head: str, path: str = "pkg/mod.py") -> list:
    ctx = AnalyzerContext(changeset=cs, read_file={path: head}.get, mode="added")
    return [f for f in QualityAnalyzer().analyze(ctx) if f.rule == "quality/function-length"]


def test_a_one_line_fix_inside_an_already_long_function_is_not_reported() -> None:
    base = long_function("big", 100)
    head = base.replace("    x50 = 50\n", "    x50 = 51\n")
    cs = change(base, head)
    found = quality(cs, head)
    assert [f.symbol for f in found] == ["big"]  # the analyzer alone would report it
    kept, dropped = compare_with_base(found, cs, {"pkg/mod.py": base}.get)
    assert (kept, dropped) == ([], 1)


def test_growing_an_already_long_function_is_reported_with_what_it_was() -> None:
    base = long_function("big", 100)
    head = long_function("big", 110)
    cs = change(base, head)
    [kept], dropped = compare_with_base(quality(cs, head), cs, {"pkg/mod.py": base}.get)
    assert dropped == 0
    assert kept.extra["base_value"] == 102
    assert "it was already 102 before this change" in kept.message


def test_crossing_the_limit_in_this_change_and_new_functions_are_kept() -> None:
    base = long_function("grows", 70)
    head = long_function("grows", 90) + "\n\n" + long_function("fresh", 90)
    cs = change(base, head)
    found = quality(cs, head)
    kept, dropped = compare_with_base(found, cs, {"pkg/mod.py": base}.get)
    assert dropped == 0
    assert sorted(f.symbol for f in kept) == ["fresh", "grows"]
    assert all("base_value" not in f.extra for f in kept)


def test_a_renamed_file_is_compared_with_its_old_path_and_an_unreadable_base_keeps_everything() -> None:
    base = long_function("big", 100)
    head = base.replace("    x50 = 50\n", "    x50 = 51\n")
    diff = (
        "diff --git a/old/mod.py b/pkg/mod.py\nsimilarity index 99%\nrename from old/mod.py\nrename to pkg/mod.py\n"
        "--- a/old/mod.py\n+++ b/pkg/mod.py\n@@ -51,3 +51,3 @@\n"
        "     x49 = 49\n-    x50 = 50\n+    x50 = 51\n     x51 = 51\n"
    )
    cs = ChangeSet.from_unified_diff(diff)
    found = quality(cs, head)
    assert found
    assert compare_with_base(found, cs, {"old/mod.py": base}.get) == ([], 1)
    assert compare_with_base(found, cs, {}.get) == (found, 0)  # no base text: nothing to compare, kept
    assert compare_with_base(found, cs, None) == (found, 0)


def test_the_pipeline_says_how_many_it_left_out() -> None:
    from app.pipeline import ReviewInput, run_review
    from app.policy import Policy

    base = long_function("big", 100)
    head = base.replace("    x50 = 50\n", "    x50 = 51\n")
    inp = ReviewInput(
        changeset=change(base, head),
        read_head={"pkg/mod.py": head}.get,
        read_base={"pkg/mod.py": base}.get,
        policy=Policy.model_validate({"tests": {"enabled": False}}),
    )
    review = asyncio.run(run_review(inp))
    assert not [f for f in review.findings if f.rule == "quality/function-length"]
    assert any("1 size finding(s) left out" in n for n in review.notes)
