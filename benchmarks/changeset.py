"""Benchmark: ChangeSet + syntax map (+ changed symbols, enclosing lookups, slices) on synthetic PRs of growing size.

Run: ``python -m benchmarks.changeset [--sizes 20,100,500]``. Each size runs in a fresh subprocess so its peak
RSS is its own. A PR of N files has 100 changed lines per file (50 replaced lines in ~400-line files),
round-robin over Python, JavaScript, TypeScript, Go and Java. Prints a markdown section.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

LINES_CHANGED_PER_FILE = 100
FUNCTIONS_PER_FILE = 50


def _python(i: int, f: int, changed: bool) -> list[str]:
    body = f"        return total + {f}" if not changed else f"        return total - {f} * 2"
    return [
        f"    def method_{f}(self, items: list[int], factor: float = {f}.5) -> float:",
        f'        """Method {f} of class {i}."""',
        "        total = 0",
        "        for item in items:",
        "            total += item * factor",
        body,
        "",
    ]


def _javascript(i: int, f: int, changed: bool) -> list[str]:
    body = f"    return total + {f};" if not changed else f"    return total - {f} * 2;"
    return [
        f"  method{f}(items, factor = {f}) {{",
        "    let total = 0;",
        "    for (const item of items) {",
        "      total += item * factor;",
        "    }",
        body,
        "  }",
    ]


def _typescript(i: int, f: int, changed: bool) -> list[str]:
    body = f"    return total + {f};" if not changed else f"    return total - {f} * 2;"
    return [
        f"  method{f}(items: number[], factor: number = {f}): number {{",
        "    let total = 0;",
        "    for (const item of items) {",
        "      total += item * factor;",
        "    }",
        body,
        "  }",
    ]


def _go(i: int, f: int, changed: bool) -> list[str]:
    body = f"\treturn total + {f}" if not changed else f"\treturn total - {f}*2"
    return [
        f"func (c *Type{i}) Method{f}(items []int, factor int) int {{",
        "\ttotal := 0",
        "\tfor _, item := range items {",
        "\t\ttotal += item * factor",
        "\t}",
        body,
        "}",
    ]


def _java(i: int, f: int, changed: bool) -> list[str]:
    body = f"        return total + {f};" if not changed else f"        return total - {f} * 2;"
    return [
        f"    public int method{f}(int[] items, int factor) {{",
        "        int total = 0;",
        "        for (int item : items) {",
        "            total += item * factor;",
        "        }",
        body,
        "    }",
    ]


_KINDS: list[tuple[str, Callable[[int, int, bool], list[str]], list[str], list[str]]] = [
    ("py", _python, ["class Type{i}:"], []),
    ("js", _javascript, ["class Type{i} {{"], ["}"]),
    ("ts", _typescript, ["export class Type{i} {{"], ["}"]),
    ("go", _go, ["package pkg{i}", "", "type Type{i} struct{{}}", ""], []),
    ("java", _java, ["public class Type{i} {{"], ["}"]),
]


def synthetic_pr(n_files: int) -> tuple[str, dict[str, str]]:
    """A unified diff touching n_files files (100 changed lines each) and the head texts by path."""
    diff_parts: list[str] = []
    heads: dict[str, str] = {}
    for i in range(n_files):
        ext, make, prologue, epilogue = _KINDS[i % len(_KINDS)]
        path = f"src/pkg{i // 50}/module_{i}.{ext}"
        head_lines = [p.format(i=i) for p in prologue]
        base_lines = list(head_lines)
        for f in range(FUNCTIONS_PER_FILE):
            base_lines += make(i, f, False)
            head_lines += make(i, f, True)  # one replaced line per function: 2 changed lines
        head_lines += epilogue
        base_lines += epilogue
        base = "\n".join(base_lines) + "\n"
        head = "\n".join(head_lines) + "\n"
        heads[path] = head
        diff_parts.append(f"diff --git a/{path} b/{path}\n")
        diff_parts.extend(
            difflib.unified_diff(base.splitlines(True), head.splitlines(True), f"a/{path}", f"b/{path}", n=3)
        )
    return "".join(diff_parts), heads


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def child(n_files: int) -> dict[str, float]:
    """Measure one size in this process (called in a fresh subprocess)."""
    from analyzers.diff import ChangeSet
    from analyzers.languages import get_language
    from analyzers.slices import context_slices
    from analyzers.syntax import build_syntax_map

    for lang in ("python", "javascript", "typescript", "go", "java"):
        get_language(lang)  # grammar loading is a one-off start-up cost, not per PR
    diff, heads = synthetic_pr(n_files)
    rss_before = _rss_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    cs = ChangeSet.from_unified_diff(diff)
    t1 = time.perf_counter()
    smap = build_syntax_map(cs, heads.get)
    t2 = time.perf_counter()
    c2 = time.process_time()
    changed_symbols = smap.changed_symbols()
    lookups = 0
    for f in cs.files:
        for line in f.added_lines:
            smap.enclosing(f.path, line)
            lookups += 1
    t3 = time.perf_counter()
    slices = context_slices(cs, smap, heads.get)
    t4 = time.perf_counter()
    return {
        "files": len(cs.files),
        "changed_lines": cs.changed_line_count,
        "diff_mb": len(diff) / 1e6,
        "source_mb": sum(len(t) for t in heads.values()) / 1e6,
        "changeset_s": t1 - t0,
        "syntax_s": t2 - t1,
        "symbols_s": t3 - t2,
        "slices_s": t4 - t3,
        "core_s": t2 - t0,
        "core_cpu_s": c2 - c0,
        "changed_symbols": len(changed_symbols),
        "lookups": lookups,
        "slices": len(slices),
        "rss_before_mb": rss_before,
        "rss_peak_mb": _rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="20,100,250,500", help="comma-separated file counts")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per size; the best is shown")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        runs = []
        for _ in range(args.repeat):
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.changeset", "--child", str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(proc.stdout))
        best = min(runs, key=lambda r: r["core_s"])  # best of N: the least disturbed by other load
        best["core_median_s"] = statistics.median(r["core_s"] for r in runs)
        rows.append(best)
    print("## Change model: ChangeSet + syntax map\n")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"Python {platform.python_version()} on {platform.machine()} ({os.cpu_count()} CPUs, load average {load});"
        f" each size run {args.repeat}× in a fresh process, best run shown (median of the core time alongside)."
    )
    print("Synthetic PRs: ~400-line files in Python/JS/TS/Go/Java, 100 changed lines per file.\n")
    print(
        "| files | changed lines | diff MB | ChangeSet s | syntax map s | **ChangeSet + syntax s** (median) "
        "| CPU s | µs / changed line | changed symbols + enclosing s | slices s | RSS before MB | peak RSS MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per_line = r["core_s"] / max(r["changed_lines"], 1) * 1e6
        print(
            f"| {r['files']:.0f} | {r['changed_lines']:.0f} | {r['diff_mb']:.2f} | {r['changeset_s']:.3f} "
            f"| {r['syntax_s']:.3f} | **{r['core_s']:.3f}** ({r['core_median_s']:.3f}) | {r['core_cpu_s']:.3f} "
            f"| {per_line:.1f} | {r['symbols_s']:.3f} | {r['slices_s']:.3f} | {r['rss_before_mb']:.0f} "
            f"| {r['rss_peak_mb']:.0f} |"
        )
    print(
        "\nRSS before = after generating the PR's diff and head texts in memory (the input); peak - before is what"
        " the change model itself holds. Target: ChangeSet + syntax map under 1 s for 10,000 changed lines"
        " in 100 files, linear growth."
    )


if __name__ == "__main__":
    main()
