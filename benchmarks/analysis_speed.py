"""Wall time of the built-in analyzer suite (security + secrets + quality) on a 5,000-line, 50-file change vs Bandit.

The change adds 50 generated Python modules of 100 lines each (handlers, helpers, classes, a few sinks and
safe look-alikes). Two comparisons, each interleaved with Bandit on the same files (`bandit -r`, as a CI
job runs it) and reported as medians of --repeat runs with the load average:

- warm: the suite as an App worker process runs it (syntax map + security + secrets + quality on the
  ChangeSet, "added" mode, a large change shared with the analysis worker processes a long-running
  process keeps: analyzers.shards) after a first run has loaded grammars and compiled rule packs; and
  the same in this process alone (DIFFWISE_ANALYSIS_WORKERS=0), the per-CPU comparison;
- cold: `diffwise review REPO --base HEAD~1 --no-llm` in a fresh process on a git repo holding the change
  (imports, git, grammar loading, rule compilation, rendering included), with a policy that leaves the
  external analyzer (it runs ruff and bandit themselves) and test synthesis off, so both sides do the
  same job: static security analysis of the same files.

    python benchmarks/analysis_speed.py [--files 50] [--lines 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BLOCKS = [
    """def handler_{n}(request, db):
    name = request.args.get("name", "")
    rows = db.execute("SELECT * FROM items WHERE owner = %s", (name,))
    result = [dict(r) for r in rows]
    if not result:
        return {{"error": "none"}}, 404
    return {{"items": result, "count": len(result)}}
""",
    """def helper_{n}(values, factor=2):
    total = 0
    for i, value in enumerate(values):
        if i % 2 == 0:
            total += value * factor
        else:
            total -= value
    return total
""",
    """class Service{n}:
    def __init__(self, client, retries=3):
        self.client = client
        self.retries = retries

    def fetch(self, key):
        for attempt in range(self.retries):
            value = self.client.get(key)
            if value is not None:
                return value
        return None
""",
    """def report_{n}(path, rows):
    lines = ["id,name,score"]
    for row in rows:
        lines.append(f"{{row['id']}},{{row['name']}},{{row['score']}}")
    with open(path, "w") as fh:
        fh.write("\\n".join(lines))
    return len(lines)
""",
    """def run_job_{n}(cmd):
    import subprocess
    proc = subprocess.run(["/usr/bin/env", "job", cmd], capture_output=True, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr.decode())
    return proc.stdout.decode()
""",
    """def risky_{n}(request):
    import os
    target = request.form["target"]
    os.system("ping -c 1 " + target)
    return "ok"
