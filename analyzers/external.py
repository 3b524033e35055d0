"""Adapters for installed linters (ruff, bandit, semgrep) run read-only on a temp copy of the changed files."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from analyzers.base import AnalyzerContext, Confidence, FilterMode, Finding, Severity
from analyzers.filtering import in_scope

log = logging.getLogger(__name__)

NAME = "external"
TOOLS = ("ruff", "bandit", "semgrep")
DEFAULT_TIMEOUT = 60.0
PYTHON_SUFFIXES = (".py", ".pyi")
SEMGREP_CONFIGS = (".semgrep.yml", ".semgrep.yaml")
# Style codes are the repo's own linter's business; these find bugs and security problems.
RUFF_SELECT = ("S", "B", "F", "E9")
# asserts, "import of a risky module", calls in defaults (FastAPI's Depends), zip strictness and stacklevel
# flag too much that is fine; unused imports in __init__.py are re-exports
# subprocess without a shell, partial executable paths and non-crypto `random` are flagged wherever used
RUFF_IGNORE = ("S101", "S4", "S603", "S607", "S311", "B008", "B905", "B028")
RUFF_PER_FILE_IGNORES = "lint.per-file-ignores = {'__init__.py' = ['F401']}"

# ruff's flake8-bandit codes carry no CWE; these are the most specific ones, as our own rules emit them.
RUFF_CWE: Mapping[str, int] = {
    "S102": 94,
    "S103": 732,
    "S104": 605,
    "S105": 798,
    "S106": 798,
    "S107": 798,
    "S108": 377,
    "S110": 390,
    "S112": 390,
    "S113": 400,
    "S201": 94,
    "S202": 22,
    "S301": 502,
    "S302": 502,
    "S303": 328,
    "S304": 327,
    "S305": 327,
    "S306": 377,
    "S307": 94,
    "S308": 79,
    "S310": 22,
    "S311": 330,
    "S312": 319,
    "S313": 611,
    "S314": 611,
    "S315": 611,
    "S316": 611,
    "S317": 611,
    "S318": 611,
    "S319": 611,
    "S320": 611,
    "S321": 319,
    "S323": 295,
    "S324": 328,
    "S501": 295,
    "S502": 326,
    "S503": 326,
    "S504": 295,
    "S505": 326,
    "S506": 502,
    "S507": 295,
    "S508": 319,
    "S509": 327,
    "S601": 78,
    "S602": 78,
    "S603": 78,
    "S604": 78,
    "S605": 78,
    "S606": 78,
    "S607": 78,
    "S608": 89,
    "S609": 78,
    "S610": 89,
    "S611": 89,
    "S612": 94,
    "S701": 79,
    "S702": 79,
    "S704": 79,
}
# CWEs that name the same weakness at different levels; duplicates match across them.
CWE_ALIASES: Mapping[int, int] = {95: 94, 327: 328, 259: 798, 703: 390}
# External codes that say what one of our quality rules already says (no CWE to match on).
SAME_AS_OURS: Mapping[str, str] = {
    "external/ruff-B006": "quality/mutable-default",
    "external/ruff-E722": "quality/bare-except",
    "external/ruff-S110": "quality/swallowed-exception",
    "external/bandit-B110": "quality/swallowed-exception",
    "external/ruff-T100": "quality/debugger",
    "external/ruff-T201": "quality/print",
}
_RUFF_SEVERITY = {"F821": Severity.MEDIUM, "F811": Severity.LOW, "F401": Severity.LOW, "F841": Severity.LOW}
_LEVELS = {"LOW": Severity.LOW, "MEDIUM": Severity.MEDIUM, "HIGH": Severity.HIGH}
_CONFIDENCE = {"LOW": Confidence.LOW, "MEDIUM": Confidence.MEDIUM, "HIGH": Confidence.HIGH}
_CWE_TAG = re.compile(r"cwe-(\d+)", re.I)
_SARIF_LEVELS = {"error": Severity.HIGH, "warning": Severity.MEDIUM, "note": Severity.LOW, "none": Severity.INFO}


@dataclass(frozen=True)
class ExternalRun:
    """What the external tools found, which ran, and why any did not (notes the review can show)."""

    findings: tuple[Finding, ...] = ()
    ran: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolOutput:
    stdout: str
    note: str | None = None  # set when the tool could not be used; stdout is then empty


def available_tools(search_path: str | None = None) -> dict[str, str | None]:
    """Each tool's executable, or None when it is not installed."""
    return {tool: find_tool(tool, search_path) for tool in TOOLS}


