"""Import huey without the PostgreSQL driver it loads for a backend diffwise never uses.

`huey.storage` imports `psycopg` at module level whenever it is installed (for huey's PostgresHuey). diffwise
installs psycopg for its own PostgreSQL state store, so every receiver and worker would map libpq and its
Kerberos/LDAP libraries (~10 MiB of RSS) for nothing. While huey.storage is first imported, `psycopg` is
hidden (a None entry in sys.modules makes that import raise ImportError, which huey handles); the entry is
removed right after, so diffwise's own `import psycopg` (through SQLAlchemy) works as usual.
"""

from __future__ import annotations

import sys


def import_huey_storage() -> None:
    if "huey.storage" in sys.modules or "psycopg" in sys.modules:
        return
    sys.modules["psycopg"] = None  # type: ignore[assignment]
    try:
        import huey.storage  # noqa: F401
    finally:
        del sys.modules["psycopg"]


import_huey_storage()
