"""The dependency audit (app/audit_deps.py, scripts/audit) against a fake OSV API on loopback."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.audit_deps import (
    EXIT_CLEAN,
    EXIT_ERROR,
    EXIT_NOT_RUN,
    EXIT_VULNERABLE,
    ConfigError,
    Pin,
    main,
    parse_ignore,
    parse_lock,
    retry_after,
)

REPO = Path(__file__).resolve().parents[2]


@dataclass
class FakeOsv:
    """OSV's querybatch and vulns endpoints, as documented: per-query results in order, next_page_token paging."""

    affected: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (name, version) → ids
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    page_size: int = 1000
    throttle: list[tuple[int, str | None]] = field(default_factory=list)  # (status, Retry-After) for next calls
    broken_body: bytes | None = None
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    url: str = ""

    def add(self, name: str, version: str, vuln_id: str, fixed: str, aliases: list[str] | None = None) -> None:
        self.affected.setdefault((name, version), []).append(vuln_id)
        self.records[vuln_id] = {
            "id": vuln_id,
            "summary": f"{vuln_id} in {name}",
            "aliases": aliases or [],
            "modified": "2026-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": name},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                },
                {  # another ecosystem's fix must not be reported
                    "package": {"ecosystem": "npm", "name": name},
                    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "99.0.0"}]}],
                },
            ],
        }

    def answer(self, method: str, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, path, body))
        if self.throttle:
            status, after = self.throttle.pop(0)
            return status, ({"Retry-After": after} if after is not None else {}), b'{"error": "slow down"}'
        if self.broken_body is not None:
            return 200, {}, self.broken_body
        if method == "POST" and path == "/v1/querybatch":
            results = []
            for query in body["queries"]:
                assert query["package"]["ecosystem"] == "PyPI"
                ids = self.affected.get((query["package"]["name"], query["version"]), [])
                start = int(query.get("page_token") or 0)
                result: dict[str, Any] = {}
                page = ids[start : start + self.page_size]
                if page:
                    result["vulns"] = [{"id": i, "modified": "2026-01-01T00:00:00Z"} for i in page]
                if start + self.page_size < len(ids):
                    result["next_page_token"] = str(start + self.page_size)
                results.append(result)
            return 200, {}, json.dumps({"results": results}).encode()
        if method == "GET" and path.startswith("/v1/vulns/"):
            record = self.records.get(path.removeprefix("/v1/vulns/"))
            if record is None:
                return 404, {}, b'{"code": 5, "message": "Bug not found."}'
            return 200, {}, json.dumps(record).encode()
        return 404, {}, b"{}"


