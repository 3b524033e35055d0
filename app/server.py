"""`diffwise serve` (uvicorn + embedded worker threads) and `diffwise worker` (a huey consumer alone)."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import threading

from app.errors import ConfigError
from app.logs import setup_logging
from app.settings import Settings

log = logging.getLogger("diffwise.server")


def load_settings() -> Settings | None:
    """Settings from the environment and ./.env, or None after printing one line naming the bad variable."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"diffwise: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return None
    setup_logging(settings.log_level, settings.log_format, settings.secrets)
    return settings


def run_serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings is None:
        return 2
    if getattr(args, "host", None):
        settings = settings.replace(host=args.host)
    if getattr(args, "port", None) is not None:
        settings = settings.replace(port=args.port)

    import uvicorn

    from app import web_routes
    from app.jobs import JobQueue
    from app.main import create_app

    queue = JobQueue(settings)
    worker = not getattr(args, "no_worker", False)
    if worker:
        from analyzers.process_role import mark_long_running

        mark_long_running()  # reviews keep coming: large changes may use analysis worker processes
    app = create_app(settings, web_routes.collect(settings), queue=queue, worker=worker)
    if not settings.has_app_credentials:
        log.warning("no GitHub App credentials (APP_ID, PRIVATE_KEY): serving the setup page only")
    log.info(
        "listening on http://%s:%d (webhooks at %s, %s, queue: %s)",
        settings.host,
        settings.port,
        settings.webhook_path,
        "embedded worker" if worker else "no worker",
        "redis" if settings.redis_url else f"sqlite in {settings.state_dir}",
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        backlog=4096,
        timeout_keep_alive=60,
        server_header=False,
    )
    stop_recovery = threading.Event()
    if settings.has_app_credentials and settings.webhook_secret:
        # Redeliver webhooks that failed while diffwise was down. Imported only for an installed App: it
        # loads githubkit and SQLAlchemy, which a receiver with only the setup page never needs.
        from app.recovery import start_recovery

        start_recovery(settings, stop_recovery)
    # Startup objects (modules, settings, routes) never die: keep them out of every later full collection.
    gc.collect()
    gc.freeze()
    try:
        uvicorn.Server(config).run()
    finally:
        stop_recovery.set()
        queue.close()
    return 0


def run_worker(args: argparse.Namespace) -> int:
    del args
    settings = load_settings()
    if settings is None:
        return 2
    from analyzers.process_role import mark_long_running
    from app.jobs import JobQueue

    mark_long_running()
    queue = JobQueue(settings)
    log.info("worker started (%d threads, queue: %s)", settings.workers, "redis" if settings.redis_url else "sqlite")
    try:
        queue.run_worker()
    finally:
        queue.close()
    return 0
