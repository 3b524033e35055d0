"""Golden corpus: fixture files whose `expect:` comments list every finding; clean look-alikes give none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.analyzers.test_quality_support import run

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "quality"
EXPECT = re.compile(r"expect(-next)?: ([\w, -]+)")
FILES = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".py", ".js", ".go", ".java"))


def expectations(text: str) -> set[tuple[int, str]]:
    out: set[tuple[int, str]] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            at = number + 1 if match.group(1) else number
            out.update((at, rule.strip()) for rule in match.group(2).split(",") if rule.strip())
    return out


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_gives_exactly_the_expected_findings(name: str) -> None:
    text = (CORPUS / name).read_text(encoding="utf-8")
    findings = run(f"lib/{name}", text)
    expected = expectations(text)
    unmatched = set(expected)
    extra = []
    for f in findings:
        rule = f.rule.split("/", 1)[1]
        hits = {(n, r) for n, r in expected if r == rule and f.start_line <= n <= f.end_line}
        if not hits:
            extra.append((f.start_line, f.end_line, rule, f.code[:60]))
        unmatched -= hits
    assert extra == [], f"unexpected findings (false positives) in {name}"
    assert unmatched == set(), f"missed findings in {name}"
    if name.startswith(("clean", "Clean")):
        assert findings == []
    else:
        assert expected
