"""The outcome tables and auto-demotion: after N dismissals a rule is demoted, below the sample floor it is not."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, create_engine

from analyzers.base import Confidence, Finding, Severity
from app.demotion import demote, demoted_for, demoted_rules, enabled
from app.outcome_store import OutcomeStore
from app.outcomes import Classification, Outcome, PostedFinding


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return create_engine(f"sqlite:///{tmp_path / 'state.db'}")


def posted(n: int, rule: str = "quality/bare-except", source: str = "analyzer") -> PostedFinding:
    return PostedFinding(
        f"{n:016x}", rule, rule.split("/")[0], source, "medium", n, "a.py", 3, "c" * 40, None, "2026-11-02T10:00:00Z"
    )


def classify_prs(engine: Engine, repo: str, rule: str, outcomes: list[Outcome]) -> None:
    """One PR per outcome, each with one finding of `rule`."""
    store = OutcomeStore(engine)
    base = len(store.rows()) + 1
    for i, outcome in enumerate(outcomes):
        finding = posted(base + i, rule)
        store.record_outcomes(repo, base + i, [Classification(finding, outcome, "test")], merged=True)


def test_outcomes_round_trip_and_reclassification_replaces(engine: Engine) -> None:
    store = OutcomeStore(engine)
    a, b = posted(1), posted(2, "llm/correctness", "llm")
    store.record_outcomes(
        "Octo/Shop", 5, [Classification(a, Outcome.DISPUTED, "r"), Classification(b, Outcome.UNADDRESSED, "")]
    )
    assert store.closures() == []  # classified on demand while open: no closure
    store.record_outcomes("octo/shop", 5, [Classification(a, Outcome.APPLIED, "fixed")], merged=True, closed_at=9.0)
    rows = {r.finding_id: r for r in store.rows("octo/shop")}
    assert rows[a.finding_id].outcome == "applied"
    assert rows[b.finding_id].outcome is None  # posted, no longer classified on the re-run
    assert rows[b.finding_id].source == "llm"
    assert store.repos() == ["octo/shop"]
    assert [c["merged"] for c in store.closures()] == [True]
    assert store.record_posted("octo/shop", 5, [a]) == 0  # already known


def test_rule_stats_per_repo(engine: Engine) -> None:
    classify_prs(engine, "o/a", "quality/x", [Outcome.DISMISSED, Outcome.APPLIED, Outcome.DISMISSED])
    classify_prs(engine, "o/b", "quality/x", [Outcome.APPLIED])
    stats = {(s.repo, s.rule): s for s in OutcomeStore(engine).rule_stats()}
    a = stats[("o/a", "quality/x")]
    assert (a.samples, a.dismissed, a.applied) == (3, 2, 1)
    assert a.dismissal_rate == pytest.approx(2 / 3)
    assert stats[("o/b", "quality/x")].acceptance_rate == 1.0


def test_demoted_after_n_dismissals(engine: Engine) -> None:
    classify_prs(engine, "o/r", "quality/noisy", [Outcome.DISMISSED] * 7 + [Outcome.APPLIED] * 3)
    classify_prs(engine, "o/r", "security/eval", [Outcome.APPLIED] * 10)
    assert demoted_rules(engine, "o/r") == {"quality/noisy": 0.7}
    assert demoted_rules(engine, "O/R") == {"quality/noisy": 0.7}
    assert demoted_rules(engine, "o/other") == {}  # per repository
    assert demoted_rules(engine, "o/r", dismissal_rate=0.8) == {}


def test_no_demotion_below_the_sample_threshold(engine: Engine) -> None:
    classify_prs(engine, "o/r", "quality/noisy", [Outcome.DISMISSED] * 9)
    assert demoted_rules(engine, "o/r") == {}
    assert demoted_rules(engine, "o/r", min_samples=9) == {"quality/noisy": 1.0}
    classify_prs(engine, "o/r", "quality/noisy", [Outcome.DISMISSED])
    assert demoted_rules(engine, "o/r") == {"quality/noisy": 1.0}


def test_policy_can_turn_demotion_off(engine: Engine) -> None:
    classify_prs(engine, "o/r", "quality/noisy", [Outcome.DISMISSED] * 10)
    on = SimpleNamespace(analyzers=SimpleNamespace(auto_demote=True))
    off = SimpleNamespace(analyzers=SimpleNamespace(auto_demote=False))
    assert enabled(None)
    assert enabled(on)
    assert not enabled(off)
    assert demoted_for(engine, "o/r", on) == {"quality/noisy": 1.0}
    assert demoted_for(engine, "o/r", off) == {}


def test_demote_puts_findings_below_the_comment_threshold() -> None:
    def finding(rule: str, severity: Severity) -> Finding:
        return Finding(rule, rule.split("/")[0], severity, Confidence.HIGH, "m", "a.py", 1, 1, code=rule)

    noisy, kept = finding("quality/noisy", Severity.HIGH), finding("security/eval", Severity.HIGH)
    out, fired = demote([noisy, kept], {"quality/noisy": 0.9, "quality/absent": 0.8}, "medium")
    assert [f.severity for f in out] == [Severity.LOW, Severity.HIGH]
    assert out[0].id == noisy.id  # same finding, lower severity
    assert fired == ["quality/noisy"]
