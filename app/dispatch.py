"""The worker's entry: raw delivery → tolerant event → one Context → every matching handler."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from app.context import Context
from app.errors import PermanentError, RetryLater
from app.events import PayloadError, parse_event
from app.routing import Router

if TYPE_CHECKING:
    from app.delivery import Delivery
    from app.github import GitHubApp
    from app.settings import Settings

log = logging.getLogger(__name__)

Status = Literal["handled", "dropped", "malformed", "failed"]


@dataclass(frozen=True)
class Outcome:
    delivery_id: str
    key: str
    status: Status
    handlers: int = 0
    errors: tuple[str, ...] = ()


def default_router() -> Router:
    from app.handlers import routers

    return Router(*routers())


async def dispatch(
    settings: Settings,
    delivery: Delivery,
    *,
    router: Router | None = None,
    github_app: GitHubApp | None = None,
) -> Outcome:
    """Run the handlers for one delivery.

    Malformed JSON and events nobody handles are logged and dropped. A handler's exception is logged
    with the delivery id and the other handlers still run; RetryLater propagates so the job system
    reschedules the delivery (handlers are idempotent, so re-running them is safe).
    """
    with _log_context(delivery.id):
        return await _dispatch(settings, delivery, router if router is not None else default_router(), github_app)


async def _dispatch(settings: Settings, delivery: Delivery, router: Router, github_app: GitHubApp | None) -> Outcome:
    try:
        raw = json.loads(delivery.body)
        event = parse_event(raw)
    except (ValueError, PayloadError) as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.warning("dropping %s delivery %s: malformed payload (%s)", delivery.event, delivery.id, exc)
        return Outcome(delivery.id, delivery.event, "malformed", errors=(str(exc),))

    if event.repository is not None and event.repository.full_name:
        _set_log_repo(event.repository.full_name)
    ctx = Context(delivery.event, delivery.id, event, raw, settings, github_app)
    handlers = router.handlers_for(ctx.name, ctx.action)
    if not handlers:
        log.debug("no handler for %s (delivery %s); dropped", ctx.key, delivery.id)
        return Outcome(delivery.id, ctx.key, "dropped")

    errors: list[str] = []
    permanent = 0
    async with contextlib.AsyncExitStack() as stack:
        if _can_act(ctx):
            # One connection pool for every request of this delivery (githubkit keeps it in a ContextVar).
            await stack.enter_async_context(ctx.gh)
        for handler in handlers:
            name = getattr(handler, "__qualname__", repr(handler))
            try:
                await handler(ctx)
            except RetryLater:
                ctx.log.info("%s asked to retry later", name)
                raise
            except PermanentError as exc:
                ctx.log.warning("%s gave up on delivery %s: %s", name, delivery.id, exc)
                errors.append(f"{name}: {exc}")
                permanent += 1
            except Exception as exc:
                ctx.log.error("%s failed on delivery %s: %s", name, delivery.id, exc, exc_info=exc)
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
    status: Status = "failed" if errors and len(errors) == len(handlers) else "handled"
    if status == "failed" and permanent == len(errors):
        status = "dropped"  # retrying cannot help (no installation, PR gone): no retries, no dead letter
    return Outcome(delivery.id, ctx.key, status, len(handlers), tuple(errors))


def _log_context(delivery_id: str) -> contextlib.AbstractContextManager[None]:
    """app.logs' context (delivery id on every record, GitHub calls included) when logging is set up by it."""
    try:
        from app.logs import log_context
    except ImportError:
        return contextlib.nullcontext()
    return log_context(delivery_id=delivery_id)


def _set_log_repo(full_name: str) -> None:
    try:
        from app.logs import set_repo
    except ImportError:
        return
    set_repo(full_name)  # a contextvar: scoped to this delivery's task


def _can_act(ctx: Context) -> bool:
    if ctx.installation_id is None:
        return False
    if ctx.github_app is not None:
        return True
    settings = ctx.settings
    return bool(getattr(settings, "app_id", None) and getattr(settings, "private_key", None))
