"""Noise on real changes: what diffwise would post on consecutive releases of well-known Python projects.

For each release pair the old and new sdists (from PyPI, cached in benchmarks/out/sdists) become a two-commit
git repository (base = old files, head = new files, top-level sdist directory stripped). On it:

- diffwise: `python -m app review REPO --base HEAD~1 --no-llm --format json` with a policy that turns the
  external analyzer (it runs ruff and bandit itself) and test synthesis off, so only diffwise's own analyzers
  count. Findings by severity, and the inline comments the default policy would post (`comments.min_severity:
  medium`, at most `comments.max_comments: 12` per review; security findings under
  `analyzers.security.min_confidence: medium` are already dropped before the output);
- Bandit (`bandit -f json -r` on the head tree's changed .py files: it checks files one by one, so its results
  on added lines are those of the whole tree, in seconds instead of minutes for Django) and `ruff check --select
  S` (on the head tree, `--isolated` so a project's own ruff config neither fails on an old key nor narrows the
  selection), each kept only on the lines the change adds (`git diff -U0` hunks), the way reviewdog's `added`
  filter would post them.

Rates are per 1,000 added lines of Python (`git diff --numstat`, *.py files). Every diffwise finding at medium or
above is listed so a reader can judge each one.

    python -m benchmarks noise            # or: python benchmarks/noise.py [--jobs 2] [--only requests,flask]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SDISTS = ROOT / "benchmarks" / "out" / "sdists"

# (PyPI name, old version, new version): consecutive releases (requests: the 2.32.x line as one change)
PAIRS: list[tuple[str, str, str]] = [
    ("requests", "2.31.0", "2.32.3"),
    ("flask", "2.3.3", "3.0.0"),
    ("Django", "5.0.1", "5.0.2"),
    ("httpx", "0.27.2", "0.28.0"),
    ("click", "8.1.7", "8.1.8"),
    ("jinja2", "3.1.4", "3.1.5"),
    ("werkzeug", "3.0.3", "3.0.4"),
    ("urllib3", "2.2.1", "2.2.2"),
    ("attrs", "23.2.0", "24.1.0"),
    ("rich", "13.7.1", "13.8.0"),
    ("starlette", "0.37.2", "0.38.0"),
    ("fastapi", "0.111.0", "0.111.1"),
    ("black", "24.4.2", "24.8.0"),
    ("sqlalchemy", "2.0.30", "2.0.31"),
    ("pydantic", "2.7.0", "2.7.1"),
]

POLICY = "analyzers:\n  external:\n    enabled: false\ntests:\n  enabled: false\n"
SEVERITIES = ["critical", "high", "medium", "low", "info"]
SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}  # info 0 … critical 4
CONFIDENCE_RANK = {"low": 0, "medium": 1, "high": 2}
# the defaults of app/policy.py (comments.min_severity, comments.max_comments, analyzers.security.min_confidence)
DEFAULT_MIN_SEVERITY = "medium"
DEFAULT_MAX_COMMENTS = 12
DEFAULT_MIN_CONFIDENCE = "medium"
ASSERT_RULES = {"B101", "S101"}

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,  # no user or system excludes, hooks or diff settings change what is compared
}


# ---- pure parts (tested in tests/test_benchmarks_noise.py) -------------------------------------------------------
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(text: str) -> str:
    """git's C-style quoting: backslash escapes and octal bytes (UTF-8)."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if re.fullmatch(r"[0-7]{3}", text[i + 1 : i + 4]):
                out.append(int(text[i + 1 : i + 4], 8))
                i += 4
                continue
        out += ch.encode()
        i += 1
    return out.decode("utf-8", "replace")


def _diff_path(header: str) -> str | None:
    """The path of a `+++ b/path` line; None for `/dev/null` (a deleted file)."""
    raw = header[4:].rstrip("\n")
    if raw.startswith('"') and raw.endswith('"'):  # a name with special characters is C-style quoted
        raw = _unquote(raw[1:-1])
    else:
        raw = raw.split("\t", 1)[0]
    if raw == "/dev/null":
        return None
    return raw[2:] if raw.startswith("b/") else raw


