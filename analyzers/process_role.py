"""What kind of process this is, for choices that depend on it. Imports nothing: `serve` and `worker` set it at
start without loading the analyzers (the receiver's idle memory is measured)."""

from __future__ import annotations

_long_running = False


def mark_long_running() -> None:
    """This process serves many reviews (`serve`, `worker`): worth keeping analysis worker processes for."""
    global _long_running
    _long_running = True


def is_long_running() -> bool:
    return _long_running
