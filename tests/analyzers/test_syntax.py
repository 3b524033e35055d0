"""Syntax map: per-language symbol chains, Python signatures, changed symbols and parse-error findings."""

from __future__ import annotations

import difflib
import itertools
import logging
from pathlib import Path

import pytest

import analyzers.syntax as syntax_module
from analyzers import languages
from analyzers.diff import ChangeSet
from analyzers.languages import has_grammar
from analyzers.syntax import Param, build_syntax_map, parse_file, syntax_findings

FIXTURES = Path(__file__).parent.parent / "fixtures" / "syntax"

# fixture → (language, symbol chain at the line marked MARK, kind of the innermost symbol)
NESTED = {
    "nested.py": ("python", ["Cart", "Cart.total", "Cart.total.helper"], "function"),
    "nested.js": ("javascript", ["Cart", "Cart.total", "Cart.total.helper"], "function"),
    "nested.ts": ("typescript", ["Cart", "Cart.total", "Cart.total.helper"], "function"),
    "nested.tsx": ("tsx", ["CartView", "CartView.renderRow"], "function"),
    "nested.go": ("go", ["Cart.Total"], "method"),
    "Nested.java": ("java", ["Outer", "Outer.Inner", "Outer.Inner.compute"], "method"),
    "nested.rs": ("rust", ["Cart", "Cart.total", "Cart.total.helper"], "function"),
    "nested.rb": ("ruby", ["Shop", "Shop.Cart", "Shop.Cart.total"], "method"),
    "Nested.cs": ("csharp", ["Cart", "Cart.Line", "Cart.Line.Total", "Cart.Line.Total.Helper"], "function"),
    "nested.php": ("php", ["Cart", "Cart.total"], "method"),
    "nested.c": ("c", ["total"], "function"),
    "nested.cpp": ("cpp", ["Cart", "Cart.total"], "method"),
    "nested.kt": ("kotlin", ["Cart", "Cart.total", "Cart.total.helper"], "function"),
    "nested.sh": ("bash", ["outer", "outer.inner"], "function"),
    # optional wheels (tree-sitter-swift, -scala, -hcl): skipped when not installed
    "nested.swift": ("swift", ["Cart", "Cart.total", "Cart.total.helper"], "function"),
    "Nested.scala": ("scala", ["Cart", "Cart.total", "Cart.total.helper"], "function"),
    "nested.tf": ("hcl", ["aws_s3_bucket.logs", "aws_s3_bucket.logs.versioning"], "class"),
    "nested.yml": ("yaml", ["jobs", "jobs.build", "jobs.build.steps"], "class"),
}


def _mark_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if "MARK" in line)


@pytest.mark.parametrize("name", sorted(NESTED))
def test_nested_change_resolves_to_symbol_chain(name: str) -> None:
    language, chain, kind = NESTED[name]
    if not has_grammar(language):
        pytest.skip(f"tree-sitter grammar for {language} not installed")
    text = (FIXTURES / name).read_text()
    fs = parse_file(name, text)
    assert fs.language == language
    assert fs.tree is not None
    assert fs.errors == ()
    line = _mark_line(text)
    enclosing = fs.enclosing(line)
    assert [s.qualname for s in enclosing] == chain
    innermost = fs.innermost(line)
    assert innermost is not None
    assert innermost.qualname == chain[-1]
    assert innermost.kind == kind
    assert innermost.start_line <= line <= innermost.end_line
    for outer, inner in itertools.pairwise(enclosing):
        assert outer.start_line <= inner.start_line <= inner.end_line <= outer.end_line
        assert inner.parent == outer.qualname


def test_python_symbol_details() -> None:
    fs = parse_file("nested.py", (FIXTURES / "nested.py").read_text())
    by_name = {s.qualname: s for s in fs.symbols}
    total = by_name["Cart.total"]
    assert total.kind == "method"
    assert total.parent == "Cart"
    assert total.decorators == ("functools.cache",)
    assert total.docstring == "Sum of the items."
    assert total.start_line == 9  # the decorator line belongs to the method
    assert total.signature.startswith("def total(self, discount: float = 1.0, /, *items: int")
    assert total.signature.endswith("-> float")
    assert total.params == (
        Param("self", None, None, "positional_only"),
        Param("discount", "float", "1.0", "positional_only"),
        Param("items", "int", None, "var_positional"),
        Param("rounding", "str", '"half"', "keyword_only"),
        Param("opts", None, None, "var_keyword"),
    )
    assert by_name["Cart"].docstring == "A cart of items."
    assert by_name["free"].params == (Param("a"), Param("b", None, "2"))
    assert fs.enclosing(3) == ()  # module level


