"""The one price table: USD per million tokens per model, and the cost of a call's usage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """USD per million tokens. Cache writes are the 5-minute tier (1.25x input), reads 0.1x input."""

    input: float
    output: float
    cache_write: float
    cache_read: float


_OPUS = Price(5.0, 25.0, 6.25, 0.50)
_OPUS_4_0 = Price(15.0, 75.0, 18.75, 1.50)
_SONNET = Price(3.0, 15.0, 3.75, 0.30)
_HAIKU = Price(1.0, 5.0, 1.25, 0.10)
_FABLE = Price(10.0, 50.0, 12.50, 1.0)

# Exact model ids (dated ids and provider ids are matched by prefix/family below).
PRICES: dict[str, Price] = {
    "claude-opus-4-8": _OPUS,
    "claude-opus-4-7": _OPUS,
    "claude-opus-4-6": _OPUS,
    "claude-opus-4-5": _OPUS,
    "claude-opus-5": _OPUS,
    "claude-opus-4-1": _OPUS_4_0,
    "claude-opus-4-0": _OPUS_4_0,
    "claude-sonnet-4-6": _SONNET,
    "claude-sonnet-4-5": _SONNET,
    "claude-sonnet-4-0": _SONNET,
    "claude-haiku-4-5": _HAIKU,
    "claude-fable-5": _FABLE,
    "claude-fable-5-1": Price(10.0, 50.0, 12.50, 0.25),
    "claude-mythos-5": _FABLE,
    "claude-mythos-5-1": Price(10.0, 50.0, 12.50, 0.25),
}

# Unknown ids are priced by family; an unknown family is priced as the dearest, so budgets err safe.
_FAMILIES: tuple[tuple[str, Price], ...] = (
    ("haiku", _HAIKU),
    ("sonnet", _SONNET),
    ("opus", _OPUS),
    ("fable", _FABLE),
    ("mythos", _FABLE),
)
FALLBACK = _FABLE


def price_for(model: str) -> Price:
    """The price of `model`: exact id, then the longest known id it starts with, then its family."""
    name = model.strip().lower()
    for sep in ("/", "."):  # provider ids: "anthropic.claude-sonnet-4-5-v1:0", "publishers/.../claude-..."
        if "claude" in name and sep in name.split("claude", 1)[0]:
            name = "claude" + name.split("claude", 1)[1]
    name = name.split("@", 1)[0]  # Vertex: "claude-sonnet-4-5@20250929"
    if name in PRICES:
        return PRICES[name]
    prefixes = [key for key in PRICES if name.startswith(key)]
    if prefixes:
        return PRICES[max(prefixes, key=len)]
    for family, price in _FAMILIES:
        if family in name:
            return price
    return FALLBACK


def cost_usd(
    model: str, input_tokens: int, output_tokens: int, cache_read_tokens: int = 0, cache_write_tokens: int = 0
) -> float:
    """Cost of one call; `input_tokens` excludes cached tokens, as the API reports it."""
    p = price_for(model)
    total = (
        input_tokens * p.input
        + output_tokens * p.output
        + cache_read_tokens * p.cache_read
        + cache_write_tokens * p.cache_write
    )
    return round(total / 1_000_000, 6)
