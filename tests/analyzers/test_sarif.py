"""SARIF output validates against the official 2.1.0 schema and carries what GitHub code scanning reads."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers.base import Confidence, Finding, Fix, Severity
from analyzers.sarif import FINGERPRINT_KEY, SRCROOT, artifact_uri, to_sarif

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"


@cache
def _validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def _validate(log: dict[str, Any]) -> None:
    # a JSON round trip first: what is written to disk is what must validate
    _validator().validate(json.loads(json.dumps(log)))


def _finding(**kw: Any) -> Finding:
    base: dict[str, Any] = {
        "rule": "security/sql-injection",
        "analyzer": "security",
        "severity": Severity.HIGH,
        "confidence": Confidence.HIGH,
        "message": "SQL built from a request parameter.",
        "path": "app/db.py",
        "start_line": 10,
        "end_line": 11,
        "title": "SQL injection",
        "cwe": 89,
        "symbol": "Repo.find",
        "code": 'cur.execute("select * from t where id=" + uid)',
        "references": ("https://cwe.mitre.org/data/definitions/89.html",),
    }
    base.update(kw)
    return Finding(**base)


FINDINGS = [
    _finding(),
    _finding(path="app/other file.py", start_line=3, end_line=3, code="x", symbol=None),
    _finding(
        rule="quality/debugger",
        analyzer="quality",
        severity=Severity.LOW,
        confidence=Confidence.HIGH,
        message="A `debugger` statement was left in.",
        path="web/app.js",
        start_line=4,
        end_line=4,
        title="Debug leftover",
        cwe=None,
        code="debugger;",
        references=(),
        fix=Fix(4, 4, ""),
    ),
    _finding(
        rule="security/yaml-load",
        cwe=502,
        severity=Severity.CRITICAL,
        fix=Fix(7, 7, "data = yaml.safe_load(text)\n"),
        code="data = yaml.load(text)",
    ),
    _finding(rule="secrets/aws-access-key", analyzer="secrets", cwe=798, severity=Severity.MEDIUM),
    _finding(rule="quality/complexity", analyzer="quality", cwe=None, severity=Severity.INFO, references=()),
]


def test_validates_against_official_schema() -> None:
    log = to_sarif(FINDINGS, "0.1.0", repo_root="/tmp/repo")
    _validate(log)
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "diffwise"
    assert run["tool"]["driver"]["version"] == "0.1.0"
    assert run["originalUriBaseIds"][SRCROOT]["uri"] == "file:///tmp/repo/"


def test_rules_carry_security_and_cwe_tags() -> None:
    run = to_sarif(FINDINGS, "0.1.0")["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert list(rules) == sorted(rules)
    sql = rules["security/sql-injection"]["properties"]
    assert "security" in sql["tags"]
    assert "external/cwe/cwe-89" in sql["tags"]
    assert sql["security-severity"] == "8.0"
    assert sql["precision"] == "high"
    assert rules["security/yaml-load"]["properties"]["security-severity"] == "9.5"
    assert "external/cwe/cwe-798" in rules["secrets/aws-access-key"]["properties"]["tags"]
    complexity = rules["quality/complexity"]["properties"]
    assert "security" not in complexity["tags"]
    assert "security-severity" not in complexity
    assert rules["security/sql-injection"]["helpUri"].startswith("https://cwe.mitre.org/")


def test_results_point_at_rules_locations_and_fingerprints() -> None:
    run = to_sarif(FINDINGS, "0.1.0")["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == len(FINDINGS)
    for result, finding in zip(run["results"], FINDINGS, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == finding.rule
        assert result["partialFingerprints"] == {FINGERPRINT_KEY: finding.id}
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uriBaseId"] == SRCROOT
        assert physical["region"]["startLine"] == finding.start_line
        assert physical["region"]["endLine"] == finding.end_line
    levels = [r["level"] for r in run["results"]]
    assert levels == ["error", "error", "note", "error", "warning", "note"]
    assert run["results"][1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "app/other%20file.py"


def test_fixes_delete_or_replace_whole_lines() -> None:
    results = to_sarif(FINDINGS, "0.1.0")["runs"][0]["results"]
    delete = results[2]["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert delete == {"deletedRegion": {"startLine": 4, "startColumn": 1, "endLine": 5, "endColumn": 1}}
    replace = results[3]["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replace["deletedRegion"] == {"startLine": 7, "endLine": 7}
    assert replace["insertedContent"]["text"] == "data = yaml.safe_load(text)"
    assert "fixes" not in results[0]


def test_empty_log_is_valid() -> None:
    log = to_sarif([], "")
    _validate(log)
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"] == []


def test_artifact_uri_is_relative_and_encoded() -> None:
    assert artifact_uri("/src/a b#c.py") == "src/a%20b%23c.py"
    assert artifact_uri("dir\\x.py") == "dir/x.py"


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_path = st.lists(st.text("abcXYZ019 _-.#%?é", min_size=1, max_size=8), min_size=1, max_size=4).map("/".join)


@st.composite
def _findings(draw: st.DrawFn) -> Finding:
    start = draw(st.integers(min_value=0, max_value=10_000))
    end = draw(st.integers(min_value=0, max_value=10_000))
    fix = draw(
        st.none()
        | st.builds(Fix, st.integers(min_value=0, max_value=500), st.integers(min_value=0, max_value=500), _text)
    )
    analyzer = draw(st.sampled_from(["security", "secrets", "quality", "external", "llm"]))
    return Finding(
        rule=f"{analyzer}/{draw(st.text('abc-_', min_size=1, max_size=10))}",
        analyzer=analyzer,
        severity=draw(st.sampled_from(list(Severity))),
        confidence=draw(st.sampled_from(list(Confidence))),
        message=draw(_text),
        path=draw(_path),
        start_line=start,
        end_line=end,
        title=draw(_text),
        cwe=draw(st.none() | st.integers(min_value=1, max_value=2000)),
        fix=fix,
        symbol=draw(st.none() | _text),
        code=draw(_text),
        references=tuple(draw(st.lists(st.sampled_from(["https://example.com/x", "not a url", ""]), max_size=2))),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(_findings(), max_size=8), st.text("0123456789.", max_size=6))
def test_any_findings_give_a_valid_log(findings: list[Finding], version: str) -> None:
    log = to_sarif(findings, version)
    _validate(log)
    results = log["runs"][0]["results"]
    assert [r["partialFingerprints"][FINGERPRINT_KEY] for r in results] == [f.id for f in findings]
    for r in results:
        region = r["locations"][0]["physicalLocation"]["region"]
        assert 1 <= region["startLine"] <= region["endLine"]


def test_the_schema_is_really_applied() -> None:
    log = to_sarif(FINDINGS[:1], "0.1.0")
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        _validate(log)
