"""The pipeline: diff filter, crash isolation, policy filters, dedupe/occurrence, ranking, degradation."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from analyzers.base import AnalyzerContext, Confidence, Finding, Severity
from analyzers.diff import ChangeSet
from app.pipeline import ReviewInput, dedupe_and_rank, in_scope, run_review

OLD = "def f(x):\n    return x\n\n\ndef g(y):\n    return y\n"
NEW = "def f(x):\n    return eval(x)\n\n\ndef g(y):\n    return y\n"
DIFF = """--- a/m.py
+++ b/m.py
@@ -1,6 +1,6 @@
 def f(x):
-    return x
+    return eval(x)
 
 
 def g(y):
     return y
"""


def finding(line: int, rule: str = "t/r", sev: Severity = Severity.HIGH, code: str = "x", **kw: object) -> Finding:
    return Finding(rule, rule.split("/")[0], sev, Confidence.HIGH, "msg", "m.py", line, line, code=code, **kw)  # type: ignore[arg-type]


@dataclass
class Fixed:
    name: str
    out: tuple[Finding, ...]

    def analyze(self, ctx: AnalyzerContext) -> list[Finding]:
        assert ctx.read_file("m.py") == NEW
        return list(self.out)


class Crashing:
    name = "boom"

    def analyze(self, ctx: AnalyzerContext) -> list[Finding]:
        raise RuntimeError("kaboom")


def review(*analyzers: object, **kw: object):
    cs = ChangeSet.from_unified_diff(DIFF)
    inp = ReviewInput(cs, {"m.py": NEW}.get, {"m.py": OLD}.get, analyzers=list(analyzers), **kw)  # type: ignore[arg-type]
    return asyncio.run(run_review(inp))


def test_added_mode_reports_only_changed_lines_and_survives_a_crash() -> None:
    r = review(Fixed("t", (finding(2, code="eval(x)"), finding(6, code="return y"))), Crashing())
    assert [f.start_line for f in r.findings] == [2]
    assert r.failed_analyzers == (("boom", "RuntimeError: kaboom"),)
    assert r.reviewed_files == ("m.py",)


class InTurn:
    """A compute-only analyzer: the pipeline runs these one after another in one shared thread."""

    cpu_bound = True

    def __init__(self, name: str, line: int, ran: list[tuple[str, int]], crash: bool = False) -> None:
        self.name, self.line, self.ran, self.crash = name, line, ran, crash

    def analyze(self, ctx: AnalyzerContext) -> list[Finding]:
        self.ran.append((self.name, threading.get_ident()))
        if self.crash:
            raise ValueError(f"{self.name} broke")
        return [finding(self.line, rule=f"{self.name}/r", code=f"line {self.line}")]


def test_compute_only_analyzers_share_one_thread_and_a_crash_spares_the_next() -> None:
    ran: list[tuple[str, int]] = []
    analyzers = (InTurn("a", 2, ran), InTurn("b", 2, ran, crash=True), Crashing(), InTurn("c", 2, ran))
    r = review(*analyzers)
    assert [name for name, _ in ran] == ["a", "b", "c"]  # in the given order, the one after a crash too
    assert len({ident for _, ident in ran}) == 1
    assert sorted(f.rule for f in r.findings) == ["a/r", "c/r"]
    assert r.failed_analyzers == (("b", "ValueError: b broke"), ("boom", "RuntimeError: kaboom"))  # list order


def test_diff_context_and_file_modes() -> None:
    out = (finding(2, code="a"), finding(5, code="b"), finding(40, code="c"))
    assert sorted(f.start_line for f in review(Fixed("t", out), mode="diff_context").findings) == [2, 5]
    assert sorted(f.start_line for f in review(Fixed("t", out), mode="file").findings) == [2, 5, 40]


def test_identical_findings_collapse_and_repeated_code_gets_distinct_ids() -> None:
    same = finding(2, code="eval(x)")
    ranked = dedupe_and_rank([same, same, finding(2, code="eval(x)", sev=Severity.LOW)])
    assert len(ranked) == 1
    twice = dedupe_and_rank([finding(2, code="eval(x)"), finding(3, code="eval(x)")])
    assert len({f.id for f in twice}) == 2


def test_ranking_puts_severity_first() -> None:
    low = finding(2, rule="t/low", sev=Severity.LOW)
    crit = finding(3, rule="t/crit", sev=Severity.CRITICAL)
    assert [f.rule for f in dedupe_and_rank([low, crit])] == ["t/crit", "t/low"]


def test_oversized_file_is_skipped_with_reason() -> None:
    big = NEW + "# a comment line that is long enough to add up\n" * 40_000
    cs = ChangeSet.from_unified_diff(DIFF)
    inp = ReviewInput(cs, {"m.py": big}.get, analyzers=[])
    r = asyncio.run(run_review(inp))
    assert r.reviewed_files == ()
    assert any(s.path == "m.py" and "too large" in s.reason for s in r.skipped)


class BrokenLLM:
    async def review(self, request: object) -> object:
        raise ConnectionError("anthropic down")


def test_llm_failure_degrades_to_analyzers_only() -> None:
    r = review(Fixed("t", (finding(2, code="eval(x)"),)), llm=BrokenLLM())
    assert len(r.findings) == 1
    assert not r.llm.used
    assert any("analyzers only" in n for n in r.notes)


@given(shift=st.integers(min_value=0, max_value=10_000), indent=st.sampled_from(["", "  ", "\t", "        "]))
def test_fingerprint_survives_line_shifts_and_reindentation(shift: int, indent: str) -> None:
    a = finding(2, code="return eval(x)")
    b = finding(2 + shift, code=f"{indent}return   eval(x)")
    assert a.id == b.id
    assert a.id != finding(2, code="return eval(y)").id


def test_in_scope_uses_the_finding_side() -> None:
    cs = ChangeSet.from_unified_diff(DIFF)
    assert in_scope(finding(2), cs, "added")
    assert not in_scope(finding(1), cs, "added")
    assert in_scope(finding(1), cs, "diff_context")


def test_per_function_notes_with_the_same_reason_become_one_line() -> None:
    from app.pipeline import group_function_notes

    reason = "no strategy for its parameters (annotate them)"
    notes = ["LLM review skipped (--no-llm)", *(f"pkg/m{i}.py::f{i}: {reason}" for i in range(5)), "pkg/x.py::g: other"]
    assert group_function_notes(notes) == [
        "LLM review skipped (--no-llm)",
        f"5 functions, `f0` (pkg/m0.py), `f1` (pkg/m1.py), `f2` (pkg/m2.py) and 2 more: {reason}",
        "`g` (pkg/x.py): other",
    ]
