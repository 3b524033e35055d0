"""Where feature modules plug their web routes into `diffwise serve` (setup page, metrics, dashboard, ...).

Each entry is "module:function"; the function takes Settings and returns a list of Starlette routes.
A provider whose module is not installed yet is skipped, so entries can be added before the code lands.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence

from starlette.routing import BaseRoute

from app.settings import Settings

log = logging.getLogger("diffwise.web")

PROVIDERS: tuple[str, ...] = ("app.registration:routes", "app.metrics:routes", "app.dashboard:routes")


def collect(settings: Settings, providers: Sequence[str] = PROVIDERS) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for spec in providers:
        module_name, _, function_name = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            log.debug("route provider %s is not installed; skipping", module_name)
            continue
        routes.extend(getattr(module, function_name)(settings))
    return routes
