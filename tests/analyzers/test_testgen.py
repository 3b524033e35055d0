"""Test synthesis units: repo layout, targets and ranking, static validation, and the PR comment text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers import testgen
from analyzers.base import Confidence, Finding, Severity
from analyzers.diff import ChangeSet
from analyzers.strategies import parse_module
from analyzers.testcheck import check_test_module


def test_module_path_from_layout() -> None:
    files = {"src/pkg/__init__.py", "src/pkg/sub/__init__.py", "lib/__init__.py", "app/__init__.py"}
    exists = files.__contains__
    assert testgen.module_path("src/pkg/sub/mod.py", exists) == ("src", "pkg.sub.mod")
    assert testgen.module_path("src/pkg/__init__.py", exists) == ("src", "pkg")
    assert testgen.module_path("app/main.py", exists) == ("", "app.main")
    assert testgen.module_path("scripts/tool.py", exists) == ("scripts", "tool")
    assert testgen.module_path("setup.py", exists) == ("", "setup")
    assert testgen.module_path("bad-name/x.py", exists) == ("bad-name", "x")
    assert testgen.module_path("pkg/my-mod.py", exists) is None
    assert testgen.module_path("README.md", exists) is None
    assert testgen.is_test_path("tests/test_x.py")
    assert testgen.is_test_path("pkg/conftest.py")
    assert not testgen.is_test_path("pkg/testing_utils.py")


HEAD = """
class Box:
    @property
    def size(self) -> int:
        return 1

    @staticmethod
    def scale(x: int, factor: int) -> int:
        return x * factor


def simple(x: int) -> int:
    return x


def branchy(x: int) -> int:
    if x > 0:
        for _ in range(3):
            if x % 2:
                x += 1
    return x


def _private(x: int) -> int:
    return x


def test_looks_like_a_test(x: int) -> int:
    return x
"""


def _diff(text: str) -> str:
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return f"--- /dev/null\n+++ b/pkg/ops.py\n@@ -0,0 +1,{len(lines)} @@\n{body}"


def _reader(files: dict[str, str]) -> testgen.FileReader:
    return files.get


def test_targets_ranked_and_filtered() -> None:
    changeset = ChangeSet.from_unified_diff(_diff(HEAD))
    files = {"pkg/__init__.py": "", "pkg/ops.py": HEAD}
    finding = Finding("security/x", "security", Severity.HIGH, Confidence.HIGH, "m", "pkg/ops.py", 13, 13)
    request = testgen.TestRequest(changeset, _reader(files), findings=(finding, finding))
    candidates, _ = testgen.find_candidates(request)
    names = [c.info.qualname for c in candidates]
    assert set(names) == {"Box.scale", "simple", "branchy"}
    assert names[0] == "simple"  # the analyzer finding on its line outranks complexity
    result = testgen.synthesize_tests(testgen.TestRequest(changeset, _reader(files), max_functions=2))
    assert len(result.tests) == 2
    assert any("not covered" in note for note in result.notes)
    for test in result.tests:
        assert test.path.startswith("tests/test_diffwise_pkg_ops_")
        assert test.targets[0].path == "pkg/ops.py"
        assert test.targets[0].line > 0
        assert set(test.to_json()) == {"path", "content", "targets"}


def test_only_restricts_to_the_named_function() -> None:
    changeset = ChangeSet.from_unified_diff(_diff(HEAD))
    files = {"pkg/__init__.py": "", "pkg/ops.py": HEAD}
    only = (testgen.TestTarget("pkg/ops.py", "branchy"),)
    result = testgen.synthesize_tests(testgen.TestRequest(changeset, _reader(files), only=only))
    assert [t.targets[0].function for t in result.tests] == ["branchy"]


def test_syntax_map_is_preferred() -> None:
    class Symbol:
        def __init__(self, qualname: str) -> None:
            self.qualname = qualname

    class Changed:
        def __init__(self, qualname: str) -> None:
            self.path, self.symbol, self.change = "pkg/ops.py", Symbol(qualname), "added"

    class SyntaxMap:
        def changed_symbols(self, path: str | None = None) -> list[Changed]:
            return [Changed("simple")]

    changeset = ChangeSet.from_unified_diff(_diff(HEAD))
    files = {"pkg/__init__.py": "", "pkg/ops.py": HEAD}
    result = testgen.synthesize_tests(testgen.TestRequest(changeset, _reader(files), syntax=SyntaxMap()))
    assert [t.targets[0].function for t in result.tests] == ["simple"]


def test_broken_source_is_a_note_not_an_error() -> None:
    changeset = ChangeSet.from_unified_diff(_diff("def broken(:\n"))
    result = testgen.synthesize_tests(testgen.TestRequest(changeset, _reader({"pkg/ops.py": "def broken(:\n"})))
    assert result.tests == ()
    assert "syntax error" in result.notes[0]


def _names(module: str) -> frozenset[str] | None:
    return frozenset({"f", "Cls"}) if module == "pkg.mod" else None


VALID = """
from hypothesis import given, settings, strategies as st
import pkg.mod as mod