@pytest.fixture
def osv() -> Iterator[FakeOsv]:
    fake = FakeOsv()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, headers, payload = fake.answer(method, self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            self._reply("POST")

        def do_GET(self) -> None:
            self._reply("GET")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Run:
    code: int
    out: str
    err: str
    sleeps: list[float]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .audit-ignore from the checkout
    return tmp_path


def run(workdir: Path, base_url: str, lock: str, *args: str, ignore: str | None = None) -> Run:
    (workdir / "requirements.lock").write_text(lock)
    if ignore is not None:
        (workdir / ".audit-ignore").write_text(ignore)
    out, err = io.StringIO(), io.StringIO()
    sleeps: list[float] = []
    code = main(list(args), out=out, err=err, environ={"DIFFWISE_OSV_URL": base_url}, sleep=sleeps.append)
    return Run(code, out.getvalue(), err.getvalue(), sleeps)


LOCK = "anyio==4.16.0\nJinja2==2.4.1\nhttpx==0.28.1\n"


def test_clean_lock_passes(workdir: Path, osv: FakeOsv) -> None:
    result = run(workdir, osv.url, LOCK)
    assert result.code == EXIT_CLEAN, result
    assert "dependency audit passed: no known vulnerabilities in 3 pinned packages" in result.out
    [(method, path, body)] = osv.requests
    assert (method, path) == ("POST", "/v1/querybatch")
    assert body["queries"][1] == {"package": {"name": "jinja2", "ecosystem": "PyPI"}, "version": "2.4.1"}


def test_vulnerable_pin_fails_with_id_and_fixed_version(workdir: Path, osv: FakeOsv) -> None:
    osv.add("jinja2", "2.4.1", "GHSA-aaaa-bbbb-cccc", fixed="2.10.1", aliases=["CVE-2019-10906"])
    result = run(workdir, osv.url, LOCK)
    assert result.code == EXIT_VULNERABLE, result
    assert "VULNERABLE Jinja2==2.4.1  GHSA-aaaa-bbbb-cccc (CVE-2019-10906)  fixed in: 2.10.1\n" in result.out
    assert "GHSA-aaaa-bbbb-cccc in jinja2" in result.out  # the summary
    assert "99.0.0" not in result.out  # the npm range is someone else's
    assert "dependency audit FAILED: 1 known vulnerability in 1 of 3 pinned packages" in result.out


def test_pagination_follows_next_page_token(workdir: Path, osv: FakeOsv) -> None:
    osv.page_size = 2
    for n in range(5):
        osv.add("httpx", "0.28.1", f"PYSEC-2026-{n}", fixed=f"0.29.{n}")
    osv.add("anyio", "4.16.0", "GHSA-anyio-0001", fixed="4.17.0")
    result = run(workdir, osv.url, LOCK)
    assert result.code == EXIT_VULNERABLE
    assert [f"PYSEC-2026-{n}" in result.out for n in range(5)] == [True] * 5
    assert "GHSA-anyio-0001" in result.out
    batches = [body for method, _, body in osv.requests if method == "POST"]
    assert len(batches) == 3
    # later pages re-send only the paginated query, with its package, version and token
    assert batches[1]["queries"] == [
        {"package": {"name": "httpx", "ecosystem": "PyPI"}, "version": "0.28.1", "page_token": "2"}
    ]
    assert "6 known vulnerabilities in 2 of 3 pinned packages" in result.out


def test_429_is_retried_after_the_retry_after_delay(workdir: Path, osv: FakeOsv) -> None:
    osv.add("httpx", "0.28.1", "GHSA-http-0001", fixed="0.28.2")
    osv.throttle = [(429, "7"), (503, None)]
    result = run(workdir, osv.url, LOCK)
    assert result.code == EXIT_VULNERABLE, result
    assert result.sleeps == [7.0, 2.0]  # Retry-After honoured; then exponential backoff without one
    assert "GHSA-http-0001" in result.out


def test_persistent_5xx_means_the_audit_did_not_run(workdir: Path, osv: FakeOsv) -> None:
    osv.throttle = [(500, None)] * 10
    result = run(workdir, osv.url, LOCK)
    assert result.code == EXIT_NOT_RUN
    assert len(osv.requests) == 4  # bounded
    assert result.err.startswith("dependency audit did NOT run: POST ")
    assert "HTTP 500" in result.err
    assert result.out == ""


def test_a_retry_after_beyond_the_cap_gives_up_rather_than_hanging(workdir: Path, osv: FakeOsv) -> None:
    osv.throttle = [(429, "3600")]
    result = run(workdir, osv.url, LOCK)
    assert result.code == EXIT_NOT_RUN
    assert result.sleeps == []
    assert "Retry-After 3600 s" in result.err


@pytest.mark.parametrize("body", [b"not json", b'{"results": []}', b'{"results": [1, 2, 3]}', b"[]"])
def test_a_malformed_answer_means_the_audit_did_not_run(workdir: Path, osv: FakeOsv, body: bytes) -> None:
    osv.broken_body = body
    result = run(workdir, osv.url, LOCK)
    assert result.code == EXIT_NOT_RUN
    assert "dependency audit did NOT run:" in result.err
    assert "none of the 3 pins in requirements.lock was checked" in result.err


def test_unreachable_service_exits_2_quickly_with_a_clear_line(workdir: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    result = run(workdir, f"http://127.0.0.1:{port}", LOCK)
    assert result.code == EXIT_NOT_RUN
    assert result.err.startswith(f"dependency audit did NOT run: cannot reach http://127.0.0.1:{port} (ConnectError")
    assert result.sleeps == []  # a refused connection is not retried
    assert time.monotonic() - started < 5
    assert "passed" not in result.out


def test_ignore_entry_suppresses_by_id_or_alias(workdir: Path, osv: FakeOsv) -> None:
    osv.add("jinja2", "2.4.1", "GHSA-aaaa-bbbb-cccc", fixed="2.10.1", aliases=["CVE-2019-10906"])
    osv.add("httpx", "0.28.1", "PYSEC-2026-9", fixed="0.28.2")
    ignore = (
        "# accepted advisories\n"
        "CVE-2019-10906  # sandbox escape; we never render untrusted templates\n"
        "PYSEC-2026-9 # only affects the CLI extra, not installed\n"
        "GHSA-gone-gone-gone  # fixed long ago\n"
    )
    result = run(workdir, osv.url, LOCK, ignore=ignore)
    assert result.code == EXIT_CLEAN, result
    assert "ignored Jinja2==2.4.1  GHSA-aaaa-bbbb-cccc: sandbox escape; we never render untrusted" in result.out
    assert "ignored httpx==0.28.1  PYSEC-2026-9: only affects the CLI extra, not installed" in result.out
    assert "ignore entry GHSA-GONE-GONE-GONE matched nothing" in result.out
    assert "dependency audit passed" in result.out


def test_ignore_entry_without_a_reason_is_an_error(workdir: Path, osv: FakeOsv) -> None:
    result = run(workdir, osv.url, LOCK, ignore="GHSA-aaaa-bbbb-cccc  # fine\nPYSEC-2026-9\n")
    assert result.code == EXIT_ERROR
    assert "line 2: PYSEC-2026-9 has no reason" in result.err
    assert osv.requests == []
    with pytest.raises(ConfigError, match="has no reason"):
        parse_ignore("GHSA-x  #   \n")
    with pytest.raises(ConfigError, match="expected `ID  # reason`"):
        parse_ignore("GHSA-x GHSA-y  # two ids\n")


def test_details_that_cannot_be_fetched_still_fail_the_audit(workdir: Path, osv: FakeOsv) -> None:
    osv.affected[("httpx", "0.28.1")] = ["GHSA-no-record"]  # querybatch knows it, /v1/vulns does not
    result = run(workdir, osv.url, LOCK)
    assert result.code == EXIT_VULNERABLE
    assert "VULNERABLE httpx==0.28.1  GHSA-no-record  fixed in: no fixed version published" in result.out
    assert "details unavailable: GET " in result.out


def test_withdrawn_advisories_are_not_reported(workdir: Path, osv: FakeOsv) -> None:
    osv.add("httpx", "0.28.1", "GHSA-withdrawn", fixed="0.28.2")
    osv.records["GHSA-withdrawn"]["withdrawn"] = "2026-02-01T00:00:00Z"
    assert run(workdir, osv.url, LOCK).code == EXIT_CLEAN


def test_malformed_lock_lines() -> None:
    text = "\n".join(
        [
            "# generated by pip freeze",
            "",
            "--index-url https://pypi.org/simple",
            "-e git+https://github.com/octo/thing.git@abc#egg=thing",
            "-e .",
            "-r other.txt",
            "uvloop==0.21.0 ; sys_platform != 'win32'",
            "githubkit[auth-app]==0.16.1",
            "Foo.Bar_baz==1.0.post2  # inline comment",
            "hashed==2.0 \\",
            "    --hash=sha256:0123456789abcdef",
            "pkg @ https://example.com/pkg-1.0.tar.gz",
            "loose>=1.0",
            "wild==1.*",
            "exact===3.1",
        ]
    )
    pins, unaudited = parse_lock(text)
    assert pins == [
        Pin("uvloop", "0.21.0", 7),
        Pin("githubkit", "0.16.1", 8),
        Pin("Foo.Bar_baz", "1.0.post2", 9),
        Pin("hashed", "2.0", 10),
        Pin("exact", "3.1", 15),
    ]
    assert pins[2].key == "foo-bar-baz"
    assert [(u.line, u.reason) for u in unaudited] == [
        (4, "editable install"),
        (5, "editable install"),
        (6, "included file is not followed"),
        (12, "direct URL reference"),
        (13, "not an exact name==version pin"),
        (14, "not an exact name==version pin"),
    ]


def test_unaudited_lines_are_named_in_the_report(workdir: Path, osv: FakeOsv) -> None:
    result = run(workdir, osv.url, LOCK + "-e .\n")
    assert result.code == EXIT_CLEAN
    assert "not audited: line 4: -e . (editable install)" in result.out


def test_empty_or_missing_lock_and_bad_options_are_errors_not_skips(workdir: Path, osv: FakeOsv) -> None:
    assert run(workdir, osv.url, "# nothing pinned\n").code == EXIT_ERROR
    assert run(workdir, osv.url, LOCK, "--lock", "missing.lock").code == EXIT_ERROR
    assert run(workdir, osv.url, LOCK, "--no-such-option").code == EXIT_ERROR  # argparse's own 2 would mean "skipped"
    assert osv.requests == []


def test_the_real_lock_file_parses_completely() -> None:
    pins, unaudited = parse_lock((REPO / "requirements.lock").read_text())
    assert len(pins) > 50
    assert unaudited == []


def test_scripts_audit_end_to_end(tmp_path: Path, osv: FakeOsv) -> None:
    osv.add("httpx", "0.28.1", "GHSA-http-0001", fixed="0.28.2")
    lock = tmp_path / "requirements.lock"
    lock.write_text(LOCK)
    env = {**os.environ, "DIFFWISE_OSV_URL": osv.url}
    proc = subprocess.run(
        [str(REPO / "scripts" / "audit"), "--lock", str(lock), "--ignore-file", os.devnull],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_VULNERABLE, proc.stderr
    assert "VULNERABLE httpx==0.28.1  GHSA-http-0001  fixed in: 0.28.2" in proc.stdout


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def response(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(response("3")) == 3.0
    assert retry_after(response("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0  # in the past: retry now
    later = retry_after(response(format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)))
    assert later is not None
    assert 25 <= later <= 31
    assert retry_after(response("soon")) is None
    assert retry_after(httpx.Response(429)) is None
