"""Precision/recall of our security analyzer vs Bandit and `ruff --select S` on a labelled Python corpus.

Scoring follows the OWASP Benchmark: a test case (one file) counts as flagged by a tool when the tool
reports a finding carrying the case's CWE in that file. Per category: TPR − FPR; the score is their
average over categories. "strict" requires the exact CWE each tool emits; "lenient" also accepts the
near-synonyms listed in LENIENT (e.g. Bandit files weak hashes under CWE-327, eval under CWE-78).

    python benchmarks/precision.py [--corpus DIR ...] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzers.secrets import find_secrets  # noqa: E402
from analyzers.security import scan_source  # noqa: E402

DEFAULT_CORPORA = [
    ROOT / "tests" / "fixtures" / "security" / "corpus" / "owasp-python",
    ROOT / "tests" / "fixtures" / "security" / "corpus" / "python",
]

# ruff's flake8-bandit codes carry no CWE in ruff's output; use the CWE Bandit gives the same check
RUFF_CWE = {
    "S101": 703, "S102": 78, "S103": 732, "S104": 605, "S105": 259, "S106": 259, "S107": 259, "S108": 377,
    "S110": 703, "S112": 703, "S113": 400, "S201": 94, "S202": 22, "S301": 502, "S302": 502, "S303": 327,
    "S304": 327, "S305": 327, "S306": 377, "S307": 78, "S308": 79, "S310": 22, "S311": 330, "S312": 319,
    "S313": 20, "S314": 20, "S315": 20, "S316": 20, "S317": 20, "S318": 20, "S319": 20, "S320": 20,
    "S321": 319, "S323": 295, "S324": 327, "S401": 319, "S402": 319, "S403": 502, "S404": 78, "S405": 20,
    "S406": 20, "S407": 20, "S408": 20, "S409": 20, "S411": 20, "S412": 319, "S413": 327, "S415": 319,
    "S501": 295, "S502": 327, "S503": 327, "S504": 295, "S505": 326, "S506": 20, "S507": 295, "S508": 327,
    "S509": 327, "S601": 78, "S602": 78, "S603": 78, "S604": 78, "S605": 78, "S606": 78, "S607": 78,
    "S608": 89, "S609": 78, "S610": 89, "S611": 89, "S612": 94, "S701": 94, "S702": 94, "S704": 79,
}  # fmt: skip

# category CWE -> CWEs also accepted in the lenient view
LENIENT = {328: {327}, 94: {95, 78}, 611: {20}, 502: {20}, 22: set(), 79: {94}}


@dataclass
class Tool:
    name: str
    seconds: float = 0.0
    cwes: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # file name -> CWEs
    error: str | None = None


@dataclass(frozen=True)
class Case:
    file: str
    category: str
    vulnerable: bool
    cwe: int


def load_cases(corpus: Path) -> list[Case]:
    with (corpus / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#") and r[0] != "file"]
    return [Case(r[0], r[1], r[2].strip().lower() == "true", int(r[3])) for r in rows]


def run_ours(corpus: Path, cases: list[Case]) -> Tool:
    tool = Tool("diffwise")
    start = time.perf_counter()
    for case in cases:
        text = (corpus / case.file).read_text(encoding="utf-8")
        for finding in scan_source(case.file, text):
            if finding.cwe:
                tool.cwes[case.file].add(finding.cwe)
        if find_secrets(text, path=case.file):
            tool.cwes[case.file].add(798)
    tool.seconds = time.perf_counter() - start
    return tool


def run_bandit(corpus: Path, cases: list[Case]) -> Tool:
    tool = Tool("bandit")
    exe = shutil.which("bandit")
    if exe is None:
        tool.error = "bandit not installed"
        return tool
    files = [str(corpus / c.file) for c in cases]
    start = time.perf_counter()
    proc = subprocess.run([exe, "-f", "json", "-q", *files], capture_output=True, text=True, check=False)
    tool.seconds = time.perf_counter() - start
    try:
        data = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        tool.error = f"bandit output unreadable: {proc.stderr[-200:]}"
        return tool
    for result in data.get("results", []):
        cwe = (result.get("issue_cwe") or {}).get("id")
        if cwe:
            tool.cwes[Path(result["filename"]).name].add(int(cwe))
    return tool


def run_ruff(corpus: Path, cases: list[Case]) -> Tool:
    tool = Tool("ruff-S")
    exe = shutil.which("ruff")
    if exe is None:
        tool.error = "ruff not installed"
        return tool
    files = [str(corpus / c.file) for c in cases]
    args = [exe, "check", "--isolated", "--no-cache", "--select", "S", "--output-format", "json", *files]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    tool.seconds = time.perf_counter() - start
    try:
        data = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        tool.error = f"ruff output unreadable: {proc.stderr[-200:]}"
        return tool
    for item in data:
        cwe = RUFF_CWE.get(item.get("code") or "")
        if cwe:
            tool.cwes[Path(item["filename"]).name].add(cwe)
    return tool


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    positives: int = 0
    negatives: int = 0

    @property
    def tpr(self) -> float:
        return self.tp / self.positives if self.positives else 0.0

    @property
    def fpr(self) -> float:
        return self.fp / self.negatives if self.negatives else 0.0


def score(tool: Tool, cases: list[Case], lenient: bool) -> dict[str, Score]:
    by_category: dict[str, Score] = defaultdict(Score)
    for case in cases:
        accepted = {case.cwe} | (LENIENT.get(case.cwe, set()) if lenient else set())
        flagged = bool(tool.cwes.get(case.file, set()) & accepted)
        s = by_category[case.category]
        if case.vulnerable:
            s.positives += 1
            s.tp += flagged
        else:
            s.negatives += 1
            s.fp += flagged
    return dict(by_category)


def summary(per_category: dict[str, Score]) -> dict[str, float]:
    tp = sum(s.tp for s in per_category.values())
    fp = sum(s.fp for s in per_category.values())
    positives = sum(s.positives for s in per_category.values())
    n = len(per_category) or 1
    return {
        "score": sum(s.tpr - s.fpr for s in per_category.values()) / n,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / positives if positives else 0.0,
        "tp": tp,
        "fp": fp,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, action="append", help="corpus dir with labels.csv (repeatable)")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)
    report: dict[str, object] = {}
    for corpus in args.corpus or DEFAULT_CORPORA:
        cases = load_cases(corpus)
        tools = [run_ours(corpus, cases), run_bandit(corpus, cases), run_ruff(corpus, cases)]
        corpus_report: dict[str, object] = {"cases": len(cases), "vulnerable": sum(c.vulnerable for c in cases)}
        for mode in ("strict", "lenient"):
            rows = {}
            for tool in tools:
                per_cat = score(tool, cases, lenient=mode == "lenient")
                rows[tool.name] = {
                    **summary(per_cat),
                    "seconds": round(tool.seconds, 3),
                    "error": tool.error,
                    "categories": {k: round(v.tpr - v.fpr, 3) for k, v in sorted(per_cat.items())},
                }
            corpus_report[mode] = rows
        report[str(corpus.relative_to(ROOT) if corpus.is_relative_to(ROOT) else corpus)] = corpus_report
        if not args.json:
            _print(corpus, corpus_report)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def _print(corpus: Path, report: dict[str, object]) -> None:
    print(f"\n== {corpus.name}: {report['cases']} cases, {report['vulnerable']} vulnerable ==")
    for mode in ("strict", "lenient"):
        rows = report[mode]
        assert isinstance(rows, dict)
        print(f"-- CWE match: {mode}")
        print(f"{'tool':10} {'score':>7} {'prec':>6} {'recall':>6} {'TP':>4} {'FP':>4} {'secs':>6}")
        for name, row in rows.items():
            if row["error"]:
                print(f"{name:10} skipped: {row['error']}")
                continue
            print(
                f"{name:10} {row['score']:7.3f} {row['precision']:6.2f} {row['recall']:6.2f} "
                f"{row['tp']:4d} {row['fp']:4d} {row['seconds']:6.2f}"
            )
        cats = sorted(next(iter(rows.values()))["categories"])
        print("per category (TPR-FPR): " + "  ".join(cats))
        for name, row in rows.items():
            print(f"  {name:10} " + "  ".join(f"{row['categories'].get(c, 0):+.2f}" for c in cats))
    ours = report["strict"]["diffwise"]  # type: ignore[index]
    bandit = report["strict"]["bandit"]  # type: ignore[index]
    if not bandit["error"] and bandit["score"] > 0:
        print(f"strict score ratio diffwise/bandit: {ours['score'] / bandit['score']:.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