@settings(max_examples=10, deadline=None)
@given(x=st.integers())
def test_f(x):
    assert mod.f(x) == mod.f(x)

@settings(max_examples=10, deadline=None)
@given(x=st.integers())
def test_f_no_crash(x):
    mod.f(x)
"""


def test_testcheck_accepts_a_valid_module() -> None:
    assert check_test_module(VALID, module_names=_names) == []
    scoped = VALID.replace(
        "assert mod.f(x) == mod.f(x)",
        "try:\n        ys = [y for y in range(x % 3)]\n    except ValueError as exc:\n        return exc\n"
        "    assert all(mod.f(y) == (lambda z: mod.f(z))(y) for y in ys)",
    )
    assert check_test_module(scoped, module_names=_names) == []


def test_testcheck_rejects_what_would_not_run_or_tests_nothing() -> None:
    cases = {
        "def test(:\n": "does not parse",
        VALID.replace("import pkg.mod as mod", "import pkg.gone as mod"): "imports 'pkg.gone'",
        VALID.replace("import pkg.mod as mod", "import requests\nimport pkg.mod as mod"): "imports 'requests'",
        VALID.replace("mod.f(x) ==", "mod.g(x) =="): "has no name 'g'",
        VALID.replace("st.integers()", "st.nothing()"): "st.nothing()",
        VALID.replace("st.integers()", "st.integerz()"): "no 'integerz'",
        VALID.replace("assert mod.f(x) == mod.f(x)", "assert True"): "asserts nothing",
        VALID.replace("max_examples=10", "max_examples=100000"): "bounded settings",
        VALID.replace("@given(x=st.integers())\ndef test_f(x)", "def test_f(x=1)"): "@given missing",
        VALID.replace("from hypothesis", "from .x import y\nfrom hypothesis"): "relative import",
        VALID.replace("@given(x=st.integers())\ndef test_f(x)", "@given()\ndef test_f()"): "draws nothing",
        VALID.replace("def test_f(x)", "def test_f(x, y)"): "parameter 'y' has no strategy",
        VALID.replace("def test_f(x)", "def test_f(y)"): "draws 'x', which is no parameter",
        VALID.replace("assert mod.f(x) == mod.f(x)", "assert _same(mod.f(x), x)"): "name '_same' is not defined",
        VALID.replace(
            "import pkg.mod as mod", "import pkg.mod as mod\nBASE = _load_base('f')\ndef _load_base(n):\n    return n"
        ): "'_load_base' is used before it is defined",
        VALID.replace("st.integers()", "st.integers(min_value=5, max_value=1)"): "invalid strategy",
        VALID.replace("st.integers()", "st.sampled_from([])"): "invalid strategy",
        VALID.replace("def test_f_no_crash(x)", "def test_f(x)"): "test_f is defined twice",
        VALID.replace("def test_f_no_crash(x)", "async def test_f_no_crash(x)"): "an async test",
    }
    for content, expected in cases.items():
        problems = check_test_module(content, module_names=_names)
        assert any(expected in p for p in problems), (expected, problems)


def _suggestion(i: int, size: int) -> testgen.SuggestedTest:
    return testgen.SuggestedTest(
        f"tests/test_diffwise_m_f{i}.py",
        "x = 1\n" * size + "```\n",
        (testgen.TestTarget("m.py", f"f{i}"),),
        ("no-crash",),
        "m",
        "src",
    )


def test_comment_golden_shape() -> None:
    suggestions = testgen.TestSuggestions((_suggestion(1, 2),))
    text = testgen.render_tests_comment(suggestions, "python -m pytest tests/test_diffwise_m_f1.py")
    assert text.startswith("<!-- diffwise:tests -->\n### diffwise: suggested property tests")
    assert "<code>tests/test_diffwise_m_f1.py</code> — `m.py::f1` (no-crash)" in text
    assert "````python\nx = 1\nx = 1\n```\n````" in text
    assert "python -m pytest tests/test_diffwise_m_f1.py" in text
    assert (
        testgen.default_run_command(suggestions.tests) == "PYTHONPATH=src python -m pytest tests/test_diffwise_m_f1.py"
    )


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=9000), max_size=12), findings=st.integers(0, 300))
def test_comment_never_exceeds_githubs_limit(sizes: list[int], findings: int) -> None:
    finding = Finding("tests/falsified", "tests", Severity.MEDIUM, Confidence.HIGH, "x" * 400, "m.py", 1, 1)
    suggestions = testgen.TestSuggestions(
        tuple(_suggestion(i, s) for i, s in enumerate(sizes)), (), (finding,) * findings
    )
    text = testgen.render_tests_comment(suggestions, None)
    assert len(text) <= testgen.COMMENT_LIMIT
    assert text.startswith(testgen.TESTS_MARKER)


def test_parse_module_on_head() -> None:
    assert set(parse_module(HEAD).functions) >= {"Box.size", "Box.scale", "simple"}


def test_comment_without_tests_has_no_run_command_but_keeps_the_notes() -> None:
    text = testgen.render_tests_comment(testgen.TestSuggestions((), ("m.py::f: no strategy for its parameters",)))
    assert "No tests to suggest for this change." in text
    assert "pytest" not in text
    assert "- m.py::f: no strategy for its parameters" in text


def test_llm_writer_seam_is_validated_like_the_rest() -> None:
    changeset = ChangeSet.from_unified_diff(_diff(HEAD))
    files = {"pkg/__init__.py": "", "pkg/ops.py": HEAD}
    only = (testgen.TestTarget("pkg/ops.py", "simple"),)
    better = VALID.replace("pkg.mod", "pkg.ops").replace("mod.f(", "mod.simple(")

    def good(target: testgen.TestTarget, source: str, draft: testgen.SuggestedTest) -> testgen.SuggestedTest:
        assert "def simple" in source
        return testgen.SuggestedTest(draft.path, better, draft.targets, ("llm",), draft.module, draft.import_root)

    def invalid(target: testgen.TestTarget, source: str, draft: testgen.SuggestedTest) -> testgen.SuggestedTest:
        return testgen.SuggestedTest(draft.path, "import requests\n", draft.targets, ("llm",))

    def broken(target: testgen.TestTarget, source: str, draft: testgen.SuggestedTest) -> testgen.SuggestedTest:
        raise TimeoutError

    used = testgen.synthesize_tests(testgen.TestRequest(changeset, _reader(files), only=only, writer=good))
    assert used.tests[0].content == better
    for writer in (invalid, broken):
        kept = testgen.synthesize_tests(testgen.TestRequest(changeset, _reader(files), only=only, writer=writer))
        assert kept.tests[0].properties != ("llm",)
        assert "deterministic tests kept" in kept.notes[0]