def find_tool(tool: str, search_path: str | None = None) -> str | None:
    found = shutil.which(tool, path=search_path)
    if found is None and search_path is None:
        # installed in this interpreter's environment but not on PATH (e.g. `python -m app` from a venv)
        found = shutil.which(tool, path=str(Path(sys.executable).parent))
    return found


class ExternalAnalyzer:
    name = NAME

    def __init__(self) -> None:
        self.last_run: ExternalRun | None = None

    def analyze(self, ctx: AnalyzerContext) -> list[Finding]:
        result = run_external(ctx)
        self.last_run = result
        for note in result.notes:
            log.info("external: %s", note)
        return list(result.findings)


def run_external(
    ctx: AnalyzerContext,
    binaries: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
) -> ExternalRun:
    """Run each enabled, installed tool on the changed files; absent tools give a note, never an error."""
    settings = ctx.settings
    if settings.get("enabled") is False:
        return ExternalRun(notes=("external tools are turned off by policy",))
    limit = float(timeout if timeout is not None else settings.get("timeout", DEFAULT_TIMEOUT))
    tools = dict(binaries) if binaries is not None else available_tools()
    mode: FilterMode = settings.get("mode", ctx.mode) or ctx.mode
    texts = _changed_texts(ctx)
    findings: list[Finding] = []
    ran: list[str] = []
    notes: list[str] = []
    python_files = sorted(p for p in texts if p.endswith(PYTHON_SUFFIXES))
    with tempfile.TemporaryDirectory(prefix="diffwise-ext-") as tmp:
        root = Path(tmp) / "src"
        _write_copy(root, texts)
        for tool in TOOLS:
            if settings.get(tool) is False:
                notes.append(f"{tool}: turned off by policy")
                continue
            binary = tools.get(tool)
            if binary is None:
                notes.append(f"{tool}: not installed; skipped")
                continue
            if tool == "semgrep":
                config = _semgrep_config(ctx, Path(tmp))
                if config is None:
                    notes.append("semgrep: no .semgrep.yml or .semgrep.yaml in the repository; skipped")
                    continue
                targets = sorted(texts)
                args = _semgrep_args(binary, config, targets)
                parse: Callable[[str, Mapping[str, str]], list[Finding]] = parse_semgrep_sarif
            else:
                targets = python_files
                args = _ruff_args(binary, targets) if tool == "ruff" else _bandit_args(binary, targets)
                parse = parse_ruff if tool == "ruff" else parse_bandit
            if not targets:
                notes.append(f"{tool}: no files it reads in this change")
                continue
            output = run_tool(args, root, limit)
            if output.note is not None:
                notes.append(f"{tool}: {output.note}")
                continue
            try:
                found = parse(output.stdout, texts)
            except (ValueError, KeyError, TypeError) as exc:
                notes.append(f"{tool}: unreadable output ({type(exc).__name__}); skipped")
                continue
            ran.append(tool)
            findings.extend(found)
    kept = [_with_symbol(ctx, f) for f in findings if f.path in texts and in_scope(f, ctx.changeset, mode)]
    kept.sort(key=lambda f: (f.path, f.start_line, f.rule))
    return ExternalRun(tuple(drop_duplicates(kept, [])), tuple(ran), tuple(notes))


# ---- running --------------------------------------------------------------------------------------


def _changed_texts(ctx: AnalyzerContext) -> dict[str, str]:
    texts: dict[str, str] = {}
    for changed in ctx.changeset.files:
        if changed.status.value in ("removed", "binary", "mode-only") or not _safe_relative(changed.path):
            continue
        try:
            text = ctx.read_file(changed.path)
        except Exception:
            text = None
        if text is not None and "\x00" not in text:
            texts[changed.path] = text
    return texts


def _safe_relative(path: str) -> bool:
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts and "\\" not in path


def _write_copy(root: Path, texts: Mapping[str, str]) -> None:
    for path, text in texts.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", errors="surrogateescape")


