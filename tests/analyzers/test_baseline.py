"""Size findings against the base version: crossed here → kept; inherited and not worse → dropped; worse → said."""

from __future__ import annotations

import asyncio

from analyzers.base import AnalyzerContext, Severity
from analyzers.baseline import METRICS, compare_with_base, merge_per_function
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
    assert kept.severity == Severity.LOW  # the summary, not an inline comment


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


def test_one_function_over_several_limits_gets_one_finding() -> None:
    params = ", ".join(f"p{i}" for i in range(9))
    branches = "".join(f"    if p{i}:\n        x = {i}\n" for i in range(9))
    head = f"def wide({params}):\n{branches}" + "".join(f"    y{i} = {i}\n" for i in range(80)) + "    return 0\n"
    cs = change("", head)
    ctx = AnalyzerContext(changeset=cs, read_file={"pkg/mod.py": head}.get, mode="added")
    found = [f for f in QualityAnalyzer().analyze(ctx) if f.symbol == "wide" and f.rule in METRICS]
    assert {f.rule for f in found} >= {"quality/function-length", "quality/too-many-params"}
    [merged] = [f for f in merge_per_function(found) if f.symbol == "wide"]
    assert merged.extra["also"]
    assert "Also over its limits:" in merged.message
    assert merge_per_function([found[0]]) == [found[0]]


def test_docstrings_do_not_count_towards_length_and_stubs_and_overloads_are_not_measured() -> None:
    doc = '    """' + "\n".join(["Documentation."] * 90) + '\n    """\n'
    head = "def documented(a):\n" + doc + "    return a\n"
    cs = change("", head)
    assert quality(cs, head) == []  # 93 lines, 91 of them docstring
    stub = (
        "from typing import overload\n\n\n@overload\ndef f("
        + ", ".join(f"a{i}: int" for i in range(9))
        + ") -> int: ...\n"
    )
    cs = change("", stub, "pkg/api.py")
    ctx = AnalyzerContext(changeset=cs, read_file={"pkg/api.py": stub}.get, mode="added")
    assert [f for f in QualityAnalyzer().analyze(ctx) if f.rule == "quality/too-many-params"] == []
    plain = stub.replace("@overload\n", "")
    cs = change("", plain, "pkg/api.pyi")
    ctx = AnalyzerContext(changeset=cs, read_file={"pkg/api.pyi": plain}.get, mode="added")
    assert [f for f in QualityAnalyzer().analyze(ctx) if f.rule == "quality/too-many-params"] == []
    cs = change("", plain, "pkg/api.py")
    ctx = AnalyzerContext(changeset=cs, read_file={"pkg/api.py": plain}.get, mode="added")
    assert [f.rule for f in QualityAnalyzer().analyze(ctx) if f.rule == "quality/too-many-params"] == [
        "quality/too-many-params"
    ]


def test_an_extracted_function_is_not_new_code() -> None:
    """Extract-method: `helper` is new by name, but its lines are the ones the change removed from `big`."""
    body = "".join(f"    value_{i} = compute({i}, a)\n" for i in range(200))  # over twice the limit: medium
    base = f"def big(a):\n{body}    return a\n"
    head = f"def big(a):\n    return helper(a)\n\n\ndef helper(a):\n{body}    return a\n"
    cs = change(base, head)
    found = quality(cs, head)
    assert [f.symbol for f in found] == ["helper"]
    [kept], dropped = compare_with_base(found, cs, {"pkg/mod.py": base}.get, read_head={"pkg/mod.py": head}.get)
    assert dropped == 0
    assert kept.severity == Severity.LOW
    assert kept.extra["moved"] is True
    assert "already there before this change" in kept.message
    fresh = head.replace("compute(", "transform(")  # really new lines: still reported as they are
    cs = change(base, fresh)
    [still], _ = compare_with_base(
        quality(cs, fresh), cs, {"pkg/mod.py": base}.get, read_head={"pkg/mod.py": fresh}.get
    )
    assert "moved" not in still.extra
