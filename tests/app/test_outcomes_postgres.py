"""The same outcome, stats and demotion code on a real PostgreSQL (a private cluster on a Unix socket)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from app.demotion import demoted_rules
from app.outcome_store import OutcomeStore
from app.outcomes import Classification, Outcome, PostedFinding
from app.stats import compute
from tests.app.test_stats import seed

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    pytest.importorskip("psycopg")
    if not BIN or not Path(BIN[-1], "initdb").exists():
        pytest.skip("PostgreSQL server binaries are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser")
    base = Path(tempfile.mkdtemp(prefix="diffwise-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    bindir = Path(BIN[-1])
    env = dict(os.environ, LC_ALL="C")
    init = subprocess.run(
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "diffwise", "-E", "UTF8", "--no-sync"]
        ),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr[-300:]}")
    options = f"-k {sock} -c listen_addresses='' -c fsync=off -p 54329"
    start = subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"]),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if start.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {start.stderr[-300:]}")
    try:
        yield f"postgresql+psycopg://diffwise@/postgres?host={sock}&port=54329"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # a clean schema per test
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    try:
        yield engine
    finally:
        engine.dispose()


def test_stats_match_sqlite_on_postgres(engine: Engine) -> None:
    seed(engine)
    o = compute(engine).overall
    assert (o.rates.posted, o.rates.applied, o.rates.dismissed) == (17, 9, 6)
    assert (o.prs_reviewed, o.prs_skipped) == (6, 2)
    assert o.llm_cost_usd == pytest.approx(0.60)
    assert [w.start for w in compute(engine).by_week] == ["2026-11-02", "2026-11-09", "2026-11-16"]


def test_outcomes_and_demotion_on_postgres(engine: Engine) -> None:
    store = OutcomeStore(engine)
    for n in range(10):
        finding = PostedFinding(
            f"{n:016x}", "quality/noisy", "quality", "analyzer", "low", 3_000_000_000 + n, "a.py", 1, "c", None
        )
        outcome = Outcome.DISMISSED if n < 6 else Outcome.APPLIED
        store.record_outcomes("Octo/Shop", n, [Classification(finding, outcome, "pg")], merged=True)
    assert demoted_rules(engine, "octo/shop") == {"quality/noisy": 0.6}
    assert demoted_rules(engine, "octo/shop", min_samples=11) == {}
    store.record_outcomes("octo/shop", 0, [], merged=False)  # re-classification replaces
    assert len([r for r in store.rows("octo/shop") if r.outcome]) == 9
