"""The rule-query prefilter leaves out only patterns that cannot match: the matches are those of the full query."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzers.languages import detect_language, new_parser
from analyzers.prefilter import Prefilter, capture_alternatives, regex_conditions
from analyzers.rulepack import pack_for
from analyzers.security import scan_tree

FIXTURES = Path(__file__).parent.parent / "fixtures" / "security"
CASE_FILES = sorted(FIXTURES.glob("*_cases.*"))
CORPUS = sorted((FIXTURES / "corpus").rglob("*.py"))


def _words(conditions: tuple[frozenset[tuple[bytes, bool]], ...]) -> list[set[str]]:
    return [{w.decode() for w, _ in c} for c in conditions]


def test_regex_conditions_take_the_literals_every_match_contains() -> None:
    assert _words(regex_conditions(r"^(open|io\.open|os\.(remove|unlink))$")) == [
        {"open", "io.open", "remove", "unlink"}
    ]
    assert _words(regex_conditions(r"(^|\.)(text|RawSQL)$")) == [{"text", "RawSQL"}]
    # every part of a sequence is needed: each gives a condition
    assert _words(regex_conditions(r"@[\w.]+\.(?:route|get)\(")) == [{"@"}, {"."}, {"route", "get"}, {"("}]
    assert _words(regex_conditions(r"ab+c?d")) == [{"a"}, {"b"}, {"d"}]


def test_an_anchored_alternation_names_every_whole_text_it_matches() -> None:
    assert capture_alternatives(r"^(pickle|os\.(remove|unlink))$") == {"pickle", "os.remove", "os.unlink"}
    assert capture_alternatives(r"^(requests|httpx)$") == {"requests", "httpx"}
    assert capture_alternatives(r"(^|\.)(text|RawSQL)$") is None  # not anchored at the start
    assert capture_alternatives(r"^(open|\w+)$") is None  # not only literals
    assert capture_alternatives(r"^open") is None
    assert capture_alternatives(r"(?i)^(open)$") is None


@pytest.mark.parametrize(
    "regex",
    [r"(?i)password", r"x*", r"[abc]+", r"(foo|.*)", r"(?i:secret)", r"a?"],
)
def test_regex_conditions_say_nothing_when_nothing_is_certain(regex: str) -> None:
    assert regex_conditions(regex) == ()


def test_whole_words_stand_alone() -> None:
    exec_only = Prefilter([(frozenset({(b"exec", True)}),)])
    assert exec_only.active(b"db.execute(q)") == ()
    assert exec_only.active(b"exec(code)") == (0,)
    dotted = Prefilter([(frozenset({(b"io.open", False)}),)])
    assert dotted.active(b"x = io.open(p)") == (0,)
    both = Prefilter([(frozenset({(b"os", True)}), frozenset({(b"system", True)})), ()])
    assert both.active(b"pos = system()") == (1,)  # "os" only inside "pos": the first pattern cannot match
    assert both.active(b"os.system(cmd)") == (0, 1)


def test_the_python_pack_has_conditions_for_most_patterns() -> None:
    compiled = pack_for("python")
    assert compiled is not None
    assert compiled.prefilter is not None
    conditions = compiled.prefilter.conditions
    assert sum(1 for c in conditions if c) >= len(conditions) - 3


def _findings(source: bytes, language: str, prefilter: bool) -> list[tuple[str, int, int, str]]:
    parser = new_parser(language)
    assert parser is not None
    tree = parser.parse(source)
    found = scan_tree("case", source, tree, language, prefilter=prefilter)
    return sorted((f.rule, f.start_line, f.end_line, f.message) for f in found)


def _alike(source: bytes, language: str) -> bool:
    return _findings(source, language, True) == _findings(source, language, False)


def _chunks(text: str, size: int = 12) -> list[str]:
    lines = text.split("\n")
    return ["\n".join(lines[i : i + size]) for i in range(0, len(lines), size // 2)]


@pytest.mark.parametrize("case_file", CASE_FILES, ids=lambda p: p.name)
def test_same_matches_as_the_full_query_on_every_rule_case(case_file: Path) -> None:
    text = case_file.read_text()
    language = detect_language(case_file.name, text)
    compiled = pack_for(language)
    assert language is not None
    assert compiled is not None
    chunks = [text, *_chunks(text)]  # the whole file has every rule's words; a chunk only some
    narrowed = 0
    for chunk in chunks:
        source = chunk.encode()
        assert _alike(source, language), chunk
        assert compiled.prefilter is not None
        narrowed += len(compiled.prefilter.active(source)) < len(compiled.prefilter.conditions)
    assert narrowed > len(chunks) // 2  # the test exercised the cut-down queries, not only the full one


def test_same_matches_as_the_full_query_on_the_labelled_corpus() -> None:
    assert CORPUS
    for path in CORPUS:
        source = path.read_bytes()
        assert _alike(source, "python"), path


_PYTHON_CASES = (FIXTURES / "python_cases.py").read_text().split("\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(_PYTHON_CASES) - 1), min_size=1, max_size=40))
def test_any_mix_of_case_lines_matches_alike(picks: list[int]) -> None:
    source = "\n".join(_PYTHON_CASES[i] for i in picks).encode()
    assert _alike(source, "python")