def added_lines(diff: str) -> dict[str, set[int]]:
    """Per file, the new-side line numbers a `git diff -U0` adds (hunk headers only: -U0 has no context lines)."""
    out: dict[str, set[int]] = {}
    current: str | None = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            current = _diff_path(line)
            continue
        if line.startswith("diff --git "):
            current = None
            continue
        match = _HUNK.match(line)
        if match and current is not None:
            start = int(match.group(1))
            count = 1 if match.group(2) is None else int(match.group(2))
            if count:
                out.setdefault(current, set()).update(range(start, start + count))
    return out


def added_python_lines(numstat: str) -> tuple[int, int]:
    """(files changed, added lines in *.py files) from `git diff --numstat` (binary files show `-`)."""
    files = added = 0
    for line in numstat.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        files += 1
        path = parts[2].rstrip("}")  # a rename reads `dir/{old.py => new.py}`
        if path.endswith(".py") and parts[0].isdigit():
            added += int(parts[0])
    return files, added


def posts_inline(
    finding: Mapping[str, Any],
    min_severity: str = DEFAULT_MIN_SEVERITY,
    min_confidence: str = DEFAULT_MIN_CONFIDENCE,
) -> bool:
    """Whether the default policy would make this finding an inline comment (before the per-review cap)."""
    if SEVERITY_RANK.get(str(finding.get("severity", "info")), 0) < SEVERITY_RANK[min_severity]:
        return False
    if finding.get("analyzer") == "security":  # already dropped by the pipeline; kept here so the rule is whole
        confidence = CONFIDENCE_RANK.get(str(finding.get("confidence", "high")), 2)
        return confidence >= CONFIDENCE_RANK[min_confidence]
    return True


def inline_count(
    findings: Iterable[Mapping[str, Any]],
    min_severity: str = DEFAULT_MIN_SEVERITY,
    max_comments: int = DEFAULT_MAX_COMMENTS,
    min_confidence: str = DEFAULT_MIN_CONFIDENCE,
) -> int:
    """Inline comments one review would post: findings at or above min_severity, at most max_comments."""
    eligible = sum(1 for f in findings if posts_inline(f, min_severity, min_confidence))
    return min(eligible, max_comments)


def on_added(results: Iterable[tuple[str, int, str]], added: Mapping[str, set[int]]) -> list[tuple[str, int, str]]:
    """(path, line, rule) results whose line the change adds (reviewdog's `added` filter)."""
    return [r for r in results if r[1] in added.get(r[0], ())]


def per_thousand(count: int, lines: int) -> str:
    return f"{1000 * count / lines:.2f}" if lines else "n/a"


# ---- corpus ----------------------------------------------------------------------------------------------------
def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def cached_sdist(name: str, version: str, directory: Path = SDISTS) -> Path | None:
    if not directory.is_dir():
        return None
    for path in sorted(directory.iterdir()):
        stem = path.name
        for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".zip"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        else:
            continue
        dist, _, ver = stem.rpartition("-")
        if _canonical(dist) == _canonical(name) and ver == version:
            return path
    return None


