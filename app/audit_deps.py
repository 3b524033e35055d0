"""Dependency audit: the pins in requirements.lock checked against the OSV advisory database.

`scripts/audit` runs `python -m app.audit_deps`. Exit codes:

  0  every pinned package was checked and none has a known vulnerability (ignored ones aside)
  1  known vulnerabilities found (package, version, id and fixed versions are printed)
  2  the audit did NOT run: the advisory service could not be reached or answered badly
  3  error: missing or empty lock file, an ignore entry without a reason, a bad option, a crash

Nothing is ever reported as clean unless the service answered for every pin.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO
from urllib.parse import quote

import httpx

EXIT_CLEAN = 0
EXIT_VULNERABLE = 1
EXIT_NOT_RUN = 2
EXIT_ERROR = 3

DEFAULT_OSV_URL = "https://api.osv.dev"
OSV_URL_ENV = "DIFFWISE_OSV_URL"
BATCH_SIZE = 1000  # the most queries OSV accepts in one querybatch request
MAX_PAGES = 50  # querybatch rounds before pagination is treated as a bad answer
TIMEOUT = httpx.Timeout(20.0, connect=5.0)  # short connect timeout: an offline machine gives up at once


class AuditNotRun(Exception):
    """The advisory service could not be reached or answered badly: nothing was checked."""


class ConfigError(Exception):
    """The lock file, the ignore file or the command line is unusable."""


@dataclass(frozen=True)
class Pin:
    name: str  # as written in the lock file
    version: str
    line: int

    @property
    def key(self) -> str:
        return normalize(self.name)


@dataclass(frozen=True)
class Unaudited:
    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class Advisory:
    id: str
    summary: str = ""
    aliases: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    withdrawn: bool = False
    error: str = ""  # set when the details could not be fetched


@dataclass
class Report:
    pins: list[Pin]
    unaudited: list[Unaudited]
    found: list[tuple[Pin, Advisory]] = field(default_factory=list)
    ignored: list[tuple[Pin, Advisory, str]] = field(default_factory=list)
    stale_ignores: list[str] = field(default_factory=list)


def normalize(name: str) -> str:
    """The PEP 503 form of a distribution name (what OSV's PyPI records use)."""
    return re.sub(r"[-_.]+", "-", name).lower()


_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*===?\s*(?P<version>[A-Za-z0-9._+!-]+)$"
)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with backslash continuations joined, numbered by the line they start on."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        stripped = raw.rstrip()
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def parse_lock(text: str) -> tuple[list[Pin], list[Unaudited]]:
    """Exact pins (`name==version`, extras and environment markers allowed) and the lines that cannot be audited.

    Markers are dropped: a pin is audited whatever environment it is meant for. Options such as `--index-url`
    are not packages and are passed over; editable installs, URL references and unpinned requirements are
    returned as unaudited so the report can name them.
    """
    pins: list[Pin] = []
    unaudited: list[Unaudited] = []
    for number, line in _logical_lines(text):
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line:
            continue
        if line.startswith("-"):
            option = line.split(None, 1)[0].split("=", 1)[0]
            if option in ("-e", "--editable"):
                unaudited.append(Unaudited(number, line, "editable install"))
            elif option in ("-r", "--requirement", "-c", "--constraint"):
                unaudited.append(Unaudited(number, line, "included file is not followed"))
            continue
        requirement = line.split(";", 1)[0]
        requirement = re.split(r"\s+--?[A-Za-z]", requirement, maxsplit=1)[0].strip()  # per-line --hash options
        match = _PIN.match(requirement)
        if match:
            pins.append(Pin(match["name"], match["version"], number))
        elif " @ " in requirement or "://" in requirement:
            unaudited.append(Unaudited(number, line, "direct URL reference"))
        else:
            unaudited.append(Unaudited(number, line, "not an exact name==version pin"))
    return pins, unaudited


