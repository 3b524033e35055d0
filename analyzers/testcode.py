"""Findings in test code are demoted: tests exercise insecure options and carry fixture keys on purpose.

A review that raises `verify=False` in a TLS test, or six "CRITICAL private key" comments on a test suite's
certificates, teaches a team to ignore the bot. In test files (analyzers.testmap's conventions: tests/,
test_*.py, *_test.go, *.spec.ts, ...) security findings, security-tagged findings of external tools and
private keys are reported at low severity and low confidence: the default `analyzers.security.min_confidence:
medium` then hides the security ones, and the rest go to the summary instead of inline comments. Tokens with a
known format (cloud keys, GitHub tokens, ...) are not demoted: a real one in a test is still a leak.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from analyzers.base import Confidence, Finding, Severity
from analyzers.testmap import is_test_path

_DEMOTED_SECRETS = frozenset({"secrets/private-key"})


def demote_test_code(findings: Iterable[Finding]) -> list[Finding]:
    out: list[Finding] = []
    for f in findings:
        if f.source == "analyzer" and _demoted(f) and is_test_path(f.path):
            f = replace(
                f,
                severity=min(f.severity, Severity.LOW),
                confidence=Confidence.LOW,
                extra={**f.extra, "test_code": True},
            )
        out.append(f)
    return out


def _demoted(f: Finding) -> bool:
    if f.analyzer == "security":
        return True
    if f.analyzer == "external":
        return f.cwe is not None  # bandit's and semgrep's security results; ruff's style results keep theirs
    return f.rule in _DEMOTED_SECRETS
