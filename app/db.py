"""The state store's engine: SQLite in DIFFWISE_STATE_DIR by default, any SQLAlchemy URL if configured."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import OperationalError, ProgrammingError

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def database_url(state_dir: str | Path, url: str | None = None) -> str:
    """DIFFWISE_DATABASE_URL (e.g. postgresql+psycopg://...) wins; else `<state_dir>/state.db`."""
    explicit = url or os.environ.get("DIFFWISE_DATABASE_URL")
    if explicit:
        return explicit
    path = Path(state_dir)
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(path / 'state.db').resolve()}"


def get_engine(url: str) -> Engine:
    """One engine per URL per process; SQLite gets WAL and a busy timeout so workers can share it."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine(url, future=True)
            if url.startswith("sqlite"):
                event.listen(engine, "connect", _sqlite_pragmas)
            _engines[url] = engine
        return engine


def ensure_tables(engine: Engine, metadata: MetaData) -> None:
    """Create missing tables. Processes starting together race between "check" and "create": the loser's
    "already exists" just means the winner did the work, so look again instead of failing the job."""
    for attempt in range(6):
        try:
            metadata.create_all(engine, checkfirst=True)
            return
        except (OperationalError, ProgrammingError) as exc:
            if "already exists" not in str(exc).lower() or attempt == 5:
                raise
            time.sleep(0.02 * (attempt + 1))


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
