"""`diffwise stats` over a seeded store: rates, PR numbers, cost, breakdowns, weeks; text and JSON."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert

from app.audit import AuditLog, llm_calls
from app.outcome_store import OutcomeStore, finding_outcomes, finding_posts, iso_to_epoch
from app.review_state import ReviewState, reviews
from app.stats import build_report, compute, outcome_metrics, run_stats, since_for, week_start

STORE = Path(__file__).parent.parent / "fixtures" / "outcomes" / "store.json"


def seed(engine: Engine) -> dict[str, Any]:
    """Load tests/fixtures/outcomes/store.json into the outcome, review and audit tables (times as recorded)."""
    data = json.loads(STORE.read_text(encoding="utf-8"))
    OutcomeStore(engine)
    ReviewState(engine)
    AuditLog(engine)
    with engine.begin() as conn:
        for p in data["posts"]:
            common = {"repo": p["repo"], "pr_number": p["pr"], "finding_id": p["finding_id"]}
            conn.execute(
                insert(finding_posts).values(
                    **common,
                    rule=p["rule"],
                    analyzer=p["rule"].split("/")[0],
                    source=p["source"],
                    severity=p["severity"],
                    path="app.py",
                    posted_at=iso_to_epoch(p["posted_at"]),
                )
            )
            conn.execute(
                insert(finding_outcomes).values(
                    **common, outcome=p["outcome"], reason="seeded", classified_at=iso_to_epoch(p["posted_at"])
                )
            )
        for r in data["reviews"]:
            conn.execute(
                insert(reviews).values(
                    repo=r["repo"],
                    number=r["number"],
                    head_sha="a" * 40,
                    opened_at=iso_to_epoch(r["opened_at"]),
                    reviewed_at=iso_to_epoch(r["reviewed_at"]),
                    status=r["status"],
                    cost_usd=r["cost_usd"],
                )
            )
        for c in data["llm_calls"]:
            conn.execute(
                insert(llm_calls).values(
                    at=datetime.fromtimestamp(iso_to_epoch(c["at"]), UTC),
                    kind="review",
                    repo=c["repo"],
                    pr_number=c["pr"],
                    prompt="review.v1",
                    model="claude-test",
                    cost_usd=c["cost_usd"],
                    outcome="ok",
                )
            )
    return data


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    seed(engine)
    return engine


def test_overall_numbers(engine: Engine) -> None:
    o = compute(engine).overall
    assert (o.rates.posted, o.rates.applied, o.rates.dismissed, o.rates.disputed, o.rates.unaddressed) == (
        17,
        9,
        6,
        1,
        1,
    )
    assert o.rates.acceptance_rate == pytest.approx(9 / 17)
    assert o.rates.dismissal_rate == pytest.approx(6 / 17)
    assert (o.prs_reviewed, o.prs_skipped) == (6, 2)
    assert o.skip_reasons == {"draft pull request": 2}
    assert o.comments_per_pr == pytest.approx(17 / 6)
    assert o.first_review_median_s == pytest.approx(120)
    assert o.llm_cost_usd == pytest.approx(0.60)
    assert o.cost_per_pr == pytest.approx(0.10)
    assert o.cost_per_accepted == pytest.approx(0.60 / 9)


def test_breakdowns(engine: Engine) -> None:
    report = compute(engine)
    assert list(report.by_repo) == ["octo/api", "octo/shop"]
    shop = report.by_repo["octo/shop"]
    assert (shop.rates.posted, shop.rates.applied, shop.llm_cost_usd) == (13, 7, pytest.approx(0.30))
    assert report.by_rule["quality/bare-except"].dismissal_rate == pytest.approx(0.75)
    assert report.by_source["llm"].posted == 4
    assert report.by_source["analyzer"].posted == 13
    assert set(report.by_analyzer) == {"llm", "quality", "security"}
    assert [w.start for w in report.by_week] == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert sum(w.rates.posted for w in report.by_week) == 17
    assert sum(w.llm_cost_usd for w in report.by_week) == pytest.approx(0.60)


def test_one_repo_and_a_period(engine: Engine) -> None:
    report = compute(engine, "Octo/API")
    assert list(report.by_repo) == ["octo/api"]
    assert report.overall.rates.posted == 4
    late = compute(engine, since=iso_to_epoch("2026-11-09T00:00:00Z"))
    assert late.overall.rates.posted == sum(w.rates.posted for w in late.by_week)
    assert [w.start for w in late.by_week] == ["2026-11-09", "2026-11-16"]
    assert since_for("all") is None
    assert since_for("7d", now=10 * 86400) == 3 * 86400


def test_json_and_text_output(engine: Engine) -> None:
    out = io.StringIO()
    assert run_stats(argparse.Namespace(repo=None, format="json"), out, engine) == 0
    data = json.loads(out.getvalue())
    assert data["version"] == 1
    assert data["overall"]["acceptance_rate"] == round(9 / 17, 4)
    assert data["overall"]["llm_cost_per_pr"] == pytest.approx(0.1)
    assert data["by_rule"]["security/eval"]["applied"] == 4
    assert data["by_week"][0]["week"] == "2026-11-02"
    text = io.StringIO()
    assert run_stats(argparse.Namespace(repo="octo/shop", format="text"), text, engine) == 0
    body = text.getvalue()
    assert "diffwise stats for octo/shop" in body
    assert "acceptance 54%" in body
    assert "quality/bare-except" in body


def test_empty_store_has_no_rates(tmp_path: Path) -> None:
    report = compute(create_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    assert report.overall.rates.acceptance_rate is None
    assert report.overall.cost_per_accepted is None
    assert report.by_week == []
    assert build_report([], [], []).to_json()["overall"]["comments_per_pr"] is None


def test_week_starts_on_monday() -> None:
    assert week_start(iso_to_epoch("2026-11-08T23:59:00Z")) == "2026-11-02"  # a Sunday
    assert week_start(iso_to_epoch("2026-11-09T00:00:00Z")) == "2026-11-09"


def test_prometheus_families(engine: Engine) -> None:
    families = {f.name: f for f in outcome_metrics(engine)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for s in families["diffwise_finding_outcomes"].samples
    }
    assert samples[("diffwise_finding_outcomes_total", (("outcome", "applied"), ("source", "llm")))] == 2
    assert {s.labels["repo"]: s.value for s in families["diffwise_demoted_rules"].samples} == {
        "octo/api": 0.0,
        "octo/shop": 0.0,
    }


def add_dismissals(engine: Engine, repo: str, rule: str, count: int) -> None:
    from app.outcomes import Classification, Outcome, PostedFinding

    store = OutcomeStore(engine)
    for n in range(count):
        finding = PostedFinding(f"{n:015x}d", rule, rule.split("/")[0], "analyzer", "low", n, "a.py", 1, "c", None)
        store.record_outcomes(repo, 500 + n, [Classification(finding, Outcome.DISMISSED, "seeded")])


def test_demoted_rules_are_reported(engine: Engine) -> None:
    assert compute(engine).demoted == {}
    add_dismissals(engine, "octo/api", "quality/print", 10)  # 12 samples, all dismissed
    assert compute(engine).demoted == {"octo/api": {"quality/print": 1.0}}
    out = io.StringIO()
    run_stats(argparse.Namespace(repo=None, format="json"), out, engine)
    assert json.loads(out.getvalue())["demoted_rules"] == {"octo/api": {"quality/print": 1.0}}
    text = io.StringIO()
    run_stats(argparse.Namespace(repo="octo/api", format="text"), text, engine)
    assert "auto-demoted in octo/api: quality/print (100% dismissed)" in text.getvalue()


def test_time_to_first_review_falls_back_to_what_github_said_at_close() -> None:
    from app.stats import ClosureRow, ReviewRow, summary

    closure = ClosureRow("o/r", 1, closed_at=5000.0, opened_at=1000.0, first_review_at=1600.0)
    assert summary([], [], [], [closure]).first_review_median_s == 600
    recorded = ReviewRow("o/r", 1, reviewed_at=1100.0, opened_at=1000.0, status="reviewed")
    assert summary([], [recorded], [], [closure]).first_review_median_s == 100  # the store's own record wins
