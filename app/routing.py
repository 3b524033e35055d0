"""Probot-style routing: `@router.on("pull_request.opened", ...)` registers async handlers; routers compose."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.context import Context

Handler = Callable[["Context"], Awaitable[Any]]
WILDCARD = "*"


@dataclass(frozen=True)
class Route:
    key: str  # "event", "event.action" or "*"
    handler: Handler

    def matches(self, event: str, action: str | None) -> bool:
        if self.key == WILDCARD or self.key == event:
            return True
        return action is not None and self.key == f"{event}.{action}"


class Router:
    """Handlers keyed by event name, `event.action`, or `*` for every event.

    A handler registered under several keys that all match one delivery runs once.
    """

    def __init__(self, *routers: Router) -> None:
        self._routes: list[Route] = []
        for router in routers:
            self.include(router)

    def on(self, *keys: str) -> Callable[[Handler], Handler]:
        if not keys:
            raise ValueError("router.on() needs at least one event key")
        for key in keys:
            _check_key(key)

        def register(handler: Handler) -> Handler:
            for key in keys:
                self._routes.append(Route(key, handler))
            return handler

        return register

    def add(self, key: str, handler: Handler) -> None:
        _check_key(key)
        self._routes.append(Route(key, handler))

    def include(self, other: Router) -> Router:
        self._routes.extend(other.routes)
        return self

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(self._routes)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(r.key for r in self._routes)

    def handlers_for(self, event: str, action: str | None) -> list[Handler]:
        seen: set[int] = set()
        out: list[Handler] = []
        for route in self._routes:
            if route.matches(event, action) and id(route.handler) not in seen:
                seen.add(id(route.handler))
                out.append(route.handler)
        return out

    def handles(self, event: str, action: str | None = None) -> bool:
        return bool(self.handlers_for(event, action))


def compose(routers: Iterable[Router]) -> Router:
    return Router(*routers)


_KEY = re.compile(r"[a-z_]+(\.[a-z_]+)?")


def _check_key(key: str) -> None:
    if key != WILDCARD and not _KEY.fullmatch(key):
        raise ValueError(f"bad event key {key!r}: expected 'event' or 'event.action'")
