"""One review's LLM spend, shared by every caller in it (the reviewer and the test writer), across threads.

`llm.max_cost_usd` is a per-PR cap: the review's calls and the test writer's calls draw on the same amount, so
together they never start a call once it is spent (a call already in flight may end a little over it).
"""

from __future__ import annotations

import threading


class CostMeter:
    def __init__(self, max_cost_usd: float | None) -> None:
        self.max_cost_usd = max_cost_usd
        self._spent = 0.0
        self._lock = threading.Lock()

    @property
    def spent_usd(self) -> float:
        with self._lock:
            return self._spent

    def exhausted(self) -> bool:
        with self._lock:
            return self.max_cost_usd is not None and self._spent >= self.max_cost_usd

    def add(self, cost_usd: float) -> None:
        with self._lock:
            self._spent += max(cost_usd, 0.0)
