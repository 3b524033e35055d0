"""Load: the receiver as a real process under sustained signed deliveries; every 202 queued and processed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.load import DUPLICATE_EVERY, run_load


def test_a_short_sustained_load_is_queued_and_processed_exactly_once(tmp_path: Path) -> None:
    result = run_load(tmp_path, duration=3.0, connections=16, prs=3, workers=1, rate=250.0, drain_timeout=60.0)
    n = len(result.accepted)
    assert result.problems() == []
    assert n >= 500  # ~3 s at 250/s, minus the duplicates
    assert result.statuses[200] >= n // DUPLICATE_EVERY - 2  # redeliveries of accepted ids: 200, not queued again
    assert result.in_ledger == result.queued_tasks == n  # every 202 was durable before the answer
    assert result.claimed_once == n
    assert result.claimed_more == 0
    assert result.left_in_queue == 0
    assert result.reviews_per_pr == {1: 1, 2: 1, 3: 1}


@pytest.mark.slow
def test_sixty_seconds_at_the_highest_rate_is_queued_and_processed_exactly_once(tmp_path: Path) -> None:
    result = run_load(tmp_path, duration=60.0, connections=32, prs=20, workers=2, drain_timeout=900.0)
    assert result.problems() == []
    assert result.claimed_once == len(result.accepted) > 0
