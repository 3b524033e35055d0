"""Wall time of the security + secrets analyzers on a synthetic 5,000-line, 50-file Python change vs Bandit.

The change adds 50 generated modules of 100 lines each (handlers, helpers, classes, a few sinks and
safe look-alikes). Ours runs in-process through the Analyzer interface on the ChangeSet ("added" mode);
Bandit runs as its CLI on the same files, as a CI job would. Cold = first run in a fresh process
(imports, grammar load and rule compilation included); warm = a second run.

    python benchmarks/analysis_speed.py [--files 50] [--lines 100]
"""

from __future__ import annotations

import argparse
import random
import shutil
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


def run_ours(sources: dict[str, str]) -> tuple[float, float, int]:
    """(seconds to build the ChangeSet, seconds in the two analyzers, findings)."""
    from analyzers.base import AnalyzerContext
    from analyzers.diff import ChangeSet
    from analyzers.secrets import SecretsAnalyzer
    from analyzers.security import SecurityAnalyzer

    start = time.perf_counter()
    changeset = ChangeSet.from_unified_diff(as_diff(sources))
    built = time.perf_counter()
    ctx = AnalyzerContext(changeset=changeset, read_file=sources.get, mode="added")
    findings = SecurityAnalyzer().analyze(ctx) + SecretsAnalyzer().analyze(ctx)
    return built - start, time.perf_counter() - built, len(findings)


def run_bandit(directory: Path) -> tuple[float, int] | None:
    exe = shutil.which("bandit")
    if exe is None:
        return None
    start = time.perf_counter()
    proc = subprocess.run([exe, "-q", "-f", "json", "-r", str(directory)], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    return elapsed, proc.stdout.count('"test_id"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="warm/Bandit runs; the best (minimum) is reported")
    args = parser.parse_args(argv)
    sources = make_change(args.files, args.lines)
    total_lines = sum(t.count("\n") for t in sources.values())
    import_start = time.perf_counter()
    import analyzers.secrets
    import analyzers.security  # noqa: F401

    imports = time.perf_counter() - import_start
    diff_cold, cold, found = run_ours(sources)
    warm_runs = [run_ours(sources) for _ in range(max(args.repeat, 1))]
    diff_warm = min(r[0] for r in warm_runs)
    warm = min(r[1] for r in warm_runs)
    first_warm = warm_runs[0][1]
    with tempfile.TemporaryDirectory() as tmp:
        for path, text in sources.items():
            target = Path(tmp) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        bandit_runs = [run_bandit(Path(tmp)) for _ in range(max(args.repeat, 1))]
    bandit = None if bandit_runs[0] is None else (min(r[0] for r in bandit_runs if r), bandit_runs[0][1])
    first_bandit = bandit_runs[0][0] if bandit_runs[0] else None
    cold_total = imports + diff_cold + cold
    print(f"change: {len(sources)} files, {total_lines} added lines")
    print(
        f"diffwise cold (fresh process: imports {imports:.3f}s + ChangeSet {diff_cold:.3f}s + analyzers "
        f"{cold:.3f}s, grammar load and rule compilation included): {cold_total:.3f}s, {found} findings"
    )
    print(
        f"diffwise warm (long-lived worker), best of {len(warm_runs)}: analyzers {warm:.3f}s "
        f"(+ ChangeSet {diff_warm:.3f}s, shared); first warm run {first_warm:.3f}s"
    )
    if bandit is None or first_bandit is None:
        print("bandit: not installed")
        return 0
    print(f"bandit CLI (same files), best of {len(bandit_runs)}: {bandit[0]:.3f}s; first run {first_bandit:.3f}s")
    print(
        f"speed-up vs bandit (best of each): cold {bandit[0] / cold_total:.1f}x, warm analyzers "
        f"{bandit[0] / warm:.1f}x, warm incl. ChangeSet {bandit[0] / (warm + diff_warm):.1f}x; "
        f"single-run ratio (first warm vs first bandit) {first_bandit / first_warm:.1f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
