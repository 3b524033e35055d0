"""The security analyzer on changes: diff filter modes, data-flow verdicts, certain fixes, symbols."""

from __future__ import annotations

import pytest

from analyzers.base import AnalyzerContext, Confidence
from analyzers.diff import ChangeSet
from analyzers.security import SecurityAnalyzer, scan_source
from analyzers.syntax import build_syntax_map

HEAD = """\
import os
import yaml


def old(cmd):
    os.system(cmd)


def new(cmd):
    data = yaml.load(cmd)
    return data
"""
# line 6 (os.system in old) is unchanged context; line 10 (yaml.load) is added
DIFF = """\
--- a/app.py
+++ b/app.py
@@ -4,3 +4,8 @@
 
 def old(cmd):
     os.system(cmd)
+
+
+def new(cmd):
+    data = yaml.load(cmd)
+    return data
"""


def _ctx(mode: str, syntax: bool = False) -> AnalyzerContext:
    cs = ChangeSet.from_unified_diff(DIFF)
    reader = {"app.py": HEAD}.get
    smap = build_syntax_map(cs, reader) if syntax else None
    return AnalyzerContext(changeset=cs, read_file=reader, syntax=smap, mode=mode)  # type: ignore[arg-type]


def test_added_mode_skips_findings_on_unchanged_lines() -> None:
    findings = SecurityAnalyzer().analyze(_ctx("added"))
    assert [(f.rule, f.start_line) for f in findings] == [("security/yaml-unsafe-load", 10)]


def test_diff_context_mode_includes_context_lines_of_hunks() -> None:
    rules = {(f.rule, f.start_line) for f in SecurityAnalyzer().analyze(_ctx("diff_context"))}
    assert rules == {("security/os-command-injection", 6), ("security/yaml-unsafe-load", 10)}


def test_file_mode_reports_everything() -> None:
    assert len(SecurityAnalyzer().analyze(_ctx("file"))) == 2


@pytest.mark.parametrize("syntax", [False, True])
def test_symbol_and_fix_with_and_without_a_syntax_map(syntax: bool) -> None:
    [f] = SecurityAnalyzer().analyze(_ctx("added", syntax=syntax))
    assert f.symbol == "new"
    assert f.fix is not None
    assert (f.fix.start_line, f.fix.end_line) == (10, 10)
    assert f.fix.replacement == "    data = yaml.safe_load(cmd)"
    assert f.confidence is Confidence.HIGH


def _rules(src: str) -> dict[int, tuple[str, Confidence]]:
    return {f.start_line: (f.rule.split("/")[1], f.confidence) for f in scan_source("t.py", src)}


def test_literal_constant_and_sanitised_values_never_fire() -> None:
    src = """\
import os, shlex
BASE = "ls -l"
def f(user):
    os.system("ls -l")
    os.system(BASE)
    cmd = "echo " + shlex.quote(user)
    os.system(cmd)
    n = int(user)
    os.system("kill %d" % n)
"""
    assert _rules(src) == {}


def test_confidence_follows_the_origin() -> None:
    src = """\
import os
from flask import request
def f(param):
    os.system(request.args["c"])
    os.system(param)
    os.system(load_command())
"""
    found = _rules(src)
    assert found[4] == ("os-command-injection", Confidence.HIGH)
    assert found[5] == ("os-command-injection", Confidence.HIGH)
    assert found[6] == ("os-command-injection", Confidence.MEDIUM)


def test_reassignment_with_a_sanitiser_dominates_but_a_branch_joins() -> None:
    src = """\
import os, shlex
def f(x, flag):
    x = shlex.quote(x)
    os.system("echo " + x)
    y = "safe"
    if flag:
        y = x + "; " + input()
    os.system("echo " + y)
"""
    assert set(_rules(src)) == {8}


def test_taint_flows_through_containers_and_string_builders() -> None:
    src = """\
import os
from flask import request
def f():
    parts = ["echo"]
    parts.append(request.cookies.get("name"))
    line = " ".join(parts)
    os.system(line)
    msg = "hello {}".format(request.headers["X"])
    os.popen(msg)
"""
    assert set(_rules(src)) == {7, 9}


def test_secrets_inside_flagged_code_are_masked() -> None:
    token = "ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"
    src = f'import os\ndef f(x):\n    os.system("curl -H {token} " + x)\n'
    [f] = scan_source("t.py", src)
    assert token not in f.code
    assert token not in f.message


def test_unknown_language_and_unparsable_text_give_nothing() -> None:
    assert scan_source("notes.txt", "os.system(x)") == []
    assert scan_source("broken.py", "def (:\n  os.system(") == []


def test_a_context_regex_absent_from_the_file_is_ruled_out_once_and_only_when_that_is_safe() -> None:
    from analyzers.rulepack import Context
    from analyzers.security import _FileText

    text = _FileText(b"def view():\n    return make(x)\n")
    assert not text.may_match(Context(regex=r"@[\w.]+\.(?:route|get)\("))  # nowhere in the file: in no part
    assert text.may_match(Context(regex="(?i)MAKE"))
    # anchors, boundaries and lookarounds can match in a part but not in the whole: never ruled out
    for regex in (r"^\s+return", r"(?<!\w)x\b", r"^(?![\s\S]*view)", "x$"):
        assert text.may_match(Context(regex=regex))
    assert _FileText(b"\xff bad utf-8").may_match(Context(regex="nothing-like-this"))  # parts may decode otherwise


def test_a_library_implementing_its_callers_opt_out_is_low_confidence() -> None:
    code = (
        "import ssl\n\n\ndef make(verify=True):\n    ctx = ssl.create_default_context()\n"
        "    if verify is False:\n        ctx.verify_mode = ssl.CERT_NONE\n    return ctx\n\n\n"
        "def always():\n    ctx = ssl.create_default_context()\n    ctx.verify_mode = ssl.CERT_NONE\n    return ctx\n"
    )
    found = {f.start_line: f.confidence for f in scan_source("client.py", code) if f.rule == "security/cert-none"}
    assert found == {7: Confidence.LOW, 13: Confidence.HIGH}