def test_params_in_other_languages() -> None:
    def params(name: str, qualname: str) -> list[tuple[str, str | None, str | None, str]]:
        fs = parse_file(name, (FIXTURES / name).read_text())
        sym = next(s for s in fs.symbols if s.qualname == qualname)
        return [(p.name, p.annotation, p.default, p.kind) for p in sym.params]

    assert params("nested.ts", "Cart.total") == [
        ("discount", "number", None, "positional"),
        ("label", "string", None, "positional"),
    ]
    assert params("nested.go", "Cart.Total") == [
        ("discount", "float64", None, "positional"),
        ("names", "string", None, "var_positional"),
    ]
    assert params("nested.rb", "Shop.Cart.total") == [
        ("discount", None, None, "positional"),
        ("rest", None, None, "var_positional"),
        ("key", None, "1", "keyword_only"),
        ("opts", None, None, "var_keyword"),
        ("blk", None, None, "positional"),
    ]
    assert params("Nested.java", "Outer.Inner.compute")[1] == ("names", "String", None, "var_positional")
    assert params("Nested.cs", "Cart.Line.Total")[2] == ("rest", "int[]", None, "var_positional")
    assert params("nested.kt", "Cart.total")[1] == ("name", "String", '"x"', "positional")
    assert params("nested.c", "main") == []


def test_docstrings_from_comments() -> None:
    fs = parse_file("nested.go", (FIXTURES / "nested.go").read_text())
    assert fs.innermost(12) is not None
    assert {s.qualname: s.docstring for s in fs.symbols}["Cart.Total"] == "Total sums the cart."
    rs = parse_file("nested.rs", (FIXTURES / "nested.rs").read_text())
    assert {s.qualname: s.docstring for s in rs.symbols}["Cart.total"] == "Sum of the items."


def test_missing_grammar_degrades_to_line_level(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="analyzers")
    monkeypatch.setitem(languages._languages, "ruby", None)  # as if tree-sitter-ruby were not installed
    monkeypatch.setattr(syntax_module, "_noted", set())
    fs = parse_file("lib/x.rb", "def f\nend\n")
    assert fs.language == "ruby"
    assert fs.tree is None
    assert fs.symbols == ()
    assert fs.enclosing(1) == ()
    assert fs.innermost(1) is None
    assert any("line-level" in r.getMessage() for r in caplog.records)
    unknown = parse_file("notes.txt", "hello\n")
    assert unknown.language is None
    assert unknown.tree is None


def test_grammar_without_symbol_rules_still_gives_a_tree() -> None:
    if not has_grammar("dockerfile"):
        pytest.skip("tree-sitter-dockerfile not installed")
    fs = parse_file("Dockerfile", "FROM python:3.12\nRUN pip install x\n")
    assert fs.tree is not None
    assert fs.symbols == ()


DIFF_PY = """\
diff --git a/m.py b/m.py
--- a/m.py
+++ b/m.py
@@ -1,6 +1,10 @@
 class A:
     def kept(self):
-        return 1
+        return 2
 
     def same(self):
         return 3
+
+
+def brand_new(x):
+    return x
"""

HEAD_PY = """\
class A:
    def kept(self):
        return 2

    def same(self):
        return 3


def brand_new(x):
    return x
"""


def test_changed_symbols_added_and_modified() -> None:
    cs = ChangeSet.from_unified_diff(DIFF_PY)
    smap = build_syntax_map(cs, lambda p: HEAD_PY if p == "m.py" else None)
    changed = {(c.symbol.qualname, c.change) for c in smap.changed_symbols()}
    assert changed == {("A", "modified"), ("A.kept", "modified"), ("brand_new", "added")}
    assert smap.changed_symbols("other.py") == []
    assert [s.qualname for s in smap.enclosing("m.py", 3)] == ["A", "A.kept"]
    assert smap.innermost("m.py", 6) is not None
    assert smap.get("missing.py") is None


def test_removal_inside_body_marks_symbol_modified() -> None:
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1,4 +1,3 @@\n def f():\n     a = 1\n-    b = 2\n     return a\n"
    head = "def f():\n    a = 1\n    return a\n"
    smap = build_syntax_map(ChangeSet.from_unified_diff(diff), lambda p: head)
    assert [(c.symbol.qualname, c.change) for c in smap.changed_symbols()] == [("f", "modified")]


