"""The dashboard in real headless Chromium (Debian's, through its command line): the DOM and a screenshot."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from app.dashboard import Dashboard
from app.settings import Settings
from tests.app.test_stats import seed
from tests.fakes.github import serve_asgi

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-test-admin-token"

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")


class AddBearer:
    """Stands in for a reverse proxy that authenticates the admin: adds the token header (the CLI cannot)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
            scope = dict(scope, headers=[*headers, (b"authorization", f"Bearer {self.token}".encode())])
        await self.app(scope, receive, send)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


class Tables(HTMLParser):
    """Table cells by table id, as the browser's DOM has them."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and a count of distinct raw scanlines (a blank page has one or two)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = len(raw) // height
    rows = {raw[i * stride + 1 : (i + 1) * stride] for i in range(height)}
    return width, height, len(rows)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    seed(engine)
    return engine


@pytest.fixture
def dashboard_app(engine: Engine) -> Starlette:
    return Starlette(routes=Dashboard(Settings.for_tests(), token=TOKEN, engine=engine).routes())


@pytest.fixture
def signed_in(dashboard_app: Starlette) -> Iterator[str]:
    with serve_asgi(AddBearer(dashboard_app, TOKEN)) as root:
        yield root


@pytest.fixture
def anonymous(dashboard_app: Starlette) -> Iterator[str]:
    with serve_asgi(dashboard_app) as root:
        yield root


def test_dashboard_tables_show_the_fixture_data(signed_in: str, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", f"{signed_in}/dashboard")
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = Tables()
    parser.feed(dom.stdout)
    rules = {row[0]: row for row in parser.tables["rules"][1:]}
    assert rules["security/eval"][1:4] == ["5", "5", "4"]  # posted, classified, applied
    assert rules["quality/bare-except"][-1] == "75%"  # dismissal
    repos = {row[0]: row for row in parser.tables["repos"][1:]}
    assert set(repos) == {"octo/api", "octo/shop"}
    assert repos["octo/shop"][1:3] == ["3", "1"]  # PRs reviewed, skipped
    sources = {row[0]: row[1] for row in parser.tables["sources"][1:]}
    assert sources == {"analyzer": "13", "llm": "4"}
    weeks = [row[0] for row in parser.tables["weeks"][1:]]
    assert weeks == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert 'id="acceptance-chart"' in dom.stdout

    shot = tmp_path / "dashboard.png"
    run = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1400", f"{signed_in}/dashboard")
    assert run.returncode == 0, run.stderr[-2000:]
    width, height, distinct_rows = png_size_and_colours(shot)
    assert (width, height) == (1200, 1400)
    assert shot.stat().st_size > 30_000
    assert distinct_rows > 200  # text, tables and bars, not a blank or error page


def test_without_credentials_the_browser_gets_the_sign_in_form(anonymous: str, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", f"{anonymous}/dashboard")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'name="token"' in dom.stdout
    assert "octo/shop" not in dom.stdout
    assert "security/eval" not in dom.stdout