def parse_ignore(text: str) -> dict[str, str]:
    """`ID  # reason` lines → {ID: reason}. An entry without a reason is an error."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        ident, _, reason = line.partition("#")
        ident, reason = ident.strip(), reason.strip()
        if len(ident.split()) != 1:
            raise ConfigError(f"ignore file line {number}: expected `ID  # reason`, got {raw.strip()!r}")
        if not reason:
            raise ConfigError(f"ignore file line {number}: {ident} has no reason (write `{ident}  # why it is safe`)")
        entries[ident.upper()] = reason
    return entries


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OsvClient:
    """The two OSV calls the audit needs, with bounded retries on 429 and 5xx."""

    def __init__(
        self,
        base_url: str,
        http: httpx.Client,
        *,
        attempts: int = 4,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.attempts = attempts
        self.max_wait = max_wait
        self.sleep = sleep

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        url = self.base_url + path
        for attempt in range(1, self.attempts + 1):
            backoff = float(2 ** (attempt - 1))
            try:
                response = self.http.request(method, url, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # offline: no point waiting and retrying
                raise AuditNotRun(f"cannot reach {self.base_url} ({type(exc).__name__}: {exc})") from exc
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise AuditNotRun(f"{method} {url} failed {attempt} times ({type(exc).__name__}: {exc})") from exc
                self.sleep(backoff)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                if attempt == self.attempts:
                    raise AuditNotRun(f"{method} {url} answered HTTP {status} {self.attempts} times")
                wait = retry_after(response)
                wait = backoff if wait is None else wait
                if wait > self.max_wait:
                    raise AuditNotRun(f"{method} {url} answered HTTP {status} with Retry-After {wait:.0f} s")
                self.sleep(wait)
                continue
            if status != 200:
                raise AuditNotRun(f"{method} {url} answered HTTP {status}: {response.text[:200]!r}")
            try:
                return response.json()
            except ValueError as exc:
                raise AuditNotRun(f"{method} {url} answered with invalid JSON") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def query(self, pins: Sequence[Pin]) -> list[list[str]]:
        """Vulnerability ids for each pin (same order), following each query's next_page_token."""
        found: list[list[str]] = [[] for _ in pins]
        pending: list[tuple[int, str | None]] = [(index, None) for index in range(len(pins))]
        pages = 0
        while pending:
            pages += 1
            if pages > MAX_PAGES:
                raise AuditNotRun(f"querybatch pagination did not end after {MAX_PAGES} pages")
            following: list[tuple[int, str | None]] = []
            for start in range(0, len(pending), BATCH_SIZE):
                chunk = pending[start : start + BATCH_SIZE]
                queries = []
                for index, token in chunk:
                    query: dict[str, Any] = {
                        "package": {"name": pins[index].key, "ecosystem": "PyPI"},
                        "version": pins[index].version,
                    }
                    if token:
                        query["page_token"] = token
                    queries.append(query)
                data = self._call("POST", "/v1/querybatch", {"queries": queries})
                results = data.get("results") if isinstance(data, dict) else None
                if not isinstance(results, list) or len(results) != len(chunk):
                    count = len(results) if isinstance(results, list) else "no"
                    raise AuditNotRun(f"querybatch answered {count} results for {len(chunk)} queries")
                for (index, _), result in zip(chunk, results, strict=True):
                    if not isinstance(result, dict):
                        raise AuditNotRun(f"querybatch answered a malformed result: {result!r:.200}")
                    vulns = result.get("vulns") or []
                    if not isinstance(vulns, list) or not all(
                        isinstance(v, dict) and isinstance(v.get("id"), str) for v in vulns
                    ):
                        raise AuditNotRun(f"querybatch answered malformed vulns: {vulns!r:.200}")
                    found[index].extend(v["id"] for v in vulns if v["id"] not in found[index])
                    token = result.get("next_page_token")
                    if token:
                        following.append((index, str(token)))
            pending = following
        return found

    def details(self, vuln_id: str, package_key: str) -> Advisory:
        """Summary, aliases and the fixed versions for `package_key` of one vulnerability."""
        data = self._call("GET", f"/v1/vulns/{quote(vuln_id, safe='')}")
        if not isinstance(data, dict):
            raise AuditNotRun(f"vulns/{vuln_id} answered {data!r:.200}")
        fixed: list[str] = []
        for affected in _dicts(data.get("affected")):
            package = affected.get("package")
            if not isinstance(package, dict) or package.get("ecosystem") != "PyPI":
                continue
            if normalize(str(package.get("name", ""))) != package_key:
                continue
            for rng in _dicts(affected.get("ranges")):
                for event in _dicts(rng.get("events")):
                    if "fixed" in event and str(event["fixed"]) not in fixed:
                        fixed.append(str(event["fixed"]))
        return Advisory(
            id=str(data.get("id") or vuln_id),
            summary=str(data.get("summary") or "").strip(),
            aliases=tuple(str(a) for a in data.get("aliases") or [] if isinstance(a, str)),
            fixed=tuple(fixed),
            withdrawn=bool(data.get("withdrawn")),
        )


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def audit(pins: list[Pin], unaudited: list[Unaudited], ignore: Mapping[str, str], client: OsvClient) -> Report:
    """Query every pin, fetch details for what was found and split it into found and ignored."""
    report = Report(pins, unaudited)
    used: set[str] = set()
    for pin, ids in zip(pins, client.query(pins), strict=True):
        for vuln_id in ids:
            try:
                advisory = client.details(vuln_id, pin.key)
            except AuditNotRun as exc:  # the pin is still known to be affected: report it without details
                advisory = Advisory(vuln_id, error=str(exc))
            if advisory.withdrawn:
                continue
            names = [advisory.id.upper(), vuln_id.upper(), *(a.upper() for a in advisory.aliases)]
            matched = next((n for n in names if n in ignore), None)
            if matched:
                used.add(matched)
                report.ignored.append((pin, advisory, ignore[matched]))
            else:
                report.found.append((pin, advisory))
    report.stale_ignores = sorted(set(ignore) - used)
    return report