def test_removing_last_body_line_marks_symbol_modified() -> None:
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1,4 +1,3 @@\n def f():\n     a = 1\n-    return a\n \n"
    head = "def f():\n    a = 1\n\n"
    smap = build_syntax_map(ChangeSet.from_unified_diff(diff), lambda p: head)
    assert [(c.symbol.qualname, c.change) for c in smap.changed_symbols()] == [("f", "modified")]


def test_syntax_error_on_changed_line_is_a_finding() -> None:
    head = "def ok():\n    return 1\n\n\ndef broken(:\n    return 2\n"
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,6 @@\n def ok():\n     return 1\n+\n+\n+def broken(:\n+    return 2\n"
    cs = ChangeSet.from_unified_diff(diff)
    smap = build_syntax_map(cs, lambda p: head)
    fs = smap.get("m.py")
    assert fs is not None
    assert fs.errors
    findings = syntax_findings(smap, cs)
    assert len(findings) == 1
    finding = findings[0]
    assert finding.rule == "syntax/parse-error"
    assert finding.analyzer == "syntax"
    assert finding.severity.label == "medium"
    assert finding.start_line in cs.files[0].added_lines
    assert finding.start_line == 5


def test_syntax_error_outside_the_change_is_not_a_finding() -> None:
    head = "def broken(:\n    return 2\n\nx = 1\ny = 2\n"
    diff = "--- a/m.py\n+++ b/m.py\n@@ -4,1 +4,2 @@\n x = 1\n+y = 2\n"
    cs = ChangeSet.from_unified_diff(diff)
    smap = build_syntax_map(cs, lambda p: head)
    assert smap.get("m.py") is not None
    assert syntax_findings(smap, cs) == []


def test_removed_and_unreadable_files_are_not_parsed() -> None:
    diff = (
        "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n"
        "@@ -1 +0,0 @@\n-x = 1\n"
        "diff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+y = 1\n"
    )
    cs = ChangeSet.from_unified_diff(diff)
    calls: list[str] = []

    def read(path: str) -> str | None:
        calls.append(path)
        return None

    smap = build_syntax_map(cs, read)
    assert calls == ["new.py"]
    assert smap.get("new.py") is None
    assert smap.changed_symbols() == []


@pytest.mark.parametrize("name", sorted(NESTED))
def test_changing_the_nested_line_modifies_the_whole_chain(name: str) -> None:
    language, chain, _ = NESTED[name]
    if not has_grammar(language):
        pytest.skip(f"tree-sitter grammar for {language} not installed")
    head = (FIXTURES / name).read_text()
    line = _mark_line(head)
    lines = head.splitlines(keepends=True)
    base = "".join([*lines[: line - 1], lines[line - 1].replace("MARK", "before"), *lines[line:]])
    diff = "".join(difflib.unified_diff(base.splitlines(True), lines, f"a/{name}", f"b/{name}"))
    cs = ChangeSet.from_unified_diff(diff)
    smap = build_syntax_map(cs, lambda p: head)
    assert [(c.symbol.qualname, c.change) for c in smap.changed_symbols(name)] == [(q, "modified") for q in chain]


BROKEN = {
    "javascript": ("app.js", "function ok() {\n  return 1;\n}\n", "function ok() {\n  return (1;\n}\n"),
    "go": ("m.go", "package m\n\nfunc F() int {\n\treturn 1\n}\n", "package m\n\nfunc F() int {\n\treturn 1 +\n}\n"),
    "java": ("A.java", "class A {\n  int f() { return 1; }\n}\n", "class A {\n  int f() { return 1 }\n}\n"),
    "rust": ("l.rs", "fn f() -> i32 {\n    1\n}\n", "fn f() -> i32 {\n    let x = ;\n}\n"),
}


@pytest.mark.parametrize("language", sorted(BROKEN))
def test_breaking_the_parse_is_a_finding_in_other_languages(language: str) -> None:
    name, base, head = BROKEN[language]
    diff = "".join(difflib.unified_diff(base.splitlines(True), head.splitlines(True), f"a/{name}", f"b/{name}"))
    cs = ChangeSet.from_unified_diff(diff)
    smap = build_syntax_map(cs, lambda p: head)
    findings = syntax_findings(smap, cs)
    assert findings
    assert all(f.start_line in cs.files[0].added_lines for f in findings)
    assert all(language in f.message for f in findings)
    assert syntax_findings(build_syntax_map(cs, lambda p: base), cs) == []  # the base parses cleanly


def test_an_extraction_bug_degrades_one_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: str, text: str, language: str | None = None) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr(syntax_module, "parse_file", boom)
    cs = ChangeSet.from_unified_diff("--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n")
    smap = build_syntax_map(cs, lambda p: "x = 2\n")
    fs = smap.get("m.py")
    assert fs is not None
    assert fs.tree is None
    assert smap.enclosing("m.py", 1) == ()
    assert smap.changed_symbols() == []


