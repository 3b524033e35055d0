"""The state behind commands: pause/resume and ignores per PR, and the sliding-hour rate limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from app.db import database_url, get_engine
from app.pr_state import PrState, Suppressions, is_paused, suppressions
from app.ratelimit import Limits, RateLimiter


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return get_engine(database_url(tmp_path))


def test_pause_and_resume(engine: Engine) -> None:
    state = PrState(engine)
    assert not is_paused(engine, "Acme/API", 7)
    assert state.set_paused("acme/api", 7, True, by="dev") is False
    assert is_paused(engine, "ACME/api", 7)
    assert not is_paused(engine, "acme/api", 8)
    assert state.set_paused("acme/api", 7, True) is True  # already paused
    assert state.set_paused("acme/api", 7, False) is False
    assert not state.is_paused("acme/api", 7)
    assert state.set_paused("acme/api", 9, False) is True  # never paused: resume is a no-op


def test_suppressions(engine: Engine) -> None:
    state = PrState(engine)
    assert not suppressions(engine, "acme/api", 1)
    assert state.suppress("acme/api", 1, "finding", "0123456789abcdef", by="dev")
    assert not state.suppress("acme/api", 1, "finding", "0123456789abcdef")
    assert state.suppress("acme/api", 1, "rule", "security/eval")
    got = suppressions(engine, "acme/api", 1)
    assert got == Suppressions(frozenset({"0123456789abcdef"}), frozenset({"security/eval"}))
    assert got.suppresses("0123456789abcdef", "quality/x")
    assert got.suppresses("ffffffffffffffff", "security/eval")
    assert not got.suppresses("ffffffffffffffff", "security/other")
    assert not suppressions(engine, "acme/api", 2)
    state.unsuppress("acme/api", 1, "rule", "security/eval")
    assert suppressions(engine, "acme/api", 1).rules == frozenset()
    with pytest.raises(ValueError, match="kind"):
        state.suppress("acme/api", 1, "repo", "x")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_per_user_and_per_pr(engine: Engine) -> None:
    clock = Clock()
    limiter = RateLimiter(engine, clock)
    limits = Limits(per_user=2, per_pr=3)
    assert limiter.acquire("alice", "acme/api", 1, limits).allowed
    clock.now += 10
    assert limiter.acquire("Alice", "acme/api", 1, limits).allowed
    refused = limiter.acquire("alice", "acme/api", 2, limits)
    assert (refused.allowed, refused.scope) == (False, "user:alice")
    assert refused.retry_after == pytest.approx(3600 - 10)
    assert limiter.acquire("bob", "acme/api", 1, limits).allowed  # PR #1 now at 3
    refused = limiter.acquire("carol", "acme/api", 1, limits)
    assert (refused.allowed, refused.scope) == (False, "pr:acme/api#1")
    assert limiter.acquire("carol", "acme/api", 2, limits).allowed
    clock.now += 3600  # the window slides
    assert limiter.acquire("alice", "acme/api", 1, limits).allowed


def test_zero_limit_refuses_and_from_hourly() -> None:
    assert Limits.from_hourly(20) == Limits(20, 40)


def test_zero_limit(engine: Engine) -> None:
    decision = RateLimiter(engine).acquire("a", "o/r", 1, Limits(0, 0))
    assert not decision.allowed
    assert decision.retry_after == 3600


def test_command_claims(engine: Engine) -> None:
    state = PrState(engine)
    assert state.claim_command("acme/api", 11)
    assert not state.claim_command("ACME/api", 11)
    assert state.claim_command("acme/other", 11)
    state.release_command("acme/api", 11)
    assert state.claim_command("acme/api", 11)


def test_state_for_settings(tmp_path: Path) -> None:
    from app.pr_state import state_for
    from app.settings import Settings

    settings = Settings.for_tests(state_dir=tmp_path)
    state_for(settings).set_paused("o/r", 1, True)
    assert is_paused(get_engine(database_url(tmp_path)), "o/r", 1)
