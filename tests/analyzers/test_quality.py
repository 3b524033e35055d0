"""Quality hygiene rules: each has a true positive and a look-alike that must not fire."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers.base import AnalyzerContext, Fix, Severity
from analyzers.diff import ChangeSet
from analyzers.quality import QualityAnalyzer
from analyzers.registry import load_analyzer
from tests.analyzers.test_quality_support import context, rules, run


def only(findings: list, rule: str) -> list:
    return [f for f in findings if f.rule == f"quality/{rule}"]


def test_registry_loads_the_quality_analyzer() -> None:
    analyzer = load_analyzer("quality")
    assert analyzer is not None
    assert analyzer.name == "quality"


# ---- exceptions -----------------------------------------------------------------------------------


def test_broad_except_pass_is_swallowed() -> None:
    src = "def f():\n    try:\n        g()\n    except Exception:\n        pass\n"
    found = only(run("lib/m.py", src), "swallowed-exception")
    assert [(f.start_line, f.end_line, f.severity) for f in found] == [(4, 5, Severity.MEDIUM)]
    assert found[0].symbol == "f"


@pytest.mark.parametrize(
    "handler",
    [
        "    except ValueError:\n        pass\n",  # a specific type: a decision
        "    except Exception:\n        log.exception('x')\n",  # handled
        "    except Exception:\n        pass  # best effort: the cache is optional\n",  # explained
        "    except Exception as exc:\n        raise Wrapped() from exc\n",
        "    except:\n        cleanup()\n        raise\n",  # bare but re-raises
        "    except Exception:  # optional dependency\n        pass\n",  # explained on the except line
        "    except Exception:\n        return None\n",  # a deliberate sentinel fallback
    ],
)
def test_handled_or_specific_excepts_do_not_fire(handler: str) -> None:
    src = "def f():\n    try:\n        g()\n" + handler
    assert rules(run("lib/m.py", src)) == []


def test_bare_except_without_reraise() -> None:
    src = "def f():\n    try:\n        g()\n    except:\n        log()\n"
    assert rules(run("lib/m.py", src)) == ["bare-except"]
    src = "def f():\n    try:\n        g()\n    except:\n        pass\n"
    assert rules(run("lib/m.py", src)) == ["swallowed-exception"]


def test_tuple_with_exception_swallowed() -> None:
    src = "def f():\n    try:\n        g()\n    except (OSError, Exception):\n        ...\n"
    assert rules(run("lib/m.py", src)) == ["swallowed-exception"]


def test_js_and_java_empty_catch() -> None:
    js = "function f() {\n  try { g(); } catch (e) {}\n}\n"
    assert rules(run("web/a.js", js)) == ["swallowed-exception"]
    js_ok = "function f() {\n  try { g(); } catch (e) {\n    // optional feature\n  }\n}\n"
    assert rules(run("web/a.js", js_ok)) == []
    java = "class A {\n  void f() {\n    try { g(); } catch (Exception e) {}\n  }\n}\n"
    assert rules(run("src/A.java", java)) == ["swallowed-exception"]
    java_ok = "class A {\n  void f() {\n    try { g(); } catch (Exception e) { log(e); }\n  }\n}\n"
    assert rules(run("src/A.java", java_ok)) == []


# ---- mutable defaults ---------------------------------------------------------------------------


@pytest.mark.parametrize("default", ["[]", "{}", "{1}", "dict()", "list()", "collections.defaultdict(list)"])
def test_mutable_defaults(default: str) -> None:
    src = f"def f(a, b={default}):\n    return b\n"
    found = only(run("lib/m.py", src), "mutable-default")
    assert len(found) == 1
    assert found[0].fix is None
    src = f"def f(a, b: dict = {default}):\n    return b\n"
    assert len(only(run("lib/m.py", src), "mutable-default")) == 1


@pytest.mark.parametrize("default", ["None", "()", "frozenset()", "0", "'x'", "tuple()", "DEFAULTS"])
def test_immutable_defaults_do_not_fire(default: str) -> None:
    assert only(run("lib/m.py", f"def f(a, b={default}):\n    return b\n"), "mutable-default") == []


def test_mutable_default_on_unchanged_line_is_not_reported() -> None:
    base = "def f(a, b=[]):\n    return b\n"
    head = "def f(a, b=[]):\n    return b + [a]\n"
    assert only(run("lib/m.py", head, base), "mutable-default") == []


# ---- unreachable code ---------------------------------------------------------------------------


def test_python_unreachable_after_return() -> None:
    src = "def f(x):\n    return x\n    x += 1\n    print(x)\n"
    found = only(run("lib/m.py", src), "unreachable-code")
    assert [(f.start_line, f.severity) for f in found] == [(3, Severity.MEDIUM)]
    assert "line 2" in found[0].message


@pytest.mark.parametrize(
    "src",
    [
        "def f(x):\n    if x:\n        return 1\n    return 2\n",  # return in a branch
        "def f():\n    raise NotImplementedError\n    yield\n",  # the abstract-generator idiom
        "def f(xs):\n    for x in xs:\n        if x:\n            continue\n        g(x)\n",
        "def f():\n    return 1\n    # a comment after return\n",
    ],
)
def test_python_reachable_code_does_not_fire(src: str) -> None:
    assert only(run("lib/m.py", src), "unreachable-code") == []


def test_js_unreachable_and_hoisted_function() -> None:
    src = "function f(x) {\n  return x;\n  g();\n}\n"
    assert [f.start_line for f in only(run("web/a.js", src), "unreachable-code")] == [3]
    hoisted = "function f(x) {\n  return helper(x);\n  function helper(y) { return y; }\n}\n"
    assert only(run("web/a.js", hoisted), "unreachable-code") == []
    switch = "function f(x) {\n  switch (x) {\n    case 1:\n      return 1;\n    case 2:\n      break;\n  }\n}\n"
    assert only(run("web/a.js", switch), "unreachable-code") == []


def test_go_unreachable_after_return_and_panic() -> None:
    src = 'package p\n\nfunc F() int {\n\treturn 1\n\tg()\n}\n\nfunc G() {\n\tpanic("x")\n\th()\n}\n'
    assert [f.start_line for f in only(run("p/f.go", src), "unreachable-code")] == [5, 10]
    ok = "package p\n\nfunc F(x int) int {\n\tif x > 0 {\n\t\treturn 1\n\t}\n\treturn 2\n}\n"
    assert only(run("p/f.go", ok), "unreachable-code") == []


def test_unreachable_reported_when_only_the_return_was_added() -> None:
    base = "def f(x):\n    y = x\n    return y\n"
    head = "def f(x):\n    return x\n    y = x\n    return y\n"
    found = only(run("lib/m.py", head, base), "unreachable-code")
    assert len(found) == 1
    assert found[0].start_line == 2  # anchored on the added return, the unreachable line is unchanged


# ---- debug leftovers ----------------------------------------------------------------------------


def test_js_debugger_has_a_certain_delete_fix() -> None:
    src = "function f() {\n  g();\n  debugger;\n}\n"
    (found,) = only(run("web/a.js", src), "debugger")
    assert found.fix == Fix(3, 3, "")


def test_js_debugger_without_braces_gets_no_fix() -> None:
    src = "function f(x) {\n  if (x) debugger;\n  g();\n}\n"
    (found,) = only(run("web/a.js", src), "debugger")
    assert found.fix is None


def test_python_breakpoint_and_pdb() -> None:
    src = "def f():\n    g()\n    breakpoint()\n    import pdb; pdb.set_trace()\n    return 1\n"
    found = only(run("lib/m.py", src), "debugger")
    assert [(f.start_line, f.fix) for f in found] == [(3, Fix(3, 3, "")), (4, Fix(4, 4, ""))]


def test_breakpoint_alone_in_a_block_gets_no_fix() -> None:
    src = "def f(x):\n    if x:\n        breakpoint()\n    return x\n"
    (found,) = only(run("lib/m.py", src), "debugger")
    assert found.fix is None


@pytest.mark.parametrize(
    "src",
    [
        "def f(self):\n    self.breakpoint()\n",
        "def f(dbg):\n    dbg.set_trace()\n",
        "def f():\n    s = 'breakpoint()'\n    return s\n",
    ],
)
def test_debugger_look_alikes(src: str) -> None:
    assert only(run("lib/m.py", src), "debugger") == []


def test_print_in_library_function() -> None:
    src = "def compute(x):\n    print(x)\n    return x\n"
    assert len(only(run("pkg/core.py", src), "print")) == 1


@pytest.mark.parametrize(
    ("path", "src"),
    [
        ("pkg/cli.py", "def compute(x):\n    print(x)\n"),
        ("scripts/tool.py", "def compute(x):\n    print(x)\n"),
        ("tests/test_core.py", "def test_x():\n    print(1)\n"),
        ("pkg/core.py", "def main():\n    print(1)\n"),
        ("pkg/core.py", "def print_report(r):\n    print(r)\n"),
        ("pkg/core.py", "import sys\ndef warn(x):\n    print(x, file=sys.stderr)\n"),
        ("pkg/core.py", "def f(x):\n    print(x)\n\nif __name__ == '__main__':\n    f(1)\n"),
        ("pkg/core.py", "import click\n@click.command()\ndef go():\n    print(1)\n"),
        ("pkg/core.py", "print('module level')\n"),
        ("pkg/core.py", "def f(doc):\n    doc.print(1)\n"),
    ],
)
def test_print_look_alikes(path: str, src: str) -> None:
    assert only(run(path, src), "print") == []


def test_console_log() -> None:
    src = "export function f(x) {\n  console.log(x);\n  return x;\n}\n"
    assert len(only(run("src/a.ts", src), "console-log")) == 1
    assert only(run("src/a.ts", src.replace("console.log", "console.error")), "console-log") == []
    assert only(run("src/a.test.ts", src), "console-log") == []
    assert only(run("scripts/build.js", src), "console-log") == []
    assert only(run("src/a.ts", src.replace("console.log", "logger.log")), "console-log") == []


# ---- comments -----------------------------------------------------------------------------------


def test_todo_without_issue() -> None:
    src = "def f():\n    # TODO: handle the empty case\n    return 1\n"
    found = only(run("lib/m.py", src), "todo-without-issue")
    assert [(f.start_line, f.severity) for f in found] == [(2, Severity.INFO)]
    js = "// FIXME(alice) race here\nconst x = 1;\n"
    assert len(only(run("web/a.js", js), "todo-without-issue")) == 1


@pytest.mark.parametrize(
    "comment",
    [
        "# TODO(#123): handle the empty case",
        "# TODO: see https://github.com/o/r/issues/9",
        "# FIXME PROJ-42 race",
        "# TODO(o/r#7) later",
        "# todo list of the user",  # lower case prose
        "# the TODOS module",
        "# ---- rules: TODO without issue ----",  # prose about the marker
    ],
)
def test_todo_with_issue_or_prose_does_not_fire(comment: str) -> None:
    src = f"def f():\n    {comment}\n    return 1\n"
    assert only(run("lib/m.py", src), "todo-without-issue") == []


def test_todo_in_string_or_unchanged_line_does_not_fire() -> None:
    assert only(run("lib/m.py", "X = 'TODO: later'\n"), "todo-without-issue") == []
    base = "# TODO: old\nx = 1\n"
    assert only(run("lib/m.py", "# TODO: old\nx = 2\n", base), "todo-without-issue") == []


def test_commented_out_code_python() -> None:
    src = "def f(x):\n    # old version:\n    # y = compute(x)\n    # if y:\n    #     return y\n    return x\n"
    found = only(run("lib/m.py", src), "commented-out-code")
    assert [(f.start_line, f.end_line) for f in found] == [(3, 5)]


def test_commented_out_code_js_and_go() -> None:
    js = "function f(x) {\n  // const y = g(x);\n  // if (y) { h(y); }\n  // return y;\n  return x;\n}\n"
    assert len(only(run("web/a.js", js), "commented-out-code")) == 1
    go = "package p\n\nfunc F(x int) int {\n\t// y := g(x)\n\t// h(y)\n\t// return y\n\treturn x\n}\n"
    assert len(only(run("p/f.go", go), "commented-out-code")) == 1


@pytest.mark.parametrize(
    "comments",
    [
        ["This function computes the value.", "It is called by the scheduler", "and must stay fast."],
        ["Example config:", "name: web", "port: 8080", "debug: true"],
        ["Steps", "first", "second", "third"],
        ["y = compute(x)", "if y:"],  # only two lines
        ["noqa: E501", "x = 1", "y = 2"],
        ["Copyright 2024 Example Corp.", "Licensed under the Apache License, Version 2.0", "(the License)"],
    ],
)
def test_prose_and_config_comments_are_not_code(comments: list[str]) -> None:
    body = "".join(f"# {c}\n" for c in comments)
    assert only(run("lib/m.py", body + "x = 1\n"), "commented-out-code") == []


# ---- scope ----------------------------------------------------------------------------------------


def test_findings_only_on_changed_lines_in_added_mode_but_all_in_file_mode() -> None:
    base = "def f():\n    try:\n        g()\n    except Exception:\n        pass\n\n\ndef h():\n    return 1\n"
    head = base.replace("return 1", "return 2")
    assert rules(run("lib/m.py", head, base)) == []
    assert rules(run("lib/m.py", head, base, mode="file")) == ["swallowed-exception"]


def test_removed_and_unreadable_files_are_skipped() -> None:
    diff = "--- a/lib/gone.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-def f(a=[]):\n-    pass\n"
    ctx = AnalyzerContext(ChangeSet.from_unified_diff(diff), lambda _p: None)
    assert QualityAnalyzer().analyze(ctx) == []
    ctx = context({"lib/m.py": ("def f(a=[]):\n    pass\n", None)})
    ctx = AnalyzerContext(ctx.changeset, lambda _p: None)
    assert QualityAnalyzer().analyze(ctx) == []


def test_fingerprints_survive_a_line_shift() -> None:
    src = "def f():\n    try:\n        g()\n    except Exception:\n        pass\n"
    first = run("lib/m.py", src)
    second = run("lib/m.py", "import os\n\n" + src)
    assert [f.id for f in first] == [f.id for f in second]
    assert [f.start_line + 2 for f in first] == [f.start_line for f in second]


def test_same_findings_with_the_syntax_map_and_its_symbol_names() -> None:
    from dataclasses import replace

    from analyzers.syntax import build_syntax_map

    src = (
        "class Store:\n"
        "    def load(self, keys=[]):\n"
        "        try:\n"
        "            return self.read(keys)\n"
        "        except Exception:\n"
        "            pass\n"
        "\n"
        "    # TODO: cache\n"
        "    def save(self):\n"
        "        breakpoint()\n"
        "        return 1\n"
    )
    ctx = context({"pkg/store.py": (src, None)}, max_untested_hints=0)
    plain = QualityAnalyzer().analyze(ctx)
    mapped = QualityAnalyzer().analyze(replace(ctx, syntax=build_syntax_map(ctx.changeset, ctx.read_file)))
    assert rules(plain) == rules(mapped) == ["debugger", "mutable-default", "swallowed-exception", "todo-without-issue"]
    assert {f.rule: f.symbol for f in mapped}["quality/debugger"] == "Store.save"
    assert {f.rule: f.symbol for f in mapped}["quality/todo-without-issue"] == "Store"
    assert [f.id for f in plain if f.rule != "quality/todo-without-issue"] == [
        f.id for f in mapped if f.rule != "quality/todo-without-issue"
    ]


_SNIPPETS = [
    "def f(a, b=[]):\n",
    "    try:\n",
    "    except Exception:\n",
    "        pass\n",
    "    return 1\n",
    "    x = 2\n",
    "# TODO: x\n",
    "# y = g(1)\n",
    "    breakpoint()\n",
    "if x:\n",
    "function f() {\n",
    "  debugger;\n",
    "}\n",
    "  } catch (e) {}\n",
    "class A:\n",
    "    def m(self):\n",
    "\tpanic(1)\n",
    "@@@ ((( \n",
]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from(_SNIPPETS), max_size=25),
    st.sampled_from(["lib/m.py", "web/a.js", "web/a.ts", "p/f.go", "src/A.java", "x.rb", "notes.yml"]),
)
def test_any_source_is_analyzed_without_crashing(lines: list[str], path: str) -> None:
    src = "".join(lines)
    findings = run(path, src, max_untested_hints=3) if src.strip() else []
    count = src.count("\n") + 1
    for f in findings:
        assert 1 <= f.start_line <= f.end_line <= count
        assert f.rule.startswith("quality/")
        if f.fix is not None:
            assert f.fix.replacement == ""
            assert f.fix.start_line == f.fix.end_line == f.start_line
