"""The context builder: numbered hunks, enclosing functions, fences, redaction, token estimate, risk."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzers.base import Confidence, Finding, Severity
from analyzers.diff import ChangeSet
from app.llm_context import (
    REDACTED,
    build_file_contexts,
    builtin_redact,
    choose_boundary,
    estimate_tokens,
    fence,
    redactor,
    render_file,
    render_prior,
    risk_score,
)
from tests.app.test_llm_review import DIFF, HEAD, Sym, Syntax, read_head


def test_every_shown_line_has_its_new_number() -> None:
    changed = ChangeSet.from_unified_diff(DIFF).files[0]
    text, symbols = render_file(changed, with_context=False)
    lines = text.splitlines()
    assert lines[0] == "## tools/runner.py"  # "modified" is the default and goes unsaid
    body = [ln for ln in lines[1:] if not ln.startswith("@@")]
    for ln in body:
        if ln.startswith("-"):  # a removed line has no new-file number
            continue
        number, _, rest = ln.partition(" ")
        assert number.isdigit()
        assert HEAD.splitlines()[int(number) - 1].rstrip() == rest[1:].rstrip()
    assert symbols == ()


def test_enclosing_function_is_shown_whole() -> None:
    diff = """--- a/tools/runner.py
+++ b/tools/runner.py
@@ -16 +16 @@ def total(items):
-    return sum(i.cost for i in items)
+    return sum(i.price for i in items)
"""
    changed = ChangeSet.from_unified_diff(diff).files[0]
    plain, _ = render_file(changed, with_context=False)
    assert "def total" not in plain.split("\n", 2)[2]
    text, symbols = render_file(changed, syntax=Syntax(), read_head=read_head)
    assert symbols == ("total",)
    assert "\n15  def total(items):\n" in text
    assert "\n16 +    return sum(i.price for i in items)\n" in text


def test_renamed_file_and_pure_deletion() -> None:
    diff = """diff --git a/old.py b/new.py
similarity index 80%
rename from old.py
rename to new.py
--- a/old.py
+++ b/new.py
@@ -1,3 +1,2 @@
 a = 1
-b = 2
 c = 3
"""
    changed = ChangeSet.from_unified_diff(diff).files[0]
    text, _ = render_file(changed)
    assert text.startswith("## new.py (renamed from old.py)")
    assert "\n1  a = 1\n-b = 2\n2  c = 3" in text


def test_contexts_skip_files_without_hunks_and_redact() -> None:
    diff = DIFF.replace("+    return None", '+    token = "ghp_' + "x" * 36 + '"')
    contexts = build_file_contexts(ChangeSet.from_unified_diff(diff), redact=builtin_redact)
    (ctx,) = contexts
    assert "ghp_" not in ctx.text
    assert REDACTED in ctx.text
    assert ctx.tokens == estimate_tokens(ctx.text)


@pytest.mark.parametrize(
    "secret",
    [
        "sk-ant-api03-abcdefghijklmnop",
        "ghp_" + "A" * 36,
        "github_pat_" + "B" * 40,
        "AKIAABCDEFGHIJKLMNOP",
        "xoxb-1234567890-abcdef",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_builtin_redaction(secret: str) -> None:
    assert secret not in builtin_redact(f"x = {secret!r}\n")


def test_assigned_secrets_keep_their_name() -> None:
    assert builtin_redact('password = "hunter2hunter2"') == f'password = "{REDACTED}"'


def test_known_values_are_masked() -> None:
    redact = redactor(["my-very-own-key-123"])
    assert "my-very-own-key-123" not in redact("the key is my-very-own-key-123!")


@given(st.lists(st.text(max_size=50), max_size=5))
def test_boundary_is_absent_from_untrusted_text(texts: list[str]) -> None:
    token = choose_boundary(texts, b"salt", "o/r#1")
    assert all(token not in t for t in texts)


def test_boundary_is_stable_per_pr_and_changes_on_collision() -> None:
    first = choose_boundary(["x"], b"salt", "o/r#1")
    assert first == choose_boundary(["y"], b"salt", "o/r#1")
    assert first != choose_boundary(["y"], b"salt", "o/r#2")
    assert choose_boundary([f"look: {first}"], b"salt", "o/r#1") != first
    assert choose_boundary(["x"]) != choose_boundary(["x"])  # no salt: random


def test_fence_refuses_text_with_the_token() -> None:
    assert fence("hi", "tok", "k") == "<<<DATA tok k\nhi\nDATA tok>>>"
    with pytest.raises(ValueError, match="fence token"):
        fence("tok", "tok", "k")


def test_token_estimate_is_roughly_a_tokenizer() -> None:
    code = "def add(a: int, b: int) -> int:\n    return a + b\n"
    assert 15 <= estimate_tokens(code) <= 30
    assert estimate_tokens("") == 0


def test_risk_prefers_risky_code_over_docs() -> None:
    risky = ChangeSet.from_unified_diff(
        "--- a/app/auth.py\n+++ b/app/auth.py\n@@ -1 +1,2 @@\n x = 1\n+subprocess.run(cmd, shell=True)\n"
    ).files[0]
    docs = ChangeSet.from_unified_diff("--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n x\n+more words\n").files[0]
    assert risk_score(risky) > risk_score(docs)


class _LongSyntax:
    def innermost(self, path: str, line: int) -> Sym:
        return Sym("Worker.process", 2, 40, "def process(self, items):")


def test_long_function_shows_signature_and_block_headers() -> None:
    body = ["class Worker:", "    def process(self, items):", "        total = 0"]
    body += [f"        step_{i} = {i}" for i in range(10)]
    body += ["        for item in items:", "            if item.ok:", "                total += item.value"]
    body += [f"        tail_{i} = {i}" for i in range(24)]
    head = "\n".join(body) + "\n"
    old = head.replace("total += item.value", "total += item.val")
    diff = "".join(difflib.unified_diff(old.splitlines(True), head.splitlines(True), "a/w.py", "b/w.py", n=1))
    changed = ChangeSet.from_unified_diff(diff).files[0]
    text, symbols = render_file(changed, syntax=_LongSyntax(), read_head=lambda p: head)
    assert symbols == ("Worker.process",)
    rows = [ln for ln in text.splitlines() if ln.split(" ", 1)[0].isdigit()]
    assert [int(r.split(" ", 1)[0]) for r in rows] == [2, 14, 15, 16, 17]  # git's 1 line after the change
    assert "\n2      def process(self, items):\n" in text
    assert "\n14          for item in items:\n" in text
    assert "\n16 +                total += item.value\n" in text


def test_prior_findings_name_each_path_once() -> None:
    def prior(path: str, line: int, rule: str) -> Finding:
        return Finding(
            rule=rule,
            analyzer="quality",
            severity=Severity.LOW,
            confidence=Confidence.HIGH,
            message="m",
            path=path,
            start_line=line,
            end_line=line + (rule == "b"),
            title=f"title {rule}",
        )

    found = [prior("a.py", 9, "b"), prior("a.py", 3, "a"), prior("c.py", 1, "c"), prior("z.py", 1, "z")]
    assert render_prior(found, ["a.py", "c.py"]) == "## a.py\n3 a: title a\n9-10 b: title b\n## c.py\n1 c: title c"
    assert render_prior(found, ["a.py", "c.py"], limit=1) == "## a.py\n3 a: title a\n… and 2 more"