def _tool_env(home: Path) -> dict[str, str]:
    """A bare environment: no tokens or keys of ours reach a subprocess."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env["SEMGREP_SEND_METRICS"] = "off"
    env["SEMGREP_ENABLE_VERSION_CHECK"] = "0"
    return env


def run_tool(args: Sequence[str], cwd: Path, timeout: float) -> ToolOutput:
    """Run a linter (it only reads the files) with a timeout; failures become notes."""
    try:
        proc = subprocess.run(
            list(args),
            cwd=cwd,
            env=_tool_env(cwd.parent),
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return ToolOutput("", f"timed out after {timeout:g}s; skipped")
    except OSError as exc:
        return ToolOutput("", f"could not start ({exc.strerror or exc}); skipped")
    stdout = proc.stdout.decode("utf-8", "replace")
    if proc.returncode not in (0, 1) or not stdout.strip():
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return ToolOutput("", f"exited {proc.returncode}{': ' + tail[-1][:200] if tail else ''}; skipped")
    return ToolOutput(stdout)


def _ruff_args(binary: str, targets: Sequence[str]) -> list[str]:
    return [
        binary,
        "check",
        "--isolated",
        "--no-cache",
        "--output-format",
        "json",
        "--exit-zero",
        "--select",
        ",".join(RUFF_SELECT),
        "--ignore",
        ",".join(RUFF_IGNORE),
        "--config",
        RUFF_PER_FILE_IGNORES,
        "--",
        *targets,
    ]


def _bandit_args(binary: str, targets: Sequence[str]) -> list[str]:
    return [binary, "-f", "json", "-q", "--exit-zero", "--", *targets]


def _semgrep_args(binary: str, config: Path, targets: Sequence[str]) -> list[str]:
    return [
        binary,
        "scan",
        "--config",
        str(config),
        "--sarif",
        "--metrics=off",
        "--disable-version-check",
        "--quiet",
        "--",
        *targets,
    ]


def _semgrep_config(ctx: AnalyzerContext, tmp: Path) -> Path | None:
    """The repo's own semgrep rules, read from the base version when there is one (a PR can't rewrite them)."""
    reader = ctx.read_base_file or ctx.read_file
    for name in SEMGREP_CONFIGS:
        try:
            text = reader(name)
        except Exception:
            text = None
        if text:
            target = tmp / "semgrep-config" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            return target
    return None


# ---- parsing --------------------------------------------------------------------------------------


def _make(
    rule: str,
    severity: Severity,
    confidence: Confidence,
    message: str,
    path: str,
    start: int,
    end: int,
    texts: Mapping[str, str],
    cwe: int | None = None,
    references: Iterable[str] = (),
    title: str = "",
) -> Finding:
    start = max(1, start)
    end = max(start, end)
    lines = texts.get(path, "").split("\n")
    code = "\n".join(lines[start - 1 : end]) if start <= len(lines) else ""
    return Finding(
        rule=f"{NAME}/{rule}",
        analyzer=NAME,
        severity=severity,
        confidence=confidence,
        message=message,
        path=path,
        start_line=start,
        end_line=end,
        title=title or message.split(". ", 1)[0][:120],
        cwe=cwe,
        code=code,
        references=tuple(r for r in references if r),
    )


def _relative(filename: str, paths: Iterable[str]) -> str:
    """Map a tool's file name (absolute in the temp copy, or ./relative) back to the repository path."""
    name = filename.replace("\\", "/")
    for path in sorted(paths, key=len, reverse=True):
        if name == path or name.endswith("/" + path):
            return path
    return name.removeprefix("./")


def parse_ruff(stdout: str, texts: Mapping[str, str]) -> list[Finding]:
    out: list[Finding] = []
    for item in json.loads(stdout or "[]"):
        code = item.get("code")
        if not code or code == "invalid-syntax":
            continue  # syntax errors are the syntax map's to report
        start = int((item.get("location") or {}).get("row") or 1)
        end = int((item.get("end_location") or {}).get("row") or start)
        security = code.startswith("S")
        severity = Severity.MEDIUM if security else _RUFF_SEVERITY.get(code, Severity.LOW)
        out.append(
            _make(
                f"ruff-{code}",
                severity,
                Confidence.MEDIUM if security else Confidence.HIGH,
                f"{item.get('message', code)} (ruff {code})",
                _relative(str(item.get("filename", "")), texts),
                start,
                end,
                texts,
                cwe=RUFF_CWE.get(code),
                references=[str(item.get("url") or "")],
            )
        )
    return out


def parse_bandit(stdout: str, texts: Mapping[str, str], min_severity: Severity = Severity.MEDIUM) -> list[Finding]:
    out: list[Finding] = []
    for item in json.loads(stdout or "{}").get("results", []):
        severity = _LEVELS.get(str(item.get("issue_severity", "")).upper(), Severity.LOW)
        if severity < min_severity:
            continue  # bandit's LOW findings (imports of subprocess, asserts) are mostly noise in a review
        lines = [int(n) for n in item.get("line_range") or [item.get("line_number", 1)]]
        test_id = str(item.get("test_id", "B000"))
        # bandit often reports a generic CWE (CWE-20 for yaml.load); ruff's S-codes mirror its B-codes,
        # so the specific one our own rules emit comes from the same table
        cwe = RUFF_CWE.get("S" + test_id[1:]) or (item.get("issue_cwe") or {}).get("id")
        out.append(
            _make(
                f"bandit-{test_id}",
                severity,
                _CONFIDENCE.get(str(item.get("issue_confidence", "")).upper(), Confidence.LOW),
                f"{item.get('issue_text', test_id)} (bandit {test_id})",
                _relative(str(item.get("filename", "")), texts),
                min(lines),
                max(lines),
                texts,
                cwe=int(cwe) if cwe else None,
                references=[str(item.get("more_info") or "")],
            )
        )
    return out


