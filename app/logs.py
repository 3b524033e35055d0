"""Logging setup: LOG_LEVEL, LOG_FORMAT=json|pretty, delivery id and repo on every line, secrets masked."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_delivery_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("diffwise_delivery_id", default=None)
_repo: contextvars.ContextVar[str | None] = contextvars.ContextVar("diffwise_repo", default=None)

_LEVELS = {"trace": logging.DEBUG, "warn": logging.WARNING, "fatal": logging.CRITICAL}
# Token shapes worth masking even when the secrets analyzer is not importable.
_TOKEN_SHAPES = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-ant-[A-Za-z0-9_\-]{10,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"
)
MASK = "***"


@contextlib.contextmanager
def log_context(*, delivery_id: str | None = None, repo: str | None = None) -> Iterator[None]:
    """Tag every log line inside the block with the delivery id and/or repository."""
    tokens = []
    if delivery_id is not None:
        tokens.append((_delivery_id, _delivery_id.set(delivery_id)))
    if repo is not None:
        tokens.append((_repo, _repo.set(repo)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_repo(repo: str | None) -> None:
    """Set the repository for the rest of the current context (the worker learns it after parsing)."""
    _repo.set(repo)


def build_redactor(secrets: Iterable[str]) -> Callable[[str], str]:
    """Mask configured secret values, well-known token shapes and whatever analyzers.secrets.redact finds."""
    from analyzers.secrets import redact as analyzer_redact

    known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(text: str) -> str:
        for secret in known:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _TOKEN_SHAPES.sub(MASK, text)
        try:
            return analyzer_redact(text)
        except Exception:  # a redactor bug must never lose the log line
            return text

    return redact


class ContextFilter(logging.Filter):
    """Adds delivery_id/repo from contextvars and masks secrets in the rendered message and traceback."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.delivery_id = _delivery_id.get()
        record.repo = _repo.get()
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg, record.args = self._redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("delivery_id", "repo"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class PrettyFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        tags = " ".join(str(v) for v in (getattr(record, "repo", None), getattr(record, "delivery_id", None)) if v)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.name}{f' [{tags}]' if tags else ''}: {record.getMessage()}"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def setup_logging(level: str = "info", fmt: str = "pretty", secrets: Iterable[str] = (), stream: Any = None) -> None:
    """Configure the root logger once per process (idempotent: replaces the handler it installed before)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_diffwise", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._diffwise = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter(build_redactor(secrets)))
    handler.setFormatter(JsonFormatter() if fmt == "json" else PrettyFormatter())
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level.lower(), logging.getLevelName(level.upper())))
    for noisy in ("huey", "huey.consumer", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
