"""Faults: kill -9 of the worker mid-review, GitHub 502/403/timeouts, Anthropic 429/529/timeouts, Redis restarts."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from app.comments import SUMMARY_MARKER
from app.jobs import JobQueue
from app.settings import Settings
from tests.hardening.conftest import (
    TERMINAL,
    finding_markers,
    opened_body,
    post,
    process_stack,
    review_numbers,
    seed_pulls,
    wait_until,
)

LEASE = 2.0
WORKER_JOBS = {"lease": LEASE, "debounce": 0.0, "poll": 0.1, "poll_max_delay": 0.2, "backoff_base": 0.5}


# ---- kill -9 of the worker at random points -------------------------------------------------------------


def run_kill_chaos(workdir: Path, n: int, kills: int, seed: int) -> dict[str, Any]:
    """n PRs reviewed by a worker process that is SIGKILLed `kills` times at random moments; returns the figures."""
    rng = random.Random(seed)
    with process_stack(workdir, LOG_LEVEL="info") as (fake, procs):
        url = procs.serve("web")
        repo, pulls = seed_pulls(fake, n)
        deliveries = [post(url, "pull_request", opened_body(repo, p))[0] for p in pulls]
        queue = JobQueue(Settings.for_tests(state_dir=workdir / "state"))
        env = {"HARDENING_JOB_POLICY": json.dumps(WORKER_JOBS)}

        def finished() -> int:
            return sum(queue.ledger.state(d) in TERMINAL for d in deliveries)

        killed_mid_review = 0
        started = time.monotonic()
        try:
            for _ in range(kills):
                procs.start("worker", module="tests.hardening.worker", env=env)
                # after the imports (~1-2 s) reviews run a few hundred ms each: spread the kills over both
                time.sleep(rng.uniform(0.3, 4.0))
                before = len(repo.reviews)
                procs.kill9("worker")
                killed_mid_review += finished() < n and len(repo.reviews) == before
                if finished() == n:
                    break
                time.sleep(LEASE + 0.3)  # the killed job's lease runs out; the next start reclaims it
            procs.start("worker", module="tests.hardening.worker", env=env)
            wait_until(lambda: finished() == n, 30 + 2 * n, f"{n} reviews", lambda: procs.check_alive("worker"))
            time.sleep(0.5)  # anything that would run twice has had time to
            states = Counter(queue.ledger.state(d) for d in deliveries)
        finally:
            queue.close()
        elapsed = time.monotonic() - started
        markers = {p.number: finding_markers(repo, p.number) for p in pulls}
        return {
            "fake": fake,
            "repo": repo,
            "pulls": pulls,
            "states": states,
            "markers": markers,
            "kills": procs.runs["worker"] - 1,
            "elapsed": elapsed,
            "reclaimed": procs.log("worker").count("whose worker stopped before finishing"),
        }


def assert_one_review_each(result: dict[str, Any]) -> None:
    repo, pulls = result["repo"], result["pulls"]
    assert result["states"] == Counter({"done": len(pulls)})
    assert review_numbers(repo) == [p.number for p in pulls]  # exactly one review per PR
    assert all(r["event"] == "COMMENT" and SUMMARY_MARKER in r["body"] for r in repo.reviews)
    for number, markers in result["markers"].items():
        assert markers, f"PR #{number} has no finding comment"
        assert len(markers) == len(set(markers)), f"PR #{number}: duplicate finding markers {markers}"
    assert result["fake"].count("POST", r"/pulls/\d+/reviews$") == len(pulls)


def test_kill_9_of_the_worker_during_10_reviews_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    result = run_kill_chaos(tmp_path, n=10, kills=3, seed=11)
    assert_one_review_each(result)
    assert result["kills"] >= 1


@pytest.mark.slow
def test_kill_9_of_the_worker_across_100_reviews(tmp_path: Path) -> None:
    result = run_kill_chaos(tmp_path, n=100, kills=25, seed=2026)
    assert_one_review_each(result)
    assert result["kills"] >= 10
