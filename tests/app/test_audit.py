"""The LLM audit store and the `diffwise audit` / `diffwise stats` reports."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.audit import AuditEntry, AuditLog
from app.cli import build_parser
from app.db import get_engine
from app.reports import run_report


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(get_engine(f"sqlite:///{tmp_path / 'state.db'}"))


def entry(**overrides: object) -> AuditEntry:
    values: dict[str, object] = {
        "kind": "review",
        "prompt": "review.system@1+review.user@1",
        "model": "claude-sonnet-4-6",
        "repo": "octo/app",
        "pr_number": 7,
        "head_sha": "abcdef1234567",
        "input_tokens": 1_000,
        "output_tokens": 200,
        "cache_read_tokens": 3_000,
        "cache_write_tokens": 0,
        "cost_usd": 0.0069,
        "duration_ms": 2_500,
        "files": 3,
        "returned": 4,
        "kept": 2,
        "dropped": 2,
        "drop_reasons": {"outside the diff (moved to summary)": 1, "path not in the change": 1},
    }
    values.update(overrides)
    return AuditEntry(**values)  # type: ignore[arg-type]


def test_record_and_query_newest_first(audit: AuditLog) -> None:
    now = datetime.now(UTC)
    audit.record(entry(at=now - timedelta(minutes=5)))
    audit.record(entry(at=now, repo="octo/other", pr_number=1, outcome="error", error="rate limited (429)"))
    rows = audit.query()
    assert [r.repo for r in rows] == ["octo/other", "octo/app"]
    (only,) = audit.query(repo="octo/app")
    assert only.drop_reasons == {"outside the diff (moved to summary)": 1, "path not in the change": 1}
    assert only.at.tzinfo is not None
    assert only.cache_read_tokens == 3_000
    assert audit.query(limit=1)[0].repo == "octo/other"
    assert audit.repos() == ["octo/app", "octo/other"]


def test_totals(audit: AuditLog) -> None:
    audit.record(entry())
    audit.record(entry(head_sha="other"))
    audit.record(entry(outcome="malformed", returned=0, kept=0, dropped=0, drop_reasons={}))
    t = audit.totals("octo/app")
    assert t.calls == 3
    assert t.reviews == 2
    assert t.failures == 1
    assert t.kept == 4
    assert t.drop_reasons == {"outside the diff (moved to summary)": 2, "path not in the change": 2}
    assert t.cache_hit_share == pytest.approx(9_000 / 12_000)
    assert t.cost_usd == pytest.approx(3 * 0.0069)


def test_a_broken_store_does_not_raise(audit: AuditLog) -> None:
    audit.engine.dispose()
    with audit.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE llm_calls")
    audit.record(entry())  # logged, not raised


def test_cli_audit_text_and_json(audit: AuditLog) -> None:
    audit.record(entry())
    audit.record(entry(repo="octo/other"))
    args = build_parser().parse_args(["audit", "--repo", "octo/app"])
    out = io.StringIO()
    assert run_report(args, out, audit) == 0
    text = out.getvalue()
    assert "octo/app#7 abcdef1  review  claude-sonnet-4-6" in text
    assert "cache read 3,000" in text
    assert "findings 4 kept 2 dropped 2" in text
    assert "octo/other" not in text
    out = io.StringIO()
    run_report(build_parser().parse_args(["audit", "--format", "json", "--limit", "1"]), out, audit)
    data = json.loads(out.getvalue())
    assert data["version"] == 1
    assert len(data["calls"]) == 1
    assert set(data["calls"][0]) >= {"repo", "pr_number", "head_sha", "prompt", "model", "cost_usd", "drop_reasons"}


def test_cli_stats(audit: AuditLog) -> None:
    out = io.StringIO()
    run_report(argparse.Namespace(command="stats", repo=None, format="text"), out, audit)
    assert "no calls recorded" in out.getvalue()
    audit.record(entry())
    out = io.StringIO()
    run_report(build_parser().parse_args(["stats"]), out, audit)
    text = out.getvalue()
    assert "reviews: 1   calls: 1" in text
    assert "cache hit share 75%" in text
    assert "$0.0069 per review" in text
    out = io.StringIO()
    run_report(build_parser().parse_args(["stats", "--format", "json"]), out, audit)
    assert json.loads(out.getvalue())["llm"]["kept"] == 2


def test_cli_reads_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIFFWISE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DIFFWISE_DATABASE_URL", raising=False)
    AuditLog.from_settings({"state_dir": str(tmp_path / "state")}).record(entry(repo="octo/cli"))
    from app.cli import main

    assert main(["audit", "--repo", "octo/cli"]) == 0
    assert "octo/cli#7" in capsys.readouterr().out
