"""Comment bodies: golden texts, markers, suggestion indentation, and GitHub's 65,536-character limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from analyzers.base import Confidence, Finding, Fix, Severity
from app.comments import (
    GITHUB_BODY_LIMIT,
    SUMMARY_MARKER,
    SummaryData,
    annotation,
    check_conclusion,
    check_output,
    finding_body,
    finding_marker,
    marker_ids,
    reindent,
    suggestion_block,
    summary_body,
)


def make(sev: Severity = Severity.HIGH, message: str = "User input reaches a SQL query.", **kw: object) -> Finding:
    base: dict[str, object] = {
        "rule": "security/python-sql-injection",
        "analyzer": "security",
        "severity": sev,
        "confidence": Confidence.HIGH,
        "message": message,
        "path": "app/db.py",
        "start_line": 12,
        "end_line": 12,
        "cwe": 89,
        "code": "db.execute(q)",
    }
    base.update(kw)
    return Finding(**base)  # type: ignore[arg-type]


def test_finding_body_golden() -> None:
    f = make(title="SQL built from user input")
    assert finding_body(f) == (
        "**🔴 High** · `security/python-sql-injection` · "
        "[CWE-89](https://cwe.mitre.org/data/definitions/89.html)\n\n"
        "**SQL built from user input**\n\n"
        "User input reaches a SQL query.\n\n"
        f"<sub>confidence: high · id `{f.id}`</sub>\n"
        f"<!-- diffwise:finding:{f.id} -->"
    )
    assert marker_ids(finding_body(f)) == [f.id]


def test_suggestion_keeps_tabs_and_spaces() -> None:
    assert reindent("x = yaml.safe_load(t)", ["\t\tx = yaml.load(t)"]) == "\t\tx = yaml.safe_load(t)"
    assert reindent("if a:\n    b()", ["        if a:"]) == "        if a:\n            b()"
    assert reindent("if a:\n    b()", ["\tif a:"]) == "\tif a:\n\t\tb()"
    block = suggestion_block("    return yaml.safe_load(text)\n", ["    return yaml.load(text)"])
    assert block == "```suggestion\n    return yaml.safe_load(text)\n```"


def test_body_with_a_fix_outside_a_suggestion_is_shown_as_code() -> None:
    f = make(fix=Fix(12, 12, "db.execute(q, (name,))"))
    body = finding_body(f)
    assert "```suggestion" not in body
    assert "Possible fix:" in body


def test_summary_golden_sections() -> None:
    f_in = make()
    f_out = make(Severity.MEDIUM, "Weak hash.", rule="security/python-weak-hash", cwe=328, start_line=40, end_line=41)
    body = summary_body(
        SummaryData(
            head_sha="abcdef1234567",
            repo_url="https://github.com/o/r",
            findings=[f_in, f_out],
            inline=[f_in],
            in_summary=[(f_out, "outside the diff")],
            reviewed_files=["app/db.py"],
            skipped=[("package-lock.json", "generated file (lock file)")],
            failed_analyzers=[("external", "ruff timed out")],
            pending_policy_change=True,
        )
    )
    assert body.startswith("## diffwise review of `abcdef1`")
    assert "| 🔴 High | 1 |" in body
    assert "| 🟠 Medium | 1 |" in body
    assert "https://github.com/o/r/blob/abcdef1234567/app/db.py#L40-L41" in body
    assert "`package-lock.json`: generated file (lock file)" in body
    assert "`external`: ruff timed out" in body
    assert "default branch's policy" in body
    assert body.endswith(SUMMARY_MARKER)


@given(message=st.text(min_size=0, max_size=200_000), title=st.text(max_size=1000))
def test_bodies_never_exceed_githubs_limit(message: str, title: str) -> None:
    f = make(message=message or "m", title=title)
    body = finding_body(f)
    assert len(body) <= GITHUB_BODY_LIMIT
    assert body.endswith(finding_marker(f.id))
    many = [make(message=message or "m", start_line=i, end_line=i, code=str(i)) for i in range(1, 60)]
    summary = summary_body(
        SummaryData("0" * 40, "https://github.com/o/r", many, in_summary=[(x, "over the comment cap") for x in many])
    )
    assert len(summary) <= GITHUB_BODY_LIMIT
    assert summary.endswith(SUMMARY_MARKER)


def test_check_gate_and_incomplete_runs() -> None:
    high, low = make(Severity.HIGH), make(Severity.LOW)
    assert check_conclusion([high], "high", complete=True) == "failure"
    assert check_conclusion([low], "high", complete=True) == "success"
    assert check_conclusion([high], "never", complete=True) == "success"
    out = check_output([low], "high", ["a.py"], [("big.bin", "binary file")], [])
    assert out.conclusion == "neutral"
    assert "incomplete" in out.title
    assert "skipped: `big.bin`" in out.summary
    ann = annotation(high)
    assert ann["annotation_level"] == "failure"
    assert ann["start_line"] == 12
