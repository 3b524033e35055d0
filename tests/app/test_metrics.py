"""/metrics: the listed series after a review — live hooks, the stores read at scrape time, the queue."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from analyzers.diff import ChangeSet
from app import metrics
from app.audit import AuditEntry, AuditLog
from app.db import database_url, get_engine
from app.delivery import Delivery
from app.jobs import JobQueue
from app.main import create_app
from app.pipeline import ReviewInput, run_review
from app.review_state import ReviewState
from app.settings import Settings
from tests.fakes.github import FakeGitHub, free_port, shared_app_keys

NEW = (
    "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    "\n\ndef calc(e):\n    return eval(e)\n"
)
DIFF = "--- /dev/null\n+++ b/app/run.py\n@@ -0,0 +1,9 @@\n" + "".join("+" + line + "\n" for line in NEW.splitlines())


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lab, v in found.get(name, []) if all(lab.get(k) == want for k, want in labels.items()))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.for_tests(state_dir=tmp_path / "state")


def test_metrics_expose_every_listed_series_after_a_review(settings: Settings) -> None:
    # The stores a finished review leaves behind (the review handler and the LLM reviewer write these).
    engine = get_engine(database_url(settings.state_dir, settings.database_url))
    ReviewState(engine).record("octo/a", 1, "abc", findings=3, inline=2, in_summary=1, rejected=1, api_calls=9)
    audit = AuditLog(engine)
    audit.record(
        AuditEntry(
            kind="review",
            prompt="review.system@2",
            model="claude-x",
            input_tokens=1200,
            output_tokens=300,
            cost_usd=0.02,
        )
    )
    audit.record(AuditEntry(kind="ask", prompt="ask@1", model="claude-x", outcome="error", input_tokens=10))

    # A real pipeline run, observed as the review handler does after run_review.
    changeset = ChangeSet.from_unified_diff(DIFF)
    review = asyncio.run(run_review(ReviewInput(changeset=changeset, read_head={"app/run.py": NEW}.get)))
    assert review.findings
    metrics.observe_review(review)

    # The receiver's answers and the GitHub client's responses, through the hooks other modules call.
    metrics.count_delivery(202)
    metrics.count_delivery(401, b"invalid signature\n")
    with metrics.time_job("pull_request"):
        pass
    fake = FakeGitHub(1, shared_app_keys().public_pem)
    fake.fail_next(1, status=403, retry_after=30)  # GitHub's primary rate limit: X-RateLimit-Remaining 0
    _, hook = metrics.github_event_hooks(77)

    async def call() -> None:
        async with httpx.AsyncClient(transport=fake.transport(), event_hooks={"response": [hook]}) as client:
            await client.get("http://github.test/repos/o/r")

    asyncio.run(call())

    # One delivery waiting in the queue, received a moment ago.
    queue = JobQueue(settings)
    try:
        queue.submit(Delivery("d-1", "pull_request", b"{}", "sha256=0", time.time() - 5))
        app = create_app(settings, metrics.routes(settings), queue=queue)
        response = TestClient(app).get("/metrics")
    finally:
        queue.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)

    assert value(found, "diffwise_deliveries_total", result="accepted") >= 1
    assert value(found, "diffwise_deliveries_total", result="invalid_signature") >= 1
    assert value(found, "diffwise_queue_depth") == 1
    assert 4 <= value(found, "diffwise_queue_oldest_age_seconds") < 120
    assert value(found, "diffwise_ledger_deliveries", state="queued") == 1
    assert value(found, "diffwise_job_duration_seconds_count", stage="job") >= 1
    assert value(found, "diffwise_job_duration_seconds_count", stage="analyze") >= 1
    assert value(found, "diffwise_jobs_processed_total", event="pull_request", outcome="ok") >= 1
    assert value(found, "diffwise_github_api_calls_total", installation="77", status="4xx") >= 1
    assert value(found, "diffwise_github_rate_limit_remaining", installation="77") == 0
    assert value(found, "diffwise_llm_tokens_total", model="claude-x", type="input") == 1210
    assert value(found, "diffwise_llm_tokens_total", model="claude-x", type="output") == 300
    assert value(found, "diffwise_llm_cost_usd_total", model="claude-x") == pytest.approx(0.02)
    assert value(found, "diffwise_llm_calls_total", outcome="error") == 1
    severities = {lab["severity"] for lab, _ in found["diffwise_findings_total"]}
    rules = {lab["rule"] for lab, _ in found["diffwise_findings_total"]}
    assert severities & {"high", "critical"}
    assert {f.rule for f in review.findings} <= rules
    assert value(found, "diffwise_comments_total", outcome="posted") == 2
    assert value(found, "diffwise_comments_total", outcome="moved") == 1
    assert value(found, "diffwise_comments_total", outcome="rejected") == 1
    assert value(found, "diffwise_reviews_total", status="reviewed") == 1
    assert value(found, "diffwise_dead_letters") == 0
    assert "process_resident_memory_bytes" in found


def test_receiver_answers_map_to_reasons() -> None:
    assert metrics.delivery_reason(202, b"") == "accepted"
    assert metrics.delivery_reason(200, b"duplicate delivery\n") == "duplicate"
    assert metrics.delivery_reason(413, b"payload too large\n") == "too_large"
    assert metrics.delivery_reason(503, b"queue unavailable, retry later\n") == "queue_unavailable"
    assert metrics.delivery_reason(418, b"?") == "status_418"


def test_a_broken_store_does_not_break_the_scrape(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    settings = Settings.for_tests(state_dir=blocker / "state")  # the state dir cannot be created
    text = metrics.exposition(settings).decode()
    assert "diffwise_deliveries_total" in text
    assert "diffwise_reviews_total" not in text


def test_worker_serves_its_own_metrics_port(settings: Settings) -> None:
    port = free_port()
    server = metrics.start_http_server(settings, port, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "diffwise_jobs_processed_total" in body or "diffwise_job_duration_seconds" in body
    assert "diffwise_reviews_total" in body