def test_tree_budget_keeps_symbols_but_drops_trees_beyond_it() -> None:
    texts = {f"m{i}.py": f"def f{i}(x):\n    return x\n" for i in range(3)}
    diff = "".join(
        f"--- /dev/null\n+++ b/{p}\n@@ -0,0 +1,2 @@\n+def f{i}(x):\n+    return x\n" for i, p in enumerate(texts)
    )
    cs = ChangeSet.from_unified_diff(diff)
    size = len(texts["m0.py"])
    smap = build_syntax_map(cs, texts.get, tree_budget_bytes=2 * size)
    assert [smap.files[p].tree is not None for p in texts] == [True, True, False]
    assert [s.qualname for s in smap.enclosing("m2.py", 2)] == ["f2"]
    assert [c.change for c in smap.changed_symbols("m2.py")] == ["added"]


def test_templated_yaml_is_not_reported_but_broken_yaml_is() -> None:
    if not has_grammar("yaml"):
        pytest.skip("tree-sitter-yaml not installed")
    helm = "apiVersion: v1\nkind: ConfigMap\ndata:\n{{- range .Values.items }}\n  {{ .name }}: [x\n{{- end }}\n"
    broken = "jobs:\n  build:\n    runs-on: [ubuntu\n    steps: ${{ matrix.steps }}\n"
    for name, text, expect in (("templates/cm.yaml", helm, False), (".github/workflows/ci.yml", broken, True)):
        lines = text.count("\n")
        diff = f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1,{lines} @@\n" + "".join(
            "+" + line + "\n" for line in text.splitlines()
        )
        cs = ChangeSet.from_unified_diff(diff)
        smap = build_syntax_map(cs, lambda p, text=text: text)  # type: ignore[misc]
        assert bool(syntax_findings(smap, cs)) is expect, name


# current language features that must not be reported as parse errors (false findings)
MODERN = {
    "a.py": 'type Alias[T] = list[T]\ndef f[T](x: T) -> T:\n    return x\nx = f"{d["k"]}"\nmatch x:\n'
    '    case {"a": 1}:\n        pass\ntry:\n    pass\nexcept* ValueError:\n    pass\n',
    "a.ts": "const x = {a: 1} satisfies Rec;\n@Component({})\nclass A { accessor y = 1; #p = 2; static { init(); } }\n"
    "using res = getResource();\nfunction f<const T>(x: T) {}\n",
    "A.java": "record P(int x, int y) {}\nclass A { Object f(Object o) { return switch (o) "
    "{ case P(int x, int y) -> x; default -> 0; }; } }\n",
    "a.cs": "public class P(int x) { public int X => x; }\nrecord struct R(int A);\n",
    "a.go": "package m\nfunc Map[T, U any](s []T, f func(T) U) []U { return nil }\n",
    "a.rs": "fn f(o: Option<i32>) -> i32 { let Some(x) = o else { return 0 }; x }\n",
    "a.php": '<?php\n#[Attr]\nenum Suit: string { case H = "h"; }\n$r = match($x) { 1 => "a", default => "b" };\n',
    "a.kt": "sealed interface S\ndata class D(val x: Int) : S\nfun f(s: S) = when (s) { is D -> 1 }\n",
    "a.rb": "def f = 1\ncase [1, 2]\nin [Integer => a, *]\n  a\nend\n",
    "a.js": "class A { #x = 1; static #y; get #z() { return 1 } }\nconst v = a?.b ?? c;\nawait import('x');\n",
}


@pytest.mark.parametrize("name", sorted(MODERN))
def test_current_language_features_parse_cleanly(name: str) -> None:
    assert parse_file(name, MODERN[name]).errors == ()


def test_cpp_header_without_obvious_markers_is_parsed_as_cpp() -> None:
    text = "#pragma once\nstd::string name(const std::vector<int>& v);\nauto f() -> int;\n"
    fs = parse_file("include/x.h", text)
    assert fs.language == "cpp"
    assert fs.errors == ()
    assert parse_file("include/y.h", "int f(void);\n").language == "c"


def test_flow_annotated_javascript_is_not_a_parse_error() -> None:
    text = "// @flow\nfunction add(a: number, b: number): number {\n  return a + b;\n}\n"
    fs = parse_file("src/add.js", text)
    assert fs.language == "javascript"
    assert fs.errors == ()
    assert [s.qualname for s in fs.symbols] == ["add"]
    assert parse_file("src/bad.js", "function f( {\n").errors != ()
