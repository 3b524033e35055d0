"""Language detection (extension, file name, shebang, .h sniffing) and lazy grammars that degrade when missing."""

from __future__ import annotations

import logging

import pytest
from tree_sitter import Node

from analyzers import languages
from analyzers.languages import (
    GRAMMARS,
    Grammar,
    NodeIndex,
    detect_language,
    get_language,
    has_grammar,
    new_parser,
)
from analyzers.syntax import parse_file


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("src/app.py", "python"),
        ("stubs/x.pyi", "python"),
        ("web/index.js", "javascript"),
        ("web/index.mjs", "javascript"),
        ("web/App.jsx", "javascript"),
        ("web/api.ts", "typescript"),
        ("web/App.tsx", "tsx"),
        ("cmd/main.go", "go"),
        ("src/Main.java", "java"),
        ("src/lib.rs", "rust"),
        ("lib/x.rb", "ruby"),
        ("Program.CS", "csharp"),
        ("index.php", "php"),
        ("core.c", "c"),
        ("core.cc", "cpp"),
        ("core.hpp", "cpp"),
        ("App.kt", "kotlin"),
        ("build.gradle.kts", "kotlin"),
        ("deploy.sh", "bash"),
        (".github/workflows/ci.yml", "yaml"),
        ("main.tf", "hcl"),
        ("View.swift", "swift"),
        ("Main.scala", "scala"),
        ("Gemfile", "ruby"),
        ("Rakefile", "ruby"),
        ("BUILD.bazel", "python"),
        ("rules.bzl", "python"),
        ("Dockerfile", "dockerfile"),
        ("docker/Dockerfile.prod", "dockerfile"),
        ("README.md", None),
        ("LICENSE", None),
    ],
)
def test_detect_by_name(path: str, expected: str | None) -> None:
    assert detect_language(path) == expected


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        ("#!/usr/bin/env python3", "python"),
        ("#!/usr/bin/python3.11", "python"),
        ("#!/usr/bin/env -S python3 -u", "python"),
        ("#!/bin/bash", "bash"),
        ("#!/bin/sh -e", "bash"),
        ("#!/usr/bin/env node", "javascript"),
        ("#!/usr/bin/env ruby", "ruby"),
        ("#!/usr/bin/env perl", None),
        ("no shebang", None),
    ],
)
def test_detect_by_shebang(first_line: str, expected: str | None) -> None:
    assert detect_language("bin/tool", first_line + "\nbody\n") == expected


def test_extension_wins_over_shebang() -> None:
    assert detect_language("x.py", "#!/bin/bash\n") == "python"


def test_header_files_sniffed_for_cpp() -> None:
    assert detect_language("a.h", "int f(void);\n") == "c"
    assert detect_language("a.h", "namespace shop {\nclass Cart {};\n}\n") == "cpp"
    assert detect_language("a.h") == "c"


@pytest.mark.parametrize(
    "lang",
    ["python", "javascript", "typescript", "tsx", "go", "java", "rust", "ruby", "csharp", "php", "c", "cpp"],
)
def test_required_grammars_load_and_parse(lang: str) -> None:
    assert has_grammar(lang)
    parser = new_parser(lang)
    assert parser is not None
    assert parser.parse(b"x").root_node is not None
    assert get_language(lang) is get_language(lang)  # loaded once


def test_missing_wheel_degrades_with_a_logged_note(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(GRAMMARS, "fortran", Grammar("fortran", "tree_sitter_fortran_not_installed"))
    monkeypatch.setitem(languages.EXTENSIONS, ".f90", "fortran")
    monkeypatch.delitem(languages._languages, "fortran", raising=False)
    caplog.set_level(logging.INFO)
    assert get_language("fortran") is None
    assert not has_grammar("fortran")
    assert new_parser("fortran") is None
    assert any("fortran" in r.getMessage() and "line-level" in r.getMessage() for r in caplog.records)
    fs = parse_file("solver.f90", "program x\nend program\n")
    assert (fs.language, fs.tree, fs.symbols) == ("fortran", None, ())
    languages._languages.pop("fortran", None)


def test_unknown_language_has_no_grammar() -> None:
    assert get_language("cobol") is None
    assert not has_grammar(None)
    assert new_parser("cobol") is None


@pytest.mark.parametrize("path", ["app/views/x.html.erb", "app/assets/a.js.erb", "legacy/defs.inc"])
def test_templates_and_ambiguous_includes_are_not_parsed_as_code(path: str) -> None:
    assert detect_language(path) is None  # parsing ERB as Ruby would report every template as broken


NESTED_PY = """\
def outer(x):
    y = f(g(x))
    def inner():
        return h(y)
    if y:
        z = [k(i) for i in y]
    return inner

class C:
    def m(self):
        return self.n().o()
"""


def _walk(root: Node) -> list[Node]:
    out: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def test_node_index_matches_a_walk_of_the_tree() -> None:
    parser = new_parser("python")
    assert parser is not None
    tree = parser.parse(NESTED_PY.encode())
    walked = [n for n in _walk(tree.root_node) if n.is_named]
    index = NodeIndex(tree.root_node, "python")
    kinds = ("call", "function_definition", "assignment", "no_such_kind")
    found = index.by_kind(kinds)
    assert set(found) == set(kinds)
    for kind in kinds:
        assert found[kind] == [n for n in walked if n.type == kind]  # document order
    assert found["no_such_kind"] == []
    # several kinds together: pre-order, the outer of two nodes starting at one byte first (self.n().o())
    ordered = index.ordered({"call", "function_definition", "class_definition"})
    assert ordered == [n for n in walked if n.type in ("call", "function_definition", "class_definition")]
    assert index.ordered({"call", "function_definition", "class_definition"}) is ordered  # computed once


def test_node_index_fetches_kinds_asked_for_in_earlier_files_in_one_walk() -> None:
    parser = new_parser("python")
    assert parser is not None
    first = NodeIndex(parser.parse(NESTED_PY.encode()).root_node, "python")
    first.by_kind(["lambda"])
    second = NodeIndex(parser.parse(b"f = lambda: g()\n").root_node, "python")
    second.by_kind(["call"])
    assert "lambda" in second._kinds  # fetched with "call", so asking for it costs no second walk
    assert [n.type for n in second.by_kind(["lambda"])["lambda"]] == ["lambda"]
