"""The small exception hierarchy the worker understands: retry later, give up, or a bad input."""

from __future__ import annotations


class DiffwiseError(Exception):
    """Base of diffwise's own errors."""


class RetryLater(DiffwiseError):
    """A transient condition (rate limit, 5xx, timeout): reschedule the job after `delay` seconds."""

    def __init__(self, message: str, delay: float = 30.0) -> None:
        super().__init__(message)
        self.delay = max(0.0, float(delay))


class PermanentError(DiffwiseError):
    """Retrying will not help (404, 401 after a token refresh, invalid payload): record and drop."""


class ConfigError(DiffwiseError):
    """Invalid settings or policy, with a message that names the variable or key."""
