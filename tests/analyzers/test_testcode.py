"""Security findings, security-tagged tool results and private keys in test code are demoted; nothing else is."""

from __future__ import annotations

import pytest

from analyzers.base import Confidence, Finding, Severity
from analyzers.testcode import demote_test_code


def finding(rule: str, path: str, *, cwe: int | None = None, source: str = "analyzer") -> Finding:
    return Finding(
        rule=rule,
        analyzer=rule.split("/")[0],
        severity=Severity.CRITICAL,
        confidence=Confidence.HIGH,
        message="m",
        path=path,
        start_line=1,
        end_line=1,
        cwe=cwe,
        source=source,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("rule", "path", "cwe"),
    [
        ("security/tls-verify-disabled", "tests/test_client.py", 295),
        ("security/os-command-injection", "pkg/test_runner.py", 78),
        ("security/xss-response", "web/__tests__/render.spec.ts", 79),
        ("external/bandit-B301", "tests/unit/test_cache.py", 502),
        ("secrets/private-key", "tests/certs/server.key", 798),
        ("security/weak-hash", "internal/hash_test.go", 328),
    ],
)
def test_demoted_in_test_code(rule: str, path: str, cwe: int) -> None:
    [out] = demote_test_code([finding(rule, path, cwe=cwe)])
    assert out.severity == Severity.LOW
    assert out.confidence == Confidence.LOW
    assert out.extra["test_code"] is True
    assert out.id == finding(rule, path, cwe=cwe).id  # same finding: outcomes and dedupe still recognise it


@pytest.mark.parametrize(
    ("rule", "path", "cwe", "source"),
    [
        ("security/tls-verify-disabled", "src/client.py", 295, "analyzer"),  # not test code
        ("security/sql-injection", "app/testimonials.py", 89, "analyzer"),  # "test" in a name is not a test
        ("secrets/aws-access-key", "tests/test_s3.py", 798, "analyzer"),  # a real token format: still a leak
        ("external/ruff-B904", "tests/test_x.py", None, "analyzer"),  # a tool's style result keeps its level
        ("quality/complexity", "tests/test_x.py", None, "analyzer"),
        ("llm/injection", "tests/test_x.py", 89, "llm"),  # the LLM judged it in context
    ],
)
def test_left_alone(rule: str, path: str, cwe: int | None, source: str) -> None:
    original = finding(rule, path, cwe=cwe, source=source)
    assert demote_test_code([original]) == [original]


def test_the_pipeline_hides_security_findings_in_tests_under_the_default_confidence_floor() -> None:
    import asyncio

    from analyzers.diff import ChangeSet
    from app.pipeline import ReviewInput, run_review
    from app.policy import Policy

    code = "import requests\n\n\ndef fetch(url):\n    return requests.get(url, verify=False, timeout=5)\n"
    files = {"src/client.py": code, "tests/test_client.py": code}
    diff = "".join(
        f"--- /dev/null\n+++ b/{p}\n@@ -0,0 +1,5 @@\n" + "".join(f"+{line}\n" for line in t.splitlines())
        for p, t in files.items()
    )
    inp = ReviewInput(changeset=ChangeSet.from_unified_diff(diff), read_head=files.get, policy=Policy())
    review = asyncio.run(run_review(inp))
    tls = [f for f in review.findings if f.rule == "security/tls-verify-disabled"]
    assert [f.path for f in tls] == ["src/client.py"]
    lowered = Policy.model_validate({"analyzers": {"security": {"min_confidence": "low"}}})
    review = asyncio.run(run_review(ReviewInput(changeset=inp.changeset, read_head=files.get, policy=lowered)))
    tls = {f.path: f for f in review.findings if f.rule == "security/tls-verify-disabled"}
    assert set(tls) == {"src/client.py", "tests/test_client.py"}
    assert tls["tests/test_client.py"].severity == Severity.LOW
