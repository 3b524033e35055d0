"""The job tests again on a real redis-server (RedisHuey + the Redis ledger), plus two workers sharing a queue."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.delivery import Delivery
from app.jobs import JobQueue
from app.settings import Settings
from tests.app.test_durability import Processes, lines, wait_for
from tests.app.test_jobs import (  # the tests, and the fixture they share
    make_queue,
    test_a_job_runs_once_and_duplicates_never_run,
    test_a_job_whose_worker_died_is_reclaimed_after_its_lease,
    test_a_locked_pr_reschedules_instead_of_running_concurrently,
    test_a_push_arriving_out_of_order_does_not_undo_a_newer_one,
    test_a_running_review_is_cancelled_by_a_newer_push,
    test_accept_is_true_exactly_once_per_delivery_id,
    test_embedded_consumer_runs_submitted_jobs,
    test_finished_deliveries_are_forgotten_after_the_dedupe_window,
    test_job_log_lines_carry_delivery_and_repo_and_mask_secrets,
    test_permanent_errors_go_straight_to_dead_letters,
    test_pushes_in_quick_succession_review_only_the_latest_head,
    test_retry_later_reschedules_after_its_delay_without_sleeping,
    test_unexpected_errors_back_off_then_dead_letter,
)
from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.redis

__all__ = [
    "make_queue",
    "test_a_job_runs_once_and_duplicates_never_run",
    "test_a_job_whose_worker_died_is_reclaimed_after_its_lease",
    "test_a_locked_pr_reschedules_instead_of_running_concurrently",
    "test_a_push_arriving_out_of_order_does_not_undo_a_newer_one",
    "test_a_running_review_is_cancelled_by_a_newer_push",
    "test_accept_is_true_exactly_once_per_delivery_id",
    "test_embedded_consumer_runs_submitted_jobs",
    "test_finished_deliveries_are_forgotten_after_the_dedupe_window",
    "test_job_log_lines_carry_delivery_and_repo_and_mask_secrets",
    "test_permanent_errors_go_straight_to_dead_letters",
    "test_pushes_in_quick_succession_review_only_the_latest_head",
    "test_retry_later_reschedules_after_its_delay_without_sleeping",
    "test_unexpected_errors_back_off_then_dead_letter",
]


@pytest.fixture
def job_settings(tmp_path: Path, redis_url: str) -> Settings:  # noqa: F811
    """Overrides test_jobs' fixture: the same tests, on Redis."""
    return Settings.for_tests(state_dir=tmp_path / "state", redis_url=redis_url)


def test_two_worker_processes_run_each_of_n_jobs_exactly_once(tmp_path: Path, redis_url: str) -> None:  # noqa: F811
    out, n = tmp_path / "runs.txt", 200
    procs = Processes({"REDIS_URL": redis_url, "DIFFWISE_STATE_DIR": str(tmp_path / "state")}, tmp_path)
    try:
        workers = [procs.worker(out, seconds=0.005), procs.worker(out, seconds=0.005)]
        queue = JobQueue(Settings.for_tests(state_dir=tmp_path / "state", redis_url=redis_url))
        body = b'{"action": "created", "repository": {"full_name": "octo/repo"}}'
        batch = [Delivery(f"n-{i}", "issue_comment", body, "", time.time()) for i in range(n)]
        assert queue.submit_many(batch) == [True] * n
        assert queue.submit_many(batch[:10]) == [False] * 10
        wait_for(lambda: len(lines(out, "end")) >= n, what=f"{n} jobs", child=workers[0])
        time.sleep(0.5)
        ran = lines(out, "end")
        assert len(ran) == n
        assert sorted(ran) == sorted(d.id for d in batch)
        pids = {line.split()[2] for line in out.read_text().splitlines()}
        assert len(pids) == 2  # both workers took part
    finally:
        procs.stop_all()


def test_redis_accept_is_durable_across_queue_instances(tmp_path: Path, redis_url: str) -> None:  # noqa: F811
    settings = Settings.for_tests(state_dir=tmp_path, redis_url=redis_url)
    first, second = JobQueue(settings), JobQueue(settings)
    d = Delivery("r-dup", "issues", b"{}", "", time.time())
    assert first.submit(d) is True
    assert second.submit(d) is False
    assert second.pending() == 1
