"""The "changed function has no test touching it" hint and the test-file naming conventions behind it."""

from __future__ import annotations

import pytest

from analyzers.quality import QualityAnalyzer
from analyzers.testmap import TestIndex, candidate_test_paths, is_test_path
from tests.analyzers.test_quality_support import context

FN = "def parse_header(text):\n    name, _, value = text.partition(':')\n    return name.strip(), value.strip()\n"


def untested(files: dict[str, tuple[str, str | None]], extra: dict[str, str] | None = None, **kw: int) -> list:
    found = QualityAnalyzer().analyze(context(files, extra, **kw))
    return [f for f in found if f.rule == "quality/untested-change"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_mod.py", True),
        ("pkg/mod_test.py", True),
        ("pkg/conftest.py", True),
        ("p/f_test.go", True),
        ("web/a.spec.ts", True),
        ("web/__tests__/a.js", True),
        ("src/test/java/x/FooTest.java", True),
        ("pkg/mod.py", False),
        ("pkg/contest.py", False),
        ("web/latest.ts", False),
        ("src/main/java/x/Foo.java", False),
    ],
)
def test_is_test_path(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


def test_candidate_paths_follow_conventions() -> None:
    py = candidate_test_paths("src/pkg/mod.py")
    assert "tests/test_mod.py" in py
    assert "tests/pkg/test_mod.py" in py
    assert "src/pkg/tests/test_mod.py" in py
    assert candidate_test_paths("p/f.go") == ["p/f_test.go"]
    assert "src/test/java/x/FooTest.java" in candidate_test_paths("src/main/java/x/Foo.java")
    ts = candidate_test_paths("web/a.ts")
    assert ts[:2] == ["web/a.test.ts", "web/a.spec.ts"]
    assert "web/__tests__/a.test.ts" in ts
    assert candidate_test_paths("tests/test_mod.py") == []
    assert candidate_test_paths("README.md") == []


def test_hint_when_no_test_mentions_the_function() -> None:
    (found,) = untested({"pkg/mod.py": (FN, None)})
    assert found.symbol == "parse_header"
    assert found.severity.label == "info"
    assert "no test file" in found.message


def test_existing_test_file_that_mentions_it_covers_it() -> None:
    tests = {"tests/test_mod.py": "from pkg.mod import parse_header\n\ndef test_parse_header(): ...\n"}
    assert untested({"pkg/mod.py": (FN, None)}, tests) == []


def test_existing_test_file_that_does_not_mention_it_is_named() -> None:
    (found,) = untested({"pkg/mod.py": (FN, None)}, {"tests/test_mod.py": "def test_other(): ...\n"})
    assert "tests/test_mod.py" in found.message


def test_a_changed_test_file_anywhere_covers_it() -> None:
    files = {"pkg/mod.py": (FN, None), "tests/unit/test_headers.py": ("def test_parse_header(): ...\n", None)}
    assert untested(files) == []


@pytest.mark.parametrize(
    ("path", "src"),
    [
        ("pkg/mod.py", "def _private(x):\n    y = x\n    return y\n"),
        ("pkg/mod.py", "def short(x):\n    return x\n"),
        ("pkg/__init__.py", FN),
        ("tests/test_mod.py", FN),
        ("p/f.go", "package p\n\nfunc helper(x int) int {\n\ty := x\n\treturn y\n}\n"),
        ("pkg/mod.py", "def main():\n    a = 1\n    return a\n"),
    ],
)
def test_no_hint_for_private_short_test_or_entry_functions(path: str, src: str) -> None:
    assert untested({path: (src, None)}) == []


def test_hints_are_capped_and_can_be_turned_off() -> None:
    src = "".join(f"def fn{i}(x):\n    y = x\n    return y\n\n" for i in range(9))
    tests = {"tests/test_mod.py": "def test_nothing(): ...\n"}
    assert len(untested({"pkg/mod.py": (src, None)}, tests)) == 5
    assert len(untested({"pkg/mod.py": (src, None)}, tests, max_untested_hints=2)) == 2
    assert untested({"pkg/mod.py": (src, None)}, tests, max_untested_hints=0) == []


def test_a_module_without_any_test_file_gets_one_hint() -> None:
    src = "".join(f"def fn{i}(x):\n    y = x\n    return y\n\n" for i in range(6))
    (found,) = untested({"pkg/mod.py": (src, None)})
    assert found.symbol is None
    assert found.message.startswith("`fn0`, `fn1`, `fn2`, `fn3` and 2 more changed but no test file")
    assert found.start_line == 1


def test_index_reads_are_bounded_and_errors_are_absent_files() -> None:
    calls: list[str] = []

    def reader(path: str) -> str | None:
        calls.append(path)
        raise OSError("boom")

    index = TestIndex(["pkg/mod.py"], reader, max_reads=3)
    assert not index.touches("pkg/mod.py", "parse_header")
    assert len(calls) == 3
