"""Finding outcomes classified from fixture PR histories, one fixture per outcome kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzers.base import Confidence, Finding, Severity
from app.comments import finding_body, suggestion_block
from app.outcomes import (
    Evidence,
    Outcome,
    PostedFinding,
    PrHistory,
    Reaction,
    Reply,
    classify,
    classify_history,
    code_changed,
    parse_finding_comment,
    suggestion_applied,
    threads,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "outcomes"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def history(data: dict[str, Any]) -> PrHistory:
    findings, replies = threads(data["comments"])
    reactions = {
        int(cid): tuple(Reaction(r["content"], r["user"]["login"], r["user"]["type"] == "Bot") for r in items)
        for cid, items in data["reactions"].items()
    }
    before = {tuple(key.split("@", 1)): text for key, text in data["files_before"].items()}
    return PrHistory(
        findings=tuple(findings),
        replies=replies,
        reactions=reactions,
        resolved=frozenset(data["resolved"]),
        ignored_ids=frozenset(data["ignored_ids"]),
        ignored_rules=frozenset(data["ignored_rules"]),
        firing=None if data["firing"] is None else frozenset(data["firing"]),
        texts_before=before,  # type: ignore[arg-type]
        texts_final=data["files_final"],
    )


@pytest.mark.parametrize("name", ["applied", "dismissed", "disputed", "unaddressed"])
def test_fixture_histories(name: str) -> None:
    data = load(name)
    got = {c.finding.finding_id: c.outcome.value for c in classify_history(history(data))}
    assert got == data["expected"]
    assert set(got.values()) == {name}


def test_reasons_say_why() -> None:
    reasons = {c.finding.rule: c.reason for c in classify_history(history(load("dismissed")))}
    assert reasons["security/eval"] == "a 👎 reaction"
    assert reasons["quality/bare-except"] == "thread resolved without a change"
    assert reasons["security/os-remove"] == "ignored with /diffwise ignore"


def _finding(source: str = "analyzer") -> Finding:
    rule = "llm/correctness" if source == "llm" else "security/eval"
    return Finding(
        rule=rule,
        analyzer=rule.split("/")[0],
        severity=Severity.HIGH,
        confidence=Confidence.HIGH,
        message="m",
        path="a.py",
        start_line=3,
        end_line=3,
        code="eval(x)",
        source=source,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("source", ["analyzer", "llm"])
def test_parses_what_the_bot_posts(source: str) -> None:
    f = _finding(source)
    body = finding_body(f, suggestion_block("y = 1\n", ["x = 1"]))
    raw = {"id": 9, "body": body, "path": "a.py", "line": 3, "commit_id": "c" * 40, "user": {"type": "Bot"}}
    posted = parse_finding_comment(raw)
    assert posted is not None
    assert (posted.finding_id, posted.rule, posted.analyzer, posted.source, posted.severity) == (
        f.id,
        f.rule,
        f.analyzer,
        source,
        "high",
    )
    assert posted.suggestion == "y = 1"
    assert parse_finding_comment(raw | {"in_reply_to_id": 3}) is None
    assert parse_finding_comment(raw | {"body": "no marker"}) is None


def test_suggestion_applied_needs_the_new_lines_and_the_old_ones_gone() -> None:
    assert suggestion_applied("  y = 1", "a\ny = 1\nb\n", ["x = 1"])
    assert not suggestion_applied("y = 1", "a\nx = 1\ny = 1\n", ["x = 1"])
    assert not suggestion_applied("y = 1", "a\n", ["x = 1"])
    assert not suggestion_applied(None, "y = 1\n")
    assert not suggestion_applied("y = 1", None)


def test_code_changed_looks_at_the_flagged_line_and_its_neighbours() -> None:
    before = "a\nb\nc\nd\n"
    assert code_changed(before, before, 2) is False
    assert code_changed(before, "z\na\nb\nc\nd\n", 2) is False  # shifted, not changed
    assert code_changed(before, "a\nB\nc\nd\n", 2) is True
    assert code_changed(before, None, 2) is True  # file removed
    assert code_changed(None, before, 2) is None


POSTED = PostedFinding("abcdef12", "security/eval", "security", "analyzer", "high", 1, "a.py", 3, "c", None)


def test_order_applied_beats_dismissed_beats_disputed() -> None:
    thumbs_down = (Reaction("-1", "dev", False),)
    reply = (Reply("dev", False, "not a bug"),)
    applied = Evidence(reactions=thumbs_down, replies=reply, suggestion_applied=True)
    assert classify(POSTED, applied).outcome is Outcome.APPLIED
    dismissed = Evidence(reactions=thumbs_down, replies=reply, still_fires=True)
    assert classify(POSTED, dismissed).outcome is Outcome.DISMISSED
    assert classify(POSTED, Evidence(replies=reply, still_fires=True)).outcome is Outcome.DISPUTED
    assert classify(POSTED, Evidence(replies=reply, still_fires=None)).outcome is Outcome.DISPUTED


def test_changed_code_without_knowing_whether_it_fires_is_not_applied() -> None:
    assert classify(POSTED, Evidence(code_changed=True, still_fires=None)).outcome is Outcome.UNADDRESSED
    assert classify(POSTED, Evidence(code_changed=True, still_fires=False)).outcome is Outcome.APPLIED


def test_a_finding_posted_twice_counts_once() -> None:
    later = PostedFinding("abcdef12", "security/eval", "security", "analyzer", "high", 7, "a.py", 3, "c", None)
    results = classify_history(PrHistory(findings=(POSTED, later), resolved=frozenset({7})))
    assert [(c.finding.comment_id, c.outcome) for c in results] == [(7, Outcome.DISMISSED)]


@given(
    rule=st.from_regex(r"[a-z][a-z0-9-]{0,12}/[a-z][a-z0-9-]{0,20}", fullmatch=True),
    severity=st.sampled_from(list(Severity)),
    source=st.sampled_from(["analyzer", "llm"]),
    message=st.text(min_size=1, max_size=200),
    title=st.text(max_size=40),
)
def test_any_finding_body_parses_back(rule: str, severity: Severity, source: str, message: str, title: str) -> None:
    f = Finding(
        rule=rule,
        analyzer=rule.split("/")[0],
        severity=severity,
        confidence=Confidence.MEDIUM,
        message=message,
        path="p.py",
        start_line=1,
        end_line=1,
        title=title,
        source=source,  # type: ignore[arg-type]
    )
    posted = parse_finding_comment({"id": 1, "body": finding_body(f), "path": "p.py", "line": 1})
    assert posted is not None
    assert (posted.finding_id, posted.rule, posted.severity) == (f.id, rule, severity.label)
    assert posted.source == ("llm" if source == "llm" or rule.startswith("llm/") else "analyzer")


def test_original_position_wins_over_the_moved_one() -> None:
    body = finding_body(_finding())
    raw = {
        "id": 4,
        "body": body,
        "path": "a.py",
        "line": None,  # outdated on GitHub
        "original_line": 3,
        "commit_id": "b" * 40,
        "original_commit_id": "a" * 40,
    }
    posted = parse_finding_comment(raw)
    assert posted is not None
    assert (posted.line, posted.commit_id) == (3, "a" * 40)
