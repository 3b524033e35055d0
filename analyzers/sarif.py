"""Findings → one SARIF 2.1.0 log that GitHub code scanning accepts (CWE tags, security-severity, fingerprints)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from analyzers.base import Confidence, Finding, Fix, Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL_NAME = "diffwise"
INFORMATION_URI = "https://github.com/diffwise/diffwise"
FINGERPRINT_KEY = "diffwise/v1"
SRCROOT = "%SRCROOT%"

# Analyzers whose every rule is a security rule, whether or not a finding carries a CWE.
SECURITY_ANALYZERS = frozenset({"security", "secrets"})

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning buckets: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "1.0",
}
_PRECISION = {Confidence.HIGH: "high", Confidence.MEDIUM: "medium", Confidence.LOW: "low"}
_PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "note": "recommendation"}


def is_security(finding: Finding) -> bool:
    return finding.cwe is not None or finding.analyzer in SECURITY_ANALYZERS


def level(severity: Severity) -> str:
    return _LEVEL[severity]


def artifact_uri(path: str) -> str:
    """A relative URI reference for a repository path (percent-encoded, forward slashes)."""
    return quote(path.replace("\\", "/").lstrip("/"), safe="/-._~")


def to_sarif(findings: Iterable[Finding], tool_version: str, repo_root: str | Path | None = None) -> dict[str, Any]:
    """One SARIF run for `findings`; rules ordered by id, results in the order given."""
    items = list(findings)
    rule_ids = sorted({f.rule for f in items})
    index = {rule: i for i, rule in enumerate(rule_ids)}
    by_rule: dict[str, list[Finding]] = {}
    for f in items:
        by_rule.setdefault(f.rule, []).append(f)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "informationUri": INFORMATION_URI,
                "version": tool_version or "0",
                "rules": [_rule(rule, by_rule[rule]) for rule in rule_ids],
            }
        },
        "results": [_result(f, index[f.rule]) for f in items],
        "columnKind": "unicodeCodePoints",
    }
    if repo_root is not None:
        root = Path(repo_root).resolve().as_uri()
        run["originalUriBaseIds"] = {SRCROOT: {"uri": root if root.endswith("/") else root + "/"}}
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def _text(*candidates: str) -> str:
    for c in candidates:
        if c and c.strip():
            return c.strip()
    return "diffwise finding"


def _rule(rule: str, findings: Sequence[Finding]) -> dict[str, Any]:
    # Rule metadata is per rule, but arrives on findings: take the most severe finding as representative.
    head = max(findings, key=lambda f: (f.severity, f.confidence))
    cwes = sorted({f.cwe for f in findings if f.cwe is not None})
    tags: list[str] = []
    properties: dict[str, Any] = {}
    if is_security(head) or cwes:
        tags.append("security")
        tags.extend(f"external/cwe/cwe-{n}" for n in cwes)
        properties["security-severity"] = _SECURITY_SEVERITY[head.severity]
    else:
        tags.append("maintainability" if head.analyzer == "quality" else head.analyzer or "diffwise")
    properties["tags"] = tags
    properties["precision"] = _PRECISION[head.confidence]
    properties["problem.severity"] = _PROBLEM_SEVERITY[level(head.severity)]
    descriptor: dict[str, Any] = {
        "id": rule,
        "name": _rule_name(rule),
        "shortDescription": {"text": _text(head.title, rule)},
        "fullDescription": {"text": _text(head.title, head.message, rule)},
        "defaultConfiguration": {"level": level(head.severity)},
        "properties": properties,
    }
    links = [r for f in findings for r in f.references if r.startswith(("https://", "http://"))]
    if links:
        descriptor["helpUri"] = links[0]
        descriptor["help"] = {
            "text": "\n".join(dict.fromkeys(links)),
            "markdown": "\n".join(f"- <{link}>" for link in dict.fromkeys(links)),
        }
    return descriptor


def _rule_name(rule: str) -> str:
    tail = rule.rsplit("/", 1)[-1]
    words = [w for w in tail.replace("_", "-").split("-") if w]
    return "".join(w[:1].upper() + w[1:] for w in words) or "Rule"


def _region(start: int, end: int) -> dict[str, int]:
    start = max(1, start)
    return {"startLine": start, "endLine": max(start, end)}


def _location(f: Finding) -> dict[str, Any]:
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": artifact_uri(f.path), "uriBaseId": SRCROOT},
        "region": _region(f.start_line, f.end_line),
    }
    if f.code.strip():
        physical["region"]["snippet"] = {"text": f.code}
    location: dict[str, Any] = {"physicalLocation": physical}
    if f.symbol:
        location["logicalLocations"] = [{"fullyQualifiedName": f.symbol, "kind": "function"}]
    return location


def _fix(f: Finding, fix: Fix) -> dict[str, Any]:
    start = max(1, fix.start_line)
    end = max(start, fix.end_line)
    if fix.replacement == "":
        # delete the lines themselves, newline included: from column 1 of start to column 1 of the next line
        deleted: dict[str, int] = {"startLine": start, "startColumn": 1, "endLine": end + 1, "endColumn": 1}
        replacement: dict[str, Any] = {"deletedRegion": deleted}
    else:
        text = fix.replacement[:-1] if fix.replacement.endswith("\n") else fix.replacement
        replacement = {"deletedRegion": _region(start, end), "insertedContent": {"text": text}}
    return {
        "description": {"text": _text(f"Suggested fix for {f.title or f.rule}")},
        "artifactChanges": [
            {
                "artifactLocation": {"uri": artifact_uri(f.path), "uriBaseId": SRCROOT},
                "replacements": [replacement],
            }
        ],
    }


def _result(f: Finding, rule_index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": {"text": _text(f.message, f.title, f.rule)},
        "locations": [_location(f)],
        "partialFingerprints": {FINGERPRINT_KEY: f.id},
        "properties": {
            "severity": f.severity.label,
            "confidence": f.confidence.label,
            "analyzer": f.analyzer,
            "source": f.source,
        },
    }
    if f.cwe is not None:
        result["properties"]["cwe"] = f"CWE-{f.cwe}"
    if f.fix is not None:
        result["fixes"] = [_fix(f, f.fix)]
    return result
