"""The built-in analyzers by name, imported lazily so a missing optional part never breaks a review."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable

from analyzers.base import Analyzer

log = logging.getLogger(__name__)

# analyzer name -> module that defines it (one class per module whose `name` equals the key)
BUILTIN: dict[str, str] = {
    "security": "analyzers.security",
    "secrets": "analyzers.secrets",
    "quality": "analyzers.quality",
    "external": "analyzers.external",
}


def load_analyzer(name: str) -> Analyzer | None:
    """Instantiate the analyzer called `name`, or None when its module is absent or defines none."""
    module_name = BUILTIN.get(name)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        log.info("analyzer %s unavailable: %s", name, exc)
        return None
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if obj.__module__ != module.__name__ or getattr(obj, "name", None) != name:
            continue
        if callable(getattr(obj, "analyze", None)):
            try:
                instance = obj()
            except TypeError:
                continue
            if isinstance(instance, Analyzer):
                return instance
    log.info("analyzer module %s defines no analyzer named %s", module_name, name)
    return None


def load_analyzers(names: Iterable[str]) -> list[Analyzer]:
    found = (load_analyzer(n) for n in names)
    return [a for a in found if a is not None]