""",
    """def digest_{n}(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()
""",
    """API_URL_{n} = "https://api.example.com/v{n}"
TIMEOUT_{n} = 30


def call_api_{n}(session, payload):
    response = session.post(API_URL_{n}, json=payload, timeout=TIMEOUT_{n})
    response.raise_for_status()
    return response.json()
""",
]


def make_module(index: int, lines: int, rng: random.Random) -> str:
    out = [f'"""Generated module {index} for the analysis speed benchmark."""', "", "import json", "", ""]
    n = index * 1000
    while len("\n".join(out).splitlines()) < lines:
        n += 1
        out.append(rng.choice(BLOCKS).format(n=n))
        out.append("")
    return "\n".join("\n".join(out).splitlines()[:lines]) + "\n"


def make_change(files: int, lines: int) -> dict[str, str]:
    rng = random.Random(4)
    return {f"pkg/module_{i:03d}.py": make_module(i, lines, rng) for i in range(files)}


def as_diff(sources: dict[str, str]) -> str:
    parts = []
    for path, text in sources.items():
        body = text.splitlines()
        parts.append(f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(body)} @@\n")
        parts.append("".join(f"+{line}\n" for line in body))
    return "".join(parts)


def run_suite(sources: dict[str, str]) -> tuple[float, float, int]:
    """(seconds to build the ChangeSet, seconds in syntax map + security + secrets + quality, findings)."""
    return _run_suite(sources)[:3]


def _run_suite(sources: dict[str, str]) -> tuple[float, float, int, float]:
    """run_suite's figures and this process's CPU seconds in the suite.

    The suite runs as the pipeline runs it: a large change is shared with the analysis worker processes
    when the process has them (analyzers.shards; a long-running App process does), else analyzed here.
    """
    from analyzers import shards
    from analyzers.base import AnalyzerContext
    from analyzers.diff import ChangeSet
    from analyzers.quality import QualityAnalyzer
    from analyzers.secrets import SecretsAnalyzer
    from analyzers.security import SecurityAnalyzer
    from analyzers.syntax import build_syntax_map

    start = time.perf_counter()
    changeset = ChangeSet.from_unified_diff(as_diff(sources))
    built = time.perf_counter()
    cpu = time.process_time()
    analyzers = (SecurityAnalyzer(), SecretsAnalyzer(), QualityAnalyzer())
    split = shards.plan(changeset, sources.get, analyzers, lambda name: {}, "added")
    syntax = build_syntax_map(changeset, sources.get, paths=split.local if split is not None else None)
    pairs = [
        (a, AnalyzerContext(changeset=changeset, read_file=sources.get, syntax=syntax, mode="added")) for a in analyzers
    ]
    outcomes, elsewhere, _ = shards.analyze_in_turn(pairs, split)
    findings = [f for o in outcomes for f in (o.findings or [])] + elsewhere
    return built - start, time.perf_counter() - built, len(findings), time.process_time() - cpu


def _run_alone(sources: dict[str, str]) -> tuple[float, float, int, float]:
    """The suite in this process only (DIFFWISE_ANALYSIS_WORKERS=0): the per-CPU comparison."""
    from analyzers import shards

    before = os.environ.get(shards.ENV)
    os.environ[shards.ENV] = "0"
    try:
        return _run_suite(sources)
    finally:
        if before is None:
            del os.environ[shards.ENV]
        else:
            os.environ[shards.ENV] = before


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def run_bandit(directory: Path) -> tuple[float, int, float] | None:
    """(wall seconds, results, CPU seconds) of one `bandit -r` run."""
    exe = shutil.which("bandit")
    if exe is None:
        return None
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([exe, "-q", "-f", "json", "-r", str(directory)], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    return elapsed, proc.stdout.count('"test_id"'), _children_cpu() - cpu


SUITE_POLICY = "analyzers:\n  external:\n    enabled: false\ntests:\n  enabled: false\n"


def make_repo(root: Path, sources: dict[str, str]) -> Path:
    """A git repo whose HEAD commit adds the generated files (HEAD~1 is empty)."""
    repo = root / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
    env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)

    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "base")
    for path, text in sources.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git("add", ".")
    git("commit", "-q", "-m", "change")
    return repo


def run_cli(repo: Path, policy: Path) -> tuple[float, int, float]:
    """Wall time of a fresh `diffwise review --no-llm` process, the findings it reported, its CPU seconds."""
    out = repo.parent / "review.json"
    cmd = [sys.executable, "-m", "app", "review", str(repo), "--base", "HEAD~1", "--no-llm"]
    cmd += ["--format", "json", "--output", str(out), "--config", str(policy)]
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"diffwise review failed: {proc.stderr.strip()[-500:]}")
    return elapsed, len(json.loads(out.read_text(encoding="utf-8"))["findings"]), cpu


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each side (medians reported; at least 3)")
    args = parser.parse_args(argv)
    repeat = max(args.repeat, 3)
    sources = make_change(args.files, args.lines)
    total_lines = sum(t.count("\n") for t in sources.values())
    print(f"change: {len(sources)} files, {total_lines} added lines; {os.cpu_count()} CPUs; load average {_load()}")
    print(
        "suite = syntax map + security + secrets + quality; the external analyzer (it runs ruff and bandit "
        "themselves) and test synthesis are excluded from the comparison"
    )
    from analyzers import shards

    shards.mark_long_running()  # as the App's serve/worker processes: large changes may use analysis workers
    pooled = shards.POOL.wait_ready()
    workers = shards.POOL.workers() if pooled else 0
    first_diff, first, found = run_suite(sources)  # loads grammars, compiles the rule pack
    _run_alone(sources)
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), sources)
        policy = Path(tmp) / "suite.yml"
        policy.write_text(SUITE_POLICY, encoding="utf-8")
        if shutil.which("bandit") is None:
            print("bandit: not installed")
            bandit_runs: list[tuple[float, int, float]] = []
        else:
            run_bandit(repo / "pkg")  # one untimed run each: page cache, .pyc files
            bandit_runs = []
        run_cli(repo, policy)
        warm: list[tuple[float, float, int, float]] = []
        alone: list[tuple[float, float, int, float]] = []
        cold: list[tuple[float, int, float]] = []
        for _ in range(repeat):  # interleaved, so a change in machine load hits both sides alike
            warm.append(_run_suite(sources))
            alone.append(_run_alone(sources))
            cold.append(run_cli(repo, policy))
            if shutil.which("bandit") is not None:
                result = run_bandit(repo / "pkg")
                if result is not None:
                    bandit_runs.append(result)
    warm_suite = statistics.median(r[1] for r in warm)
    alone_suite = statistics.median(r[1] for r in alone)
    warm_diff = statistics.median(r[0] for r in warm)
    cold_cli = statistics.median(r[0] for r in cold)
    print(
        f"diffwise suite, first run in this process (grammar load + rule compilation): {first:.3f}s "
        f"(+ ChangeSet {first_diff:.3f}s), {found} findings"
    )
    print(
        f"diffwise suite warm, as an App worker runs it (this process + {workers} analysis worker process(es)), "
        f"median of {repeat}: {warm_suite:.3f}s (+ ChangeSet {warm_diff:.3f}s, built by the source); runs "
        + ", ".join(f"{r[1]:.3f}" for r in warm)
    )
    print(
        f"diffwise suite warm, one process (DIFFWISE_ANALYSIS_WORKERS=0), median of {repeat}: {alone_suite:.3f}s, "
        f"{alone[0][2]} findings (same as with workers: {alone[0][2] == warm[0][2]}); runs "
        + ", ".join(f"{r[1]:.3f}" for r in alone)
    )
    print(
        f"diffwise review --no-llm cold (fresh process, external + tests off), median of {repeat}: "
        f"{cold_cli:.3f}s, {cold[0][1]} findings; runs " + ", ".join(f"{r[0]:.3f}" for r in cold)
    )
    if not bandit_runs:
        return 0
    bandit = statistics.median(r[0] for r in bandit_runs)
    print(
        f"bandit -r (same files), median of {len(bandit_runs)}: {bandit:.3f}s, {bandit_runs[0][1]} results; "
        "runs " + ", ".join(f"{r[0]:.3f}" for r in bandit_runs)
    )
    pairs_warm = [b[0] / w[1] for b, w in zip(bandit_runs, warm, strict=False)]
    pairs_alone = [b[0] / w[1] for b, w in zip(bandit_runs, alone, strict=False)]
    pairs_cold = [b[0] / c[0] for b, c in zip(bandit_runs, cold, strict=False)]
    print(
        f"speed-up vs bandit (median of per-run ratios): warm suite {statistics.median(pairs_warm):.1f}x "
        f"(incl. ChangeSet {bandit / (warm_suite + warm_diff):.1f}x), warm one process "
        f"{statistics.median(pairs_alone):.1f}x, cold CLI {statistics.median(pairs_cold):.1f}x; "
        f"target 5x; load average now {_load()}"
    )
    # CPU seconds: on a shared machine other processes stretch wall times; CPU time counts only the work
    # (the one-process run: a worker process's CPU is not counted in this one's)
    alone_cpu = statistics.median(w[3] for w in alone)
    cold_cpu = statistics.median(c[2] for c in cold)
    bandit_cpu = statistics.median(b[2] for b in bandit_runs)
    print(
        f"CPU seconds (medians): warm suite in one process {alone_cpu:.3f}, cold CLI {cold_cpu:.3f}, "
        f"bandit {bandit_cpu:.3f}; bandit/diffwise: warm {bandit_cpu / alone_cpu:.1f}x, "
        f"cold {bandit_cpu / cold_cpu:.1f}x"
    )
    shards.POOL.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