def render(report: Report, base_url: str, out: TextIO) -> int:
    """Print the report; the exit code (0 clean, 1 vulnerable)."""
    for item in report.unaudited:
        out.write(f"not audited: line {item.line}: {item.text} ({item.reason})\n")
    for pin, advisory in report.found:
        aliases = f" ({', '.join(advisory.aliases)})" if advisory.aliases else ""
        fixed = ", ".join(advisory.fixed) if advisory.fixed else "no fixed version published"
        out.write(f"VULNERABLE {pin.name}=={pin.version}  {advisory.id}{aliases}  fixed in: {fixed}\n")
        if advisory.summary:
            out.write(f"    {advisory.summary}\n")
        if advisory.error:
            out.write(f"    (details unavailable: {advisory.error})\n")
    for pin, advisory, reason in report.ignored:
        out.write(f"ignored {pin.name}=={pin.version}  {advisory.id}: {reason}\n")
    for ident in report.stale_ignores:
        out.write(f"ignore entry {ident} matched nothing in this lock file: remove it\n")
    if report.found:
        packages = len({pin.key for pin, _ in report.found})
        count = len(report.found)
        out.write(
            f"dependency audit FAILED: {count} known vulnerabilit{'y' if count == 1 else 'ies'} "
            f"in {packages} of {len(report.pins)} pinned packages (advisories from {base_url})\n"
        )
        return EXIT_VULNERABLE
    out.write(
        f"dependency audit passed: no known vulnerabilities in {len(report.pins)} pinned packages "
        f"(advisories from {base_url})\n"
    )
    return EXIT_CLEAN


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would exit 2, which means "did not run" here
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scripts/audit", description="Check the pins in the lock file against OSV advisories.")
    parser.add_argument("--lock", type=Path, default=Path("requirements.lock"), help="pip freeze style lock file")
    parser.add_argument(
        "--ignore-file",
        type=Path,
        default=None,
        help="`ID  # reason` lines to accept (default: .audit-ignore when it exists)",
    )
    parser.add_argument(
        "--osv-url", default=None, help=f"OSV API base URL (default: ${OSV_URL_ENV} or {DEFAULT_OSV_URL})"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    timeout: httpx.Timeout = TIMEOUT,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    environ = os.environ if environ is None else environ
    try:
        args = build_parser().parse_args(argv)
        base_url = (args.osv_url or environ.get(OSV_URL_ENV) or DEFAULT_OSV_URL).rstrip("/")
        ignore_path: Path | None = args.ignore_file
        if ignore_path is None and Path(".audit-ignore").exists():
            ignore_path = Path(".audit-ignore")
        ignore = parse_ignore(_read(ignore_path)) if ignore_path else {}
        pins, unaudited = parse_lock(_read(args.lock))
        if not pins:
            raise ConfigError(f"{args.lock} has no name==version pins to audit")
    except ConfigError as exc:
        err.write(f"dependency audit error: {exc}\n")
        return EXIT_ERROR
    try:
        with httpx.Client(timeout=timeout, headers={"User-Agent": "diffwise-audit"}) as http:
            report = audit(pins, unaudited, ignore, OsvClient(base_url, http, sleep=sleep))
    except AuditNotRun as exc:
        err.write(f"dependency audit did NOT run: {exc}; none of the {len(pins)} pins in {args.lock} was checked\n")
        return EXIT_NOT_RUN
    except Exception:  # a bug here must not read as "vulnerabilities found" (1) or "service down" (2)
        err.write(f"dependency audit error: crashed\n{traceback.format_exc()}")
        return EXIT_ERROR
    return render(report, base_url, out)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc


if __name__ == "__main__":
    sys.exit(main())
