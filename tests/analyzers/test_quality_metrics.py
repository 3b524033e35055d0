"""Per-function size metrics: values per language, thresholds, and reporting only for changed functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers.filtering import in_scope
from analyzers.languages import new_parser
from analyzers.metrics import FunctionInfo, functions
from analyzers.quality import QualityAnalyzer
from tests.analyzers.test_quality_support import context, rules, run


def measure(lang: str, src: str) -> dict[str, FunctionInfo]:
    parser = new_parser(lang)
    assert parser is not None
    data = src.encode()
    return {f.qualname: f for f in functions(parser.parse(data).root_node, lang, data)}


def branches(n: int, name: str = "f") -> str:
    body = "".join(f"    if x == {i}:\n        y = {i}\n" for i in range(n))
    return f"def {name}(x):\n    y = 0\n{body}    return y\n"


def test_python_metrics() -> None:
    src = (
        "class A:\n"
        "    def m(self, a, b=1, *args, k, **kw):\n"
        "        if a and b or k:\n"
        "            for x in a:\n"
        "                while x:\n"
        "                    x = [i for i in x if i]\n"
        "        elif b:\n"
        "            return 1 if a else 2\n"
        "        def inner(q):\n"
        "            if q:\n"
        "                return q\n"
        "        return 0\n"
    )
    fns = measure("python", src)
    m = fns["A.m"]
    assert (m.params, m.complexity, m.nesting, m.header_line, m.length) == (
        5,
        5,
        3,
        2,
        11,
    )  # mccabe: if, for, while, elif
    assert fns["A.m.inner"].complexity == 2
    assert 10 not in m.own_lines
    assert 12 in m.own_lines


def test_js_go_java_metrics() -> None:
    js = measure(
        "javascript",
        "const g = (a, b) => {\n  if (a) {\n    if (b) {} else if (a && b) {}\n  }\n};\n"
        "class K { m(x, y, z) { return [1].map((v) => v ?? x); } }\n",
    )
    assert (js["g"].params, js["g"].complexity, js["g"].nesting) == (2, 5, 2)
    assert (js["K.m"].params, js["K.m"].complexity) == (3, 2)
    go = measure(
        "go",
        'package p\n\nfunc (r *T) M(a, b int, c string) int {\n\tif a > b && c != "" {\n\t\tfor {\n\t\t}\n'
        "\t}\n\tswitch a {\n\tcase 1:\n\tcase 2:\n\tdefault:\n\t}\n\treturn 1\n}\n",
    )
    assert (go["T.M"].params, go["T.M"].complexity, go["T.M"].nesting) == (3, 6, 2)
    java = measure(
        "java",
        "class A {\n  int m(int a, String... b) {\n    switch (a) { case 1: break; default: }\n"
        "    if (a > 1 || b == null) { for (;;) {} }\n    return 1;\n  }\n}\n",
    )
    assert (java["A.m"].params, java["A.m"].complexity, java["A.m"].nesting) == (2, 5, 2)


def test_complexity_threshold_is_exclusive() -> None:
    assert rules(run("lib/m.py", branches(9))) == []  # complexity 10
    found = run("lib/m.py", branches(10))  # complexity 11
    assert rules(found) == ["complexity"]
    assert (found[0].start_line, found[0].symbol, found[0].extra["value"]) == (1, "f", 11)


def test_thresholds_come_from_settings() -> None:
    assert rules(run("lib/m.py", branches(3), max_complexity=3)) == ["complexity"]
    assert rules(run("lib/m.py", branches(3), max_function_lines=5)) == ["function-length"]


def test_length_params_and_nesting() -> None:
    long_fn = "def f():\n" + "    x = 1\n" * 79 + "    return x\n"  # 81 lines
    assert rules(run("lib/m.py", long_fn)) == ["function-length"]
    assert rules(run("lib/m.py", "def f():\n" + "    x = 1\n" * 78 + "    return x\n")) == []
    assert rules(run("lib/m.py", "def f(a, b, c, d, e, f, g):\n    pass\n")) == ["too-many-params"]
    method = "class A:\n    def f(self, a, b, c, d, e, f):\n        pass\n"
    assert rules(run("lib/m.py", method)) == []
    deep = "def f(x):\n" + "".join("    " * (i + 1) + f"if x > {i}:\n" for i in range(5)) + "    " * 6 + "pass\n"
    assert rules(run("lib/m.py", deep)) == ["deep-nesting"]


PY_ELIF = "def f(x):\n" + "".join(f"    {'if' if i == 0 else 'elif'} x == {i}:\n        pass\n" for i in range(6))
JS_ELIF = "function f(x) {\n  if (x == 0) {}\n" + "".join(f"  else if (x == {i}) {{}}\n" for i in range(1, 7)) + "}\n"


@pytest.mark.parametrize(("path", "src"), [("lib/m.py", PY_ELIF), ("web/a.js", JS_ELIF)])
def test_else_if_chains_do_not_nest(path: str, src: str) -> None:
    assert "deep-nesting" not in rules(run(path, src))


def test_only_changed_functions_are_measured() -> None:
    base = branches(12, "busy") + "\n\n" + "def calm(x):\n    return x\n"
    head = base.replace("return x", "return x + 1")
    assert rules(run("lib/m.py", head, base)) == []


def test_body_change_is_anchored_from_the_header_and_survives_the_diff_filter() -> None:
    base = branches(12)
    head = base.replace("y = 7\n", "y = 70\n")
    ctx = context({"lib/m.py": (head, base)}, max_untested_hints=0)
    (found,) = QualityAnalyzer().analyze(ctx)
    changed_line = head.splitlines().index("        y = 70") + 1
    assert (found.start_line, found.end_line) == (1, changed_line)
    assert found.extra["scope"] == "symbol"
    assert in_scope(found, ctx.changeset, "added")


def test_a_nested_change_does_not_blame_the_outer_function() -> None:
    inner = "    def inner(x):\n        return x\n"
    base = branches(12).replace("    y = 0\n", "    y = 0\n" + inner)
    head = base.replace("        return x\n", "        return x * 2\n")
    assert rules(run("lib/m.py", head, base)) == []


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=25), st.integers(min_value=0, max_value=6))
def test_python_complexity_counts_branches_and_nesting_counts_depth(n: int, depth: int) -> None:
    fn = measure("python", branches(n))["f"]
    assert fn.complexity == n + 1
    assert fn.nesting == min(n, 1)
    nested = "def g(x):\n" + "".join("    " * (i + 1) + f"for a{i} in x:\n" for i in range(depth))
    nested += "    " * (depth + 1) + "pass\n"
    g = measure("python", nested)["g"]
    assert (g.nesting, g.complexity) == (depth, depth + 1)


def test_python_complexity_matches_mccabe_conventions() -> None:
    src = (
        "def f(a, b):\n"
        "    x = [i for i in a if i and b]\n"  # comprehensions and boolean operators do not branch here
        "    y = 1 if a else 2\n"
        "    try:\n"
        "        g()\n"
        "    except ValueError:\n"  # +1
        "        pass\n"
        "    else:\n"  # try-else +1
        "        h()\n"
        "    return x, y\n"
    )
    assert measure("python", src)["f"].complexity == 3
