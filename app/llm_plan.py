"""The LLM review's budget and plan: which changed files are sent, packed into per-call groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.llm_context import FileContext
from app.pricing import price_for

ASSUMED_OUTPUT_TOKENS = 1_500  # for projecting a call's cost before it is made


@dataclass(frozen=True)
class Budget:
    max_input_tokens: int = 120_000  # per PR, all calls
    max_cost_usd: float | None = 1.00  # per PR
    per_call_tokens: int = 24_000  # input per call, prompt included
    max_concurrency: int = 4
    max_output_tokens: int = 4_096
    deadline_seconds: float = 300.0
    # Cache breakpoints always close the static prefix (tools + system) and the PR preamble. Caching the diff
    # block too makes an identical re-review ~all cache reads but costs 1.25x on every first review's diff.
    cache_diff: bool = False

    @classmethod
    def from_policy(cls, llm: Any) -> Budget:
        def get(name: str) -> Any:
            return llm.get(name) if isinstance(llm, Mapping) else getattr(llm, name, None)

        base = cls()
        max_input = int(get("max_input_tokens") or base.max_input_tokens)
        cost = get("max_cost_usd")
        return cls(
            max_input_tokens=max_input,
            max_cost_usd=float(cost) if cost is not None else base.max_cost_usd,
            per_call_tokens=min(base.per_call_tokens, max_input),
            max_concurrency=max(1, int(get("max_concurrency") or base.max_concurrency)),
        )


@dataclass(frozen=True)
class Plan:
    groups: list[list[FileContext]]
    not_sent: list[str]
    overhead_tokens: int


def plan_groups(contexts: Sequence[FileContext], overhead: int, budget: Budget, model: str) -> Plan:
    """Choose files by risk under the PR budget, then pack them (in path order) into per-call groups."""
    per_call = max(budget.per_call_tokens - overhead, 1)
    token_cap = budget.max_input_tokens
    if budget.max_cost_usd is not None:
        price = price_for(model)
        per_call_out = ASSUMED_OUTPUT_TOKENS * price.output / 1_000_000
        # Every call pays its output; input is priced at the uncached rate (the worst case).
        affordable = (budget.max_cost_usd - per_call_out) / (price.input / 1_000_000)
        token_cap = min(token_cap, int(max(affordable, 0)))
    groups: list[list[FileContext]] = []
    room: list[int] = []
    not_sent: list[str] = []
    used = 0
    # Riskiest first; each file goes to the first group with room (first fit), a new group pays the overhead.
    for ctx in sorted(contexts, key=lambda c: (-c.risk, c.path)):
        if ctx.tokens > per_call:
            not_sent.append(ctx.path)
            continue
        slot = next((i for i, r in enumerate(room) if r >= ctx.tokens), None)
        extra = ctx.tokens + (overhead if slot is None else 0)
        if used + extra > token_cap:
            not_sent.append(ctx.path)
            continue
        if slot is None:
            groups.append([])
            room.append(per_call)
            slot = len(groups) - 1
        groups[slot].append(ctx)
        room[slot] -= ctx.tokens
        used += extra
    groups = [sorted(g, key=lambda c: c.path) for g in groups]
    return Plan(groups, sorted(not_sent), overhead)
