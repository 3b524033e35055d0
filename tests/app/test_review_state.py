"""The review record: last reviewed head per PR, skips are not reviews."""

from __future__ import annotations

from pathlib import Path

from app.db import database_url, get_engine
from app.review_state import ReviewState


def test_last_reviewed_and_was_reviewed(tmp_path: Path) -> None:
    state = ReviewState(get_engine(database_url(tmp_path)))
    assert state.last_reviewed("o/r", 1) is None
    state.record("o/r", 1, "aaa", findings=3, inline=2, posted_ids=["x1", "x2"])
    state.record("o/r", 1, "bbb", status="skipped:draft")
    state.record("o/r", 2, "ccc")
    last = state.last_reviewed("o/r", 1)
    assert last is not None
    assert last.head_sha == "aaa"
    assert last.posted_ids == ("x1", "x2")
    assert state.was_reviewed("o/r", 1, "aaa")
    assert not state.was_reviewed("o/r", 1, "bbb")
    assert len(state.all("o/r")) == 3
