"""What LLM calls cost: tokens (uncached, cache reads, cache writes, output), dollars and the number of calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.pricing import cost_usd


@dataclass(frozen=True)
class LLMUsage:
    model: str = ""
    input_tokens: int = 0  # uncached input, as the API reports it
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(
            model=self.model or other.model,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 6),
            calls=self.calls + other.calls,
        )

    @classmethod
    def of(cls, model: str, usage: Any) -> LLMUsage:
        """From an SDK `Usage` (missing cache fields count as 0)."""
        inp = int(getattr(usage, "input_tokens", 0) or 0)
        out = int(getattr(usage, "output_tokens", 0) or 0)
        read = int(getattr(usage, "cache_read_input_tokens", 0) or 0)
        write = int(getattr(usage, "cache_creation_input_tokens", 0) or 0)
        return cls(model, inp, out, read, write, cost_usd(model, inp, out, read, write), 1)
