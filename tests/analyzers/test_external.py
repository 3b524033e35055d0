"""External tool adapters: real ruff and bandit runs, fake tools for semgrep, timeouts, notes and de-duplication."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from analyzers.base import AnalyzerContext, Confidence, Finding, Severity
from analyzers.external import (
    ExternalAnalyzer,
    _safe_relative,
    available_tools,
    drop_duplicates,
    parse_bandit,
    parse_ruff,
    parse_semgrep_sarif,
    run_external,
)
from analyzers.registry import load_analyzer
from tests.analyzers.test_quality_support import context

VULN = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
TOOLS = available_tools()
needs_ruff = pytest.mark.skipif(TOOLS["ruff"] is None, reason="ruff not installed")
needs_bandit = pytest.mark.skipif(TOOLS["bandit"] is None, reason="bandit not installed")


def fake_tool(tmp_path: Path, name: str, body: str) -> str:
    script = tmp_path / "bin" / name
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!{sys.executable}\nimport json, os, sys, time\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def none_but(**tools: str | None) -> dict[str, str | None]:
    return {"ruff": None, "bandit": None, "semgrep": None} | tools


def external(path: str, rule: str, line: int, cwe: int | None, end: int | None = None) -> Finding:
    return Finding(rule, rule.split("/")[0], Severity.MEDIUM, Confidence.MEDIUM, "m", path, line, end or line, cwe=cwe)


def test_registry_loads_the_external_analyzer() -> None:
    analyzer = load_analyzer("external")
    assert analyzer is not None
    assert analyzer.name == "external"


@needs_ruff
@needs_bandit
def test_real_ruff_and_bandit_on_a_changed_file() -> None:
    result = run_external(
        context({"pkg/shell.py": (VULN, None)}), binaries=none_but(ruff=TOOLS["ruff"], bandit=TOOLS["bandit"])
    )
    assert result.ran == ("ruff", "bandit")
    assert result.notes == ("semgrep: not installed; skipped",)
    by_rule = {f.rule: f for f in result.findings}
    assert "external/bandit-B602" in by_rule  # bandit knows the CWE ...
    assert "external/ruff-S602" not in by_rule  # ... so ruff's copy of the same finding is dropped
    b602 = by_rule["external/bandit-B602"]
    assert (b602.path, b602.start_line, b602.cwe, b602.severity) == ("pkg/shell.py", 5, 78, Severity.HIGH)
    assert b602.code.strip() == "return subprocess.call(cmd, shell=True)"
    assert "external/bandit-B404" not in by_rule  # bandit LOW severity noise is not reported


@needs_ruff
def test_findings_on_unchanged_lines_are_filtered() -> None:
    base = VULN
    head = VULN + "\n\ndef other():\n    return 1\n"
    result = run_external(context({"pkg/shell.py": (head, base)}), binaries=none_but(ruff=TOOLS["ruff"]))
    assert result.ran == ("ruff",)
    assert result.findings == ()
    everything = run_external(
        context({"pkg/shell.py": (head, base)}, mode="file"), binaries=none_but(ruff=TOOLS["ruff"])
    )
    assert [f.rule for f in everything.findings] == ["external/ruff-S602"]


@needs_ruff
@needs_bandit
def test_tools_never_execute_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    evil = f"import os\nos.system('touch {marker}')\nopen({str(marker)!r}, 'w').write('x')\n"
    run_external(context({"evil.py": (evil, None)}), binaries=none_but(ruff=TOOLS["ruff"], bandit=TOOLS["bandit"]))
    assert not marker.exists()


def test_absent_tools_and_policy_switches_are_notes_not_errors() -> None:
    ctx = context({"pkg/shell.py": (VULN, None)}, bandit=False)
    result = run_external(ctx, binaries=none_but())
    assert result.findings == ()
    assert result.ran == ()
    assert result.notes == (
        "ruff: not installed; skipped",
        "bandit: turned off by policy",
        "semgrep: not installed; skipped",
    )
    off = run_external(context({"pkg/shell.py": (VULN, None)}, enabled=False), binaries=none_but())
    assert off.notes == ("external tools are turned off by policy",)


def test_no_python_files_means_nothing_to_run(tmp_path: Path) -> None:
    ruff = fake_tool(tmp_path, "ruff", "raise SystemExit('must not run')")
    result = run_external(context({"web/a.js": ("x = 1;\n", None)}), binaries=none_but(ruff=ruff))
    assert result.notes[0] == "ruff: no files it reads in this change"


def test_timeout_and_crash_become_notes(tmp_path: Path) -> None:
    slow = fake_tool(tmp_path, "ruff", "time.sleep(10)")
    crash = fake_tool(tmp_path, "bandit", "sys.stderr.write('Traceback: boom\\n'); sys.exit(2)")
    ctx = context({"pkg/shell.py": (VULN, None)})
    result = run_external(ctx, binaries=none_but(ruff=slow, bandit=crash), timeout=0.5)
    assert result.findings == ()
    assert result.notes[0] == "ruff: timed out after 0.5s; skipped"
    assert result.notes[1].startswith("bandit: exited 2: Traceback: boom")


def test_unreadable_output_is_a_note(tmp_path: Path) -> None:
    garbage = fake_tool(tmp_path, "ruff", "print('not json')")
    result = run_external(context({"pkg/shell.py": (VULN, None)}), binaries=none_but(ruff=garbage))
    assert result.notes == (
        "ruff: unreadable output (JSONDecodeError); skipped",
        "bandit: not installed; skipped",
        "semgrep: not installed; skipped",
    )


def test_subprocess_environment_carries_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("PRIVATE_KEY", "-----BEGIN")
    body = (
        "print(json.dumps([{'code': 'S999', 'message': ' '.join(sorted(os.environ)), 'filename': sys.argv[-1],"
        " 'location': {'row': 5}, 'end_location': {'row': 5}}]))"
    )
    spy = fake_tool(tmp_path, "ruff", body)
    (finding,) = run_external(context({"pkg/shell.py": (VULN, None)}), binaries=none_but(ruff=spy)).findings
    assert "ANTHROPIC_API_KEY" not in finding.message
    assert "PRIVATE_KEY" not in finding.message
    assert "PATH" in finding.message


def test_semgrep_runs_only_with_a_repo_config_read_from_the_base(tmp_path: Path) -> None:
    sarif = {
        "runs": [
            {
                "tool": {
                    "driver": {
                        "rules": [
                            {
                                "id": "rules.no-shell",
                                "properties": {"tags": ["CWE-78: OS Command Injection"]},
                                "helpUri": "https://example.com/no-shell",
                            }
                        ]
                    }
                },
                "results": [
                    {
                        "ruleId": "rules.no-shell",
                        "level": "error",
                        "message": {"text": "shell=True with a variable"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": "pkg/shell.py"},
                                    "region": {"startLine": 5},
                                }
                            }
                        ],
                    }
                ],
            }
        ]
    }
    body = (
        "args = sys.argv\n"
        "config = open(args[args.index('--config') + 1]).read()\n"
        "assert 'no-shell' in config, config\n"
        f"print(json.dumps({sarif!r}))"
    )
    semgrep = fake_tool(tmp_path, "semgrep", body)
    ctx = context({"pkg/shell.py": (VULN, None)})
    no_config = run_external(ctx, binaries=none_but(semgrep=semgrep))
    assert "semgrep: no .semgrep.yml or .semgrep.yaml in the repository; skipped" in no_config.notes
    base = {".semgrep.yml": "rules:\n  - id: no-shell\n"}
    ctx = AnalyzerContext(ctx.changeset, ctx.read_file, settings=ctx.settings, read_base_file=base.get)
    result = run_external(ctx, binaries=none_but(semgrep=semgrep))
    assert result.ran == ("semgrep",)
    (finding,) = result.findings
    assert (finding.rule, finding.cwe, finding.severity, finding.start_line) == (
        "external/semgrep-no-shell",
        78,
        Severity.HIGH,
        5,
    )
    assert finding.references == ("https://example.com/no-shell",)


def test_parsers_map_fields() -> None:
    texts = {"a.py": "x = 1\ny = eval(x)\n"}
    ruff = json.dumps(
        [
            {
                "code": "S307",
                "message": "Use of eval",
                "filename": "/tmp/x/src/a.py",
                "location": {"row": 2},
                "end_location": {"row": 2},
                "url": "https://docs.astral.sh/ruff/rules/suspicious-eval-usage",
            },
            {"code": "invalid-syntax", "message": "bad", "filename": "/tmp/x/src/a.py", "location": {"row": 1}},
        ]
    )
    (f,) = parse_ruff(ruff, texts)
    assert (f.rule, f.path, f.cwe, f.code) == ("external/ruff-S307", "a.py", 94, "y = eval(x)")
    bandit = json.dumps(
        {
            "results": [
                {
                    "test_id": "B307",
                    "issue_severity": "MEDIUM",
                    "issue_confidence": "HIGH",
                    "issue_cwe": {"id": 78},
                    "issue_text": "eval",
                    "filename": "./a.py",
                    "line_range": [2],
                }
            ]
        }
    )
    (b,) = parse_bandit(bandit, texts)
    assert (b.rule, b.path, b.cwe, b.confidence) == ("external/bandit-B307", "a.py", 94, Confidence.HIGH)
    generic = bandit.replace("B307", "B999")  # no specific mapping: bandit's own CWE stays
    assert parse_bandit(generic, texts)[0].cwe == 78
    assert parse_semgrep_sarif(json.dumps({"runs": []}), texts) == []


def test_drop_duplicates() -> None:
    ours = [
        external("a.py", "security/sql-injection", 10, 89, end=11),
        external("a.py", "security/weak-hash", 20, 328),
        external("a.py", "quality/mutable-default", 30, None),
    ]
    candidates = [
        external("a.py", "external/bandit-B608", 11, 89),  # same CWE, overlapping line: dropped
        external("a.py", "external/bandit-B608", 12, 89),  # next line: kept
        external("b.py", "external/bandit-B608", 10, 89),  # other file: kept
        external("a.py", "external/bandit-B324", 20, 327),  # CWE alias 327 ~ 328: dropped
        external("a.py", "external/bandit-B602", 10, 78),  # different CWE: kept
        external("a.py", "external/ruff-B006", 30, None),  # our quality rule says the same: dropped
        external("a.py", "external/ruff-F401", 30, None),  # no CWE, no equivalent: kept
        external("c.py", "external/ruff-S608", 5, 89),  # ruff and bandit on the same line: bandit kept
        external("c.py", "external/bandit-B608", 5, 89),
        external("d.py", "external/ruff-S103", 7, None),  # same check number, no CWE on ruff's side
        external("d.py", "external/bandit-B103", 7, 732),
    ]
    kept = drop_duplicates(candidates, ours)
    assert [(f.path, f.rule, f.start_line) for f in kept] == [
        ("a.py", "external/bandit-B608", 12),
        ("b.py", "external/bandit-B608", 10),
        ("a.py", "external/bandit-B602", 10),
        ("a.py", "external/ruff-F401", 30),
        ("c.py", "external/bandit-B608", 5),
        ("d.py", "external/bandit-B103", 7),
    ]


def test_unsafe_paths_are_never_copied() -> None:
    assert _safe_relative("pkg/a.py")
    for bad in ("../a.py", "/etc/passwd", "a/../../b.py", "a\\..\\b.py", ""):
        assert not _safe_relative(bad)


def test_analyzer_keeps_the_last_run_for_notes() -> None:
    analyzer = ExternalAnalyzer()
    ctx = context({"web/a.js": ("x = 1;\n", None)}, ruff=False, bandit=False, semgrep=False)
    assert analyzer.analyze(ctx) == []
    assert analyzer.last_run is not None
    assert len(analyzer.last_run.notes) == 3
    assert os.environ.get("PATH")
