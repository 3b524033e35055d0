"""Feature handlers, each owning a Router; `routers()` is the list the dispatcher composes."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.routing import Router

# Feature modules in dispatch order; each exposes `router` or `make_router()`. Modules not written yet are skipped.
FEATURES = ("review", "commands", "feedback", "installation", "outcomes")


def routers() -> list[Router]:
    """Every feature's router, imported on first use so the receiver never pays for them."""
    out: list[Router] = []
    for name in FEATURES:
        module_name = f"{__name__}.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        router = getattr(module, "router", None)
        if router is None:
            router = module.make_router()
        out.append(router)
    return out
