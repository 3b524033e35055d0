"""Every security rule against annotated fixtures: `ruleid: X` lines must fire, `ok: X` look-alikes must not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analyzers.rulepack import builtin_packs
from analyzers.security import scan_source

FIXTURES = Path(__file__).parent.parent / "fixtures" / "security"
_MARK = re.compile(r"(?:#|//|\{/\*)\s*(ruleid|ok):\s*([a-z0-9-]+)\s*(?:\*/\})?$")
CASE_FILES = sorted(p for p in FIXTURES.glob("*_cases.*"))


def _annotations(text: str) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    """(line, rule) pairs expected to fire and expected not to, from comment marks on the previous line."""
    expected: set[tuple[int, str]] = set()
    safe: set[tuple[int, str]] = set()
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = _MARK.search(line.strip())
        if m is None:
            continue
        target = i + 2  # the next line, 1-based
        while target - 1 < len(lines) and _MARK.search(lines[target - 1].strip()):
            target += 1
        (expected if m.group(1) == "ruleid" else safe).add((target, m.group(2)))
    return expected, safe


@pytest.mark.parametrize("case_file", CASE_FILES, ids=lambda p: p.name)
def test_annotated_cases(case_file: Path) -> None:
    text = case_file.read_text()
    expected, safe = _annotations(text)
    found = {(f.start_line, f.rule.split("/", 1)[1]) for f in scan_source(case_file.name, text)}
    missing = sorted(expected - found)
    false_alarms = sorted(safe & found)
    assert not missing, f"true positives not reported: {missing}"
    assert not false_alarms, f"safe look-alikes reported: {false_alarms}"


def test_every_rule_has_a_true_positive_and_a_safe_case() -> None:
    covered: dict[str, tuple[set[str], set[str]]] = {}
    for case_file in CASE_FILES:
        expected, safe = _annotations(case_file.read_text())
        pack = case_file.name.split("_")[0]
        pos, neg = covered.setdefault(pack, (set(), set()))
        pos.update(r for _, r in expected)
        neg.update(r for _, r in safe)
    packs = {pack.language: pack for pack in builtin_packs().values()}
    for language, pack in packs.items():
        pos, neg = covered.get(language, (set(), set()))
        for rule in pack.rules:
            assert rule.id in pos, f"{language}/{rule.id} has no true-positive fixture"
            assert rule.id in neg, f"{language}/{rule.id} has no safe look-alike fixture"


def test_findings_carry_cwe_severity_and_stable_ids() -> None:
    text = (FIXTURES / "python_cases.py").read_text()
    findings = scan_source("python_cases.py", text)
    assert findings
    assert all(f.cwe for f in findings)
    shifted = scan_source("python_cases.py", "\n\n" + text)
    assert {f.id for f in findings} == {f.id for f in shifted}
    assert len({f.id for f in findings}) == len(findings)