def fetch(name: str, version: str) -> tuple[Path | None, str]:
    """The cached sdist, downloaded once with pip; (None, why) when it cannot be had."""
    found = cached_sdist(name, version)
    if found is not None:
        return found, ""
    SDISTS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q"]
    cmd += [f"{name}=={version}", "-d", str(SDISTS)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        return None, f"pip download {name}=={version} timed out"
    found = cached_sdist(name, version)
    if found is None:
        tail = (proc.stderr.strip().splitlines() or ["no sdist saved"])[-1]
        return None, f"pip download {name}=={version} failed: {tail[:160]}"
    return found, ""


def extract(archive: Path, dest: Path) -> None:
    """Unpack an sdist into dest with its top-level directory stripped."""
    staging = Path(tempfile.mkdtemp(dir=dest.parent))
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
        else:
            with tarfile.open(archive) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(staging, filter="data")
                else:  # pragma: no cover - Python < 3.11.4
                    tf.extractall(staging)
        entries = list(staging.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
        for entry in top.iterdir():
            shutil.move(str(entry), str(dest / entry.name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    cmd = ["git", "-c", "core.quotePath=false", "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false", *args]
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=True, errors="replace")
    return proc.stdout


def build_repo(old: Path, new: Path, repo: Path) -> None:
    """base commit = old sdist's files, head commit = new sdist's files."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    extract(old, repo)
    git(repo, "add", "-A", "-f", ".")
    git(repo, "commit", "-q", "--no-verify", "-m", f"base: {old.name}")
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    extract(new, repo)
    git(repo, "add", "-A", "-f", ".")
    git(repo, "commit", "-q", "--no-verify", "--allow-empty", "-m", f"head: {new.name}")
    left = git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all")
    if left.strip():  # every file of the new sdist must be in the head commit
        raise RuntimeError(f"files left out of the head commit: {left.split()[:6]}")


# ---- tools -----------------------------------------------------------------------------------------------------
def run_diffwise(repo: Path, work: Path) -> tuple[list[dict[str, Any]], float, str]:
    policy = work / "policy.yml"
    policy.write_text(POLICY, encoding="utf-8")
    out = work / "review.json"
    cmd = [sys.executable, "-m", "app", "review", str(repo), "--base", "HEAD~1", "--no-llm"]
    cmd += ["--format", "json", "--output", str(out), "--config", str(policy)]
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1) or not out.exists():
        raise RuntimeError(f"diffwise review failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    data = json.loads(out.read_text(encoding="utf-8"))
    notes = "; ".join(str(n) for n in data.get("notes") or [] if "--no-llm" not in str(n))
    failed = data.get("failed_analyzers") or []
    if failed:
        notes = (notes + "; " if notes else "") + f"failed analyzers: {failed}"
    return list(data.get("findings") or []), elapsed, notes


def _relative(path: str, repo: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(repo.resolve()).as_posix()
        except ValueError:
            return p.as_posix()
    return p.as_posix().removeprefix("./")


def run_bandit(repo: Path, paths: Sequence[str]) -> tuple[list[tuple[str, int, str]], float] | None:
    """`bandit -f json -r` on the head tree's changed Python files (bandit checks each file on its own, so the
    results on added lines are those of `-r .`; the unchanged files of a large tree would cost minutes)."""
    if shutil.which("bandit") is None:
        return None
    started = time.perf_counter()
    results: list[tuple[str, int, str]] = []
    for i in range(0, len(paths), 200):
        cmd = ["bandit", "-f", "json", "-q", "-r", *paths[i : i + 200]]
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
        try:
            data = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"bandit output is not JSON (exit {proc.returncode}): {proc.stderr[-300:]}") from exc
        results += [(_relative(r["filename"], repo), int(r["line_number"]), str(r["test_id"])) for r in data["results"]]
    return results, time.perf_counter() - started


def run_ruff(repo: Path) -> tuple[list[tuple[str, int, str]], float] | None:
    if shutil.which("ruff") is None:
        return None
    started = time.perf_counter()
    cmd = ["ruff", "check", "--isolated", "--no-cache", "--select", "S", "--output-format", "json", "--exit-zero", "."]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    try:
        data = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"ruff output is not JSON (exit {proc.returncode}): {proc.stderr[-300:]}") from exc
    results = [
        (_relative(r["filename"], repo), int(r["location"]["row"]), str(r.get("code") or "syntax")) for r in data
    ]
    return results, elapsed


# ---- one pair --------------------------------------------------------------------------------------------------
@dataclass
class PairResult:
    name: str
    old: str
    new: str
    skipped: str = ""
    files: int = 0
    py_added: int = 0
    severities: Counter[str] = field(default_factory=Counter)
    inline: int = 0
    eligible: int = 0
    medium_up: list[tuple[str, int, str, str, str]] = field(default_factory=list)  # path, line, rule, sev, title
    bandit: list[tuple[str, int, str]] | None = None
    ruff: list[tuple[str, int, str]] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} {self.old}→{self.new}"


def run_pair(name: str, old: str, new: str, tmp: Path) -> PairResult:
    """One pair; a failure skips the pair with the reason instead of ending the benchmark."""
    started = time.perf_counter()
    try:
        result = _run_pair(name, old, new, tmp)
    except (RuntimeError, OSError, subprocess.CalledProcessError, tarfile.TarError, zipfile.BadZipFile) as exc:
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        result = PairResult(name, old, new, skipped=f"failed: {' '.join(str(detail).split())[-200:]}")
    print(f"noise: {result.label} {time.perf_counter() - started:.1f} s {result.skipped}", file=sys.stderr)
    return result


def _run_pair(name: str, old: str, new: str, tmp: Path) -> PairResult:
    result = PairResult(name, old, new)
    old_sdist, why = fetch(name, old)
    new_sdist, why_new = (None, "") if old_sdist is None else fetch(name, new)
    if old_sdist is None or new_sdist is None:
        result.skipped = why or why_new
        return result
    work = tmp / f"{_canonical(name)}-{old}-{new}"
    work.mkdir()
    repo = work / "repo"
    started = time.perf_counter()
    build_repo(old_sdist, new_sdist, repo)
    result.seconds["repo"] = time.perf_counter() - started
    result.files, result.py_added = added_python_lines(git(repo, "diff", "--numstat", "HEAD~1", "HEAD"))
    added = added_lines(git(repo, "diff", "-U0", "--no-color", "--no-ext-diff", "HEAD~1", "HEAD"))

    findings, result.seconds["diffwise"], result.notes = run_diffwise(repo, work)
    result.severities = Counter(str(f.get("severity", "info")) for f in findings)
    result.eligible = sum(1 for f in findings if posts_inline(f))
    result.inline = inline_count(findings)
    result.medium_up = sorted(
        (
            str(f["path"]),
            int(f.get("line") or f.get("start_line") or 0),
            str(f["rule"]),
            str(f["severity"]),
            str(f.get("title") or f.get("message") or "")[:90],
        )
        for f in findings
        if SEVERITY_RANK.get(str(f.get("severity")), 0) >= SEVERITY_RANK["medium"]
    )
    changed_py = sorted(p for p in added if p.endswith(".py") and (repo / p).is_file())
    bandit = run_bandit(repo, changed_py)
    if bandit is not None:
        result.bandit = on_added(bandit[0], added)
        result.seconds["bandit"] = bandit[1]
    ruff = run_ruff(repo)
    if ruff is not None:
        result.ruff = on_added(ruff[0], added)
        result.seconds["ruff"] = ruff[1]
    shutil.rmtree(repo, ignore_errors=True)
    return result


# ---- report ----------------------------------------------------------------------------------------------------
def _count(results: list[tuple[str, int, str]] | None, drop: set[str] | None = None) -> str:
    if results is None:
        return "–"
    return str(sum(1 for r in results if not drop or r[2] not in drop))


def _sum(results: Sequence[PairResult], attr: str, drop: set[str] | None = None) -> int | None:
    values = [getattr(r, attr) for r in results]
    if any(v is None for v in values):
        return None
    return sum(sum(1 for x in v if not drop or x[2] not in drop) for v in values)


def render(results: Sequence[PairResult], elapsed: float) -> str:
    done = [r for r in results if not r.skipped]
    lines = [
        "## noise: what would be posted on real releases (diffwise vs Bandit and ruff -S on added lines)",
        "",
        f"{len(done)} consecutive-release pairs of well-known Python projects (sdists from PyPI; base = old "
        "release, head = new release). diffwise: `review --no-llm`, external analyzer and test synthesis off; "
        f"*inline* = what the default policy posts (severity ≥ {DEFAULT_MIN_SEVERITY}, at most "
        f"{DEFAULT_MAX_COMMENTS} per review). Bandit (`-r`, on the changed .py files) and `ruff check --select S "
        "--isolated` (on the head tree) are kept only on added lines (reviewdog `added`); every such result "
        "would be posted.",
        "",
        "| pair | files changed | added .py lines | diffwise crit/high/med/low/info | diffwise inline "
        "| bandit | ruff -S | bandit w/o assert | ruff -S w/o assert |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.skipped:
            lines.append(f"| {r.label} | _skipped: {r.skipped.replace('|', '/')}_ | | | | | | | |")
            continue
        sev = "/".join(str(r.severities.get(s, 0)) for s in SEVERITIES)
        capped = f" (of {r.eligible})" if r.eligible > r.inline else ""
        lines.append(
            f"| {r.label} | {r.files} | {r.py_added} | {sev} | {r.inline}{capped} | {_count(r.bandit)} | "
            f"{_count(r.ruff)} | {_count(r.bandit, ASSERT_RULES)} | {_count(r.ruff, ASSERT_RULES)} |"
        )
    py_added = sum(r.py_added for r in done)
    total_sev = Counter[str]()
    for r in done:
        total_sev.update(r.severities)
    inline = sum(r.inline for r in done)
    bandit, ruff = _sum(done, "bandit"), _sum(done, "ruff")
    bandit_na, ruff_na = _sum(done, "bandit", ASSERT_RULES), _sum(done, "ruff", ASSERT_RULES)

    def show(v: int | None) -> str:
        return "–" if v is None else str(v)

    lines.append(
        f"| **total** | {sum(r.files for r in done)} | {py_added} | "
        f"{'/'.join(str(total_sev.get(s, 0)) for s in SEVERITIES)} | {inline} | {show(bandit)} | {show(ruff)} | "
        f"{show(bandit_na)} | {show(ruff_na)} |"
    )
    lines += ["", f"Per 1,000 added lines of Python ({py_added} lines):", ""]
    lines.append(f"- diffwise inline comments: **{per_thousand(inline, py_added)}**")
    by_rule = Counter(f[2] for r in done for f in r.medium_up)
    if by_rule:
        lines.append("  - by rule: " + ", ".join(f"`{k}` ×{v}" for k, v in by_rule.most_common()))
    security = sum(
        min(DEFAULT_MAX_COMMENTS, sum(1 for f in r.medium_up if f[2].startswith(("security/", "secrets/"))))
        for r in done
    )
    lines.append(
        f"  - security and secrets rules only (the baselines' scope): {security}, "
        f"**{per_thousand(security, py_added)}**"
    )
    lines.append(
        f"- diffwise findings of any severity (those below medium are not posted inline): "
        f"{per_thousand(sum(total_sev.values()), py_added)}"
    )
    for label, value, value_na in (("Bandit", bandit, bandit_na), ("ruff --select S", ruff, ruff_na)):
        if value is None:
            lines.append(f"- {label}: _not run (tool missing from PATH)_")
        else:
            lines.append(
                f"- {label} results: **{per_thousand(value, py_added)}** "
                f"({per_thousand(value_na or 0, py_added)} without the assert rule)"
            )
    if bandit and ruff:
        top = Counter(x[2] for r in done for x in (r.bandit or []) + (r.ruff or []))
        lines.append("- most frequent baseline rules: " + ", ".join(f"{k} ×{v}" for k, v in top.most_common(8)))
    lines += ["", "### every diffwise finding at medium or above", ""]
    listed = [(r, f) for r in done for f in r.medium_up]
    if not listed:
        lines.append("_none_")
    else:
        lines += ["| pair | path:line | rule | severity | title |", "|---|---|---|---|---|"]
        for r, (path, line, rule, sev, title) in listed:
            lines.append(f"| {r.label} | `{path}:{line}` | `{rule}` | {sev} | {title.replace('|', '/')} |")
    notes = [f"- {r.label}: {r.notes}" for r in done if r.notes]
    skipped = [f"- {r.label}: {r.skipped}" for r in results if r.skipped]
    if skipped:
        lines += ["", "Skipped pairs:", "", *skipped]
    if notes:
        lines += ["", "diffwise notes:", "", *notes]
    timing = Counter[str]()
    for r in done:
        timing.update(r.seconds)
    lines += [
        "",
        "Tool time summed over pairs: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timing.items())
        + f"; wall {elapsed:.0f} s (downloads cached).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="pairs run concurrently")
    parser.add_argument("--only", default="", help="comma-separated package names to run (default: all)")
    args = parser.parse_args(argv)
    # Bandit and ruff live next to this interpreter: put them first on PATH.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    wanted = {_canonical(n) for n in args.only.split(",") if n.strip()}
    pairs = [p for p in PAIRS if not wanted or _canonical(p[0]) in wanted]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="diffwise-noise-") as tmp:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_pair, name, old, new, Path(tmp)) for name, old, new in pairs]
            results = [f.result() for f in futures]
    print(render(results, time.perf_counter() - started), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