def parse_semgrep_sarif(stdout: str, texts: Mapping[str, str]) -> list[Finding]:
    log_data: dict[str, Any] = json.loads(stdout or "{}")
    out: list[Finding] = []
    for run in log_data.get("runs", []):
        rules = {r.get("id"): r for r in run.get("tool", {}).get("driver", {}).get("rules", [])}
        for result in run.get("results", []):
            rule_id = str(result.get("ruleId", "rule"))
            rule = rules.get(rule_id, {})
            locations = result.get("locations") or [{}]
            physical = locations[0].get("physicalLocation", {})
            region = physical.get("region", {})
            start = int(region.get("startLine", 1))
            level = result.get("level") or rule.get("defaultConfiguration", {}).get("level", "warning")
            out.append(
                _make(
                    f"semgrep-{rule_id.rsplit('.', 1)[-1]}",
                    _SARIF_LEVELS.get(level, Severity.MEDIUM),
                    Confidence.MEDIUM,
                    str(result.get("message", {}).get("text") or rule_id),
                    _relative(str(physical.get("artifactLocation", {}).get("uri", "")), texts),
                    start,
                    int(region.get("endLine", start)),
                    texts,
                    cwe=_cwe_from_tags(rule.get("properties", {}).get("tags", [])),
                    references=[str(rule.get("helpUri") or "")],
                )
            )
    return out


def _cwe_from_tags(tags: Iterable[Any]) -> int | None:
    """`CWE-89: ...` or `external/cwe/cwe-89`, as semgrep rules and code scanning write it."""
    for tag in tags:
        match = _CWE_TAG.search(str(tag))
        if match:
            return int(match.group(1))
    return None


# ---- de-duplication -------------------------------------------------------------------------------


def _same_weakness(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and CWE_ALIASES.get(a, a) == CWE_ALIASES.get(b, b)


def _overlap(a: Finding, b: Finding) -> bool:
    return a.path == b.path and a.start_line <= b.end_line and b.start_line <= a.end_line


def _duplicate(candidate: Finding, other: Finding) -> bool:
    if not _overlap(candidate, other):
        return False
    if _same_weakness(candidate.cwe, other.cwe) or _same_check(candidate.rule, other.rule):
        return True
    return SAME_AS_OURS.get(candidate.rule) == other.rule


def _same_check(a: str, b: str) -> bool:
    """ruff's S-codes re-implement bandit's B-codes under the same number (S608 is B608)."""
    code = _check_number(a)
    return code is not None and code == _check_number(b)


def _check_number(rule: str) -> str | None:
    for prefix in (f"{NAME}/ruff-S", f"{NAME}/bandit-B"):
        if rule.startswith(prefix) and rule[len(prefix) :].isdigit():
            return rule[len(prefix) :]
    return None


def drop_duplicates(external: Iterable[Finding], ours: Iterable[Finding]) -> list[Finding]:
    """External findings that say nothing ours (or an earlier external one) already says.

    A duplicate lies in the same file on an overlapping line with the same CWE (aliases allowed), or
    repeats one of our quality rules. Among externals, bandit (which knows CWEs) is preferred to ruff.
    """
    ours = list(ours)
    external = list(external)
    ordered = sorted(range(len(external)), key=lambda i: (0 if "/bandit-" in external[i].rule else 1, i))
    kept: list[int] = []
    for i in ordered:
        finding = external[i]
        if any(_duplicate(finding, o) for o in ours) or any(_duplicate(finding, external[k]) for k in kept):
            continue
        kept.append(i)
    return [external[i] for i in sorted(kept)]


def _with_symbol(ctx: AnalyzerContext, finding: Finding) -> Finding:
    if ctx.syntax is None:
        return finding
    try:
        symbol = ctx.syntax.innermost(finding.path, finding.start_line)
    except Exception:
        return finding
    qualname = getattr(symbol, "qualname", None)
    return replace(finding, symbol=qualname) if isinstance(qualname, str) else finding
