"""An idle receiver's route providers leave githubkit, sqlalchemy, anthropic and tree-sitter unimported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("githubkit", "sqlalchemy", "anthropic", "tree_sitter", "httpx")

CHILD = textwrap.dedent(
    """
    import sys
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from app import web_routes
    from app.settings import Settings

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings = Settings.for_tests(app_id=1, private_key=key.decode())
    routes = web_routes.collect(settings)
    assert any(getattr(r, "path", "") == "/metrics" for r in routes), routes
    assert any(getattr(r, "path", "").startswith("/dashboard") for r in routes), routes
    print(" ".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))))
    """
)


def test_route_providers_import_no_heavy_library_for_an_installed_app() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *HEAVY], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
