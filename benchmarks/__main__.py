"""`python -m benchmarks [NAME ...]`: run every benchmark next to its baseline and write one markdown report."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name → what it measures (each module prints a markdown section with its own baseline and ratios)
BENCHMARKS: dict[str, str] = {
    "receiver": "webhook receiver throughput and latency vs Probot; idle RSS",
    "changeset": "change model + syntax map wall time and peak RSS",
    "precision": "security precision/recall vs Bandit and ruff -S (CWE match)",
    "analysis_speed": "analyzer suite wall time vs Bandit",
    "publish": "GitHub API calls per review; placement replay (0 rejected)",
    "llm_tokens": "LLM input tokens vs PR-Agent's context scheme; cache share; parallel wall time",
    "testgen": "suggested tests: pass rate and mutation kill rate vs ghostwriter and a no-crash floor",
    "load": "60 s of sustained signed deliveries, then every accepted one processed exactly once",
    "chaos": "kill -9 of the worker across 100 PR reviews: one review per PR, no duplicate comment",
    "noise": "inline comments per 1,000 added lines on real release pairs vs Bandit and ruff -S on added lines",
}


def machine() -> str:
    try:
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in ln
            ),
            platform.processor() or "unknown CPU",
        )
    except OSError:
        model = platform.processor() or "unknown CPU"
    try:
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        mem_gib = f"{int(mem.split()[1]) / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        mem_gib = "?"
    return (
        f"{platform.system()} {platform.release()}, {model}, {os.cpu_count()} cores, {mem_gib} RAM, "
        f"Python {platform.python_version()}"
    )


def run_one(name: str, timeout: float) -> tuple[str, float]:
    started = time.perf_counter()
    if not (ROOT / "benchmarks" / f"{name}.py").exists():
        return f"## {name}\n\n_skipped: benchmarks/{name}.py is not in this checkout._\n", 0.0
    # Baseline tools (bandit, ruff, hypothesis's ghostwriter) live next to this interpreter: put them on PATH.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    try:
        proc = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"## {name}\n\n_did not finish within {timeout:.0f} s._\n", time.perf_counter() - started
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return f"## {name}\n\n_failed (exit {proc.returncode}):_\n\n```\n{tail}\n```\n", elapsed
    return proc.stdout.strip() + "\n", elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "REPORT.md"))
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per benchmark")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    sections = [
        "# diffwise benchmark report",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on {machine()}.",
        "Every figure is next to a baseline measured in the same run; ratios, not absolute times, are the claim.",
        "",
    ]
    for name in names:
        print(f"running {name}: {BENCHMARKS[name]} ...", file=sys.stderr)
        text, elapsed = run_one(name, args.timeout)
        sections += [text, f"<sub>{name}: {elapsed:.0f} s</sub>", ""]
    Path(args.output).write_text("\n".join(sections), encoding="utf-8")
    print(f"report written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
