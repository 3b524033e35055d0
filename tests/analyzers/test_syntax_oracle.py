"""The Python syntax map agrees with the `ast` module on real files (stdlib), and never crashes on garbage."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers.syntax import Param, parse_file

STDLIB_MODULES = [
    "argparse", "dataclasses", "json.decoder", "textwrap", "fractions", "difflib", "inspect", "asyncio.locks",
    "enum", "functools", "typing",
]  # fmt: skip


def _stdlib_source(module: str) -> tuple[str, str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert spec.origin is not None
    return spec.origin, Path(spec.origin).read_text(encoding="utf-8")


def _ast_symbols(tree: ast.Module) -> dict[str, tuple[str, int, int, tuple[Param, ...]]]:
    out: dict[str, tuple[str, int, int, tuple[Param, ...]]] = {}

    def visit(node: ast.AST, prefix: str, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                qual = f"{prefix}.{child.name}" if prefix else child.name
                start = min([d.lineno for d in child.decorator_list] + [child.lineno])
                end = child.end_lineno or child.lineno
                params: tuple[Param, ...] = ()
                if isinstance(child, ast.ClassDef):
                    kind = "class"
                else:
                    kind, params = ("method" if in_class else "function"), _ast_params(child.args)
                out.setdefault(qual, (kind, start, end, params))
                visit(child, qual, isinstance(child, ast.ClassDef))
            else:
                visit(child, prefix, in_class)

    visit(tree, "", False)
    return out


def _ast_params(args: ast.arguments) -> tuple[Param, ...]:
    def ann(a: ast.arg) -> str | None:
        return ast.unparse(a.annotation) if a.annotation is not None else None

    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = [
        Param(
            a.arg,
            ann(a),
            ast.unparse(d) if d is not None else None,
            "positional_only" if i < len(args.posonlyargs) else "positional",
        )
        for i, (a, d) in enumerate(zip(positional, defaults, strict=True))
    ]
    if args.vararg is not None:
        out.append(Param(args.vararg.arg, ann(args.vararg), None, "var_positional"))
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out.append(Param(a.arg, ann(a), ast.unparse(d) if d is not None else None, "keyword_only"))
    if args.kwarg is not None:
        out.append(Param(args.kwarg.arg, ann(args.kwarg), None, "var_keyword"))
    return tuple(out)


def _normalise(p: Param) -> tuple[str, str, str, str]:
    # compare expressions as trees: ast.unparse re-spells them (quotes, raw strings, spacing)
    def norm(x: str | None) -> str:
        return ast.dump(ast.parse(x.strip(), mode="eval")) if x else ""

    return p.name, norm(p.annotation), norm(p.default), p.kind


@pytest.mark.parametrize("module", STDLIB_MODULES)
def test_python_symbols_match_ast(module: str) -> None:
    path, text = _stdlib_source(module)
    expected = _ast_symbols(ast.parse(text))
    fs = parse_file(path, text)
    assert fs.errors == ()
    got: dict[str, tuple[str, int, int, tuple[Param, ...]]] = {}
    for s in fs.symbols:
        got.setdefault(s.qualname, (s.kind, s.start_line, s.end_line, s.params))
    assert set(got) == set(expected)
    lines = text.split("\n")
    for qual, (kind, start, end, params) in expected.items():
        g_kind, g_start, g_end, g_params = got[qual]
        assert (g_kind, g_start) == (kind, start), qual
        # tree-sitter keeps comments indented inside a body as part of it; ast stops at the last statement
        assert g_end >= end, qual
        assert all(not ln.strip() or ln.strip().startswith("#") for ln in lines[end:g_end]), qual
        assert [_normalise(p) for p in g_params] == [_normalise(p) for p in params], qual


@pytest.mark.parametrize("module", STDLIB_MODULES[:3])
def test_every_line_resolves_to_the_ast_innermost_symbol(module: str) -> None:
    path, text = _stdlib_source(module)
    expected = _ast_symbols(ast.parse(text))
    fs = parse_file(path, text)
    ends = {s.qualname: s.end_line for s in fs.symbols}  # trailing comments: see the test above
    spans = {q: (k, s, ends[q], p) for q, (k, s, _, p) in expected.items()}
    for line in range(1, text.count("\n") + 1):
        inside = [(q, s, e) for q, (_, s, e, _) in spans.items() if s <= line <= e]
        want = max(inside, key=lambda t: (t[1], -t[2]))[0] if inside else None
        got = fs.innermost(line)
        assert (got.qualname if got else None) == want, line
        chain = fs.enclosing(line)
        assert [c.qualname for c in chain] == sorted((q for q, _, _ in inside), key=lambda q: q.count("."))


TOKENS = st.sampled_from(
    [
        "def ", "class ", "function ", "func ", "fn ", "fun ", "impl ", "module ", "end\n", "<?php ", "struct ",
        "x", "y", "(", ")", "{", "}", "[", "]", ":", ";", ",", "=", "=>", "->", "@d\n", '"""', "'", '"', "#",
        "//", "/*", "*/", "\n", "    ", "\t", "return ", "lambda ", "async ", "*", "**", "&", "<T>", "...",
    ]
)  # fmt: skip
LANGS = ["python", "javascript", "typescript", "tsx", "go", "java", "rust", "ruby", "csharp", "php", "c", "cpp"]


@settings(max_examples=120, deadline=None)
@given(language=st.sampled_from(LANGS), tokens=st.lists(TOKENS, max_size=80))
def test_garbage_never_crashes_and_symbols_nest(language: str, tokens: list[str]) -> None:
    text = "".join(tokens)
    fs = parse_file(f"f.{language}", text, language=language)
    lines = text.count("\n") + 1
    for i, s in enumerate(fs.symbols):
        assert 1 <= s.start_line <= s.end_line <= lines
        parent = fs.parent_index[i]
        if parent >= 0:
            outer = fs.symbols[parent]
            assert outer.start_line <= s.start_line
            assert s.end_line <= outer.end_line
    for line in range(0, lines + 2):
        chain = fs.enclosing(line)
        assert all(c.contains(line) for c in chain)
    for issue in fs.errors:
        assert 1 <= issue.line <= lines
