"""Moved code is not blamed on the change; one construct over adjacent lines is one finding."""

from __future__ import annotations

from analyzers.base import Confidence, Finding, Severity
from analyzers.consolidate import demote_moved_code, merge_nearby
from analyzers.diff import ChangeSet

OLD = "import ssl\n\n\ndef make(verify):\n    ctx = ssl.create_default_context()\n    ctx.verify_mode = ssl.CERT_NONE\n"
NEW = (
    "import ssl\n\n\ndef build(verify):\n    ctx = ssl.create_default_context()\n    ctx.verify_mode = ssl.CERT_NONE\n"
)


def finding(line: int, rule: str = "security/cert-none", path: str = "new.py", symbol: str | None = "build") -> Finding:
    return Finding(
        rule=rule,
        analyzer=rule.split("/")[0],
        severity=Severity.HIGH,
        confidence=Confidence.HIGH,
        message="Certificate checks are off.",
        path=path,
        start_line=line,
        end_line=line,
        symbol=symbol,
        code=f"line {line}",
    )


def moved_change() -> ChangeSet:
    old = "".join(f"-{x}\n" for x in OLD.splitlines())
    new = "".join(f"+{x}\n" for x in NEW.splitlines())
    return ChangeSet.from_unified_diff(
        f"--- a/old.py\n+++ /dev/null\n@@ -1,6 +0,0 @@\n{old}--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,6 @@\n{new}"
    )


def test_a_finding_on_moved_lines_goes_to_the_summary_and_says_so() -> None:
    [out] = demote_moved_code([finding(6)], moved_change(), {"new.py": NEW}.get)
    assert out.severity == Severity.LOW
    assert out.confidence == Confidence.HIGH  # still shown, in the summary
    assert out.extra["moved"] is True
    assert "the code was moved" in out.message


def test_new_code_is_not_treated_as_moved() -> None:
    fresh = NEW.replace("ssl.CERT_NONE", "ssl.CERT_NONE  # skip checks for the lab proxy")
    [out] = demote_moved_code([finding(6)], moved_change(), {"new.py": fresh}.get)
    assert out.severity == Severity.HIGH
    cs = ChangeSet.from_unified_diff("--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,1 @@\n+x = 1\n")
    assert demote_moved_code([finding(1)], cs, {"new.py": "x = 1\n"}.get) == [finding(1)]


def test_adjacent_findings_of_one_rule_in_one_function_become_one() -> None:
    merged = merge_nearby([finding(43), finding(44), finding(60), finding(45, symbol="other")])
    assert [(f.start_line, f.symbol) for f in merged] == [(43, "build"), (60, "build"), (45, "other")]
    assert merged[0].extra["also_lines"] == [44]
    assert merged[0].message.endswith("(Also on line 44.)")


def test_a_run_of_findings_chains_and_other_rules_stay_apart() -> None:
    run = [finding(10), finding(12), finding(14), finding(13, rule="security/sql-injection")]
    merged = merge_nearby(run)
    assert [(f.rule, f.start_line) for f in merged] == [("security/cert-none", 10), ("security/sql-injection", 13)]
    assert merged[0].extra["also_lines"] == [12, 14]
    assert merge_nearby([finding(10)]) == [finding(10)]
