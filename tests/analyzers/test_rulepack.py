"""Rule packs: schema validation, query compilation for every target language, caching, templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzers.rulepack import RULES_DIR, RulePackError, builtin_packs, compile_pack, load_pack, pack_for, render


def test_every_builtin_pack_compiles_for_every_target_language() -> None:
    packs = builtin_packs()
    assert {"python", "javascript", "typescript", "tsx", "go", "java", "ruby", "php"} <= set(packs)
    for language in packs:
        compiled = pack_for(language)
        assert compiled is not None
        assert compiled.query is not None, language
        assert compiled.query.pattern_count == len(compiled.owners)


def test_every_rule_has_cwe_message_and_reference() -> None:
    for pack in {id(p): p for p in builtin_packs().values()}.values():
        for rule in pack.rules:
            assert rule.cwe, f"{pack.language}/{rule.id} has no CWE"
            assert rule.message.strip()
            assert rule.title.strip()
            assert rule.references, f"{pack.language}/{rule.id} has no reference"


def test_compiled_pack_is_cached() -> None:
    assert pack_for("python") is pack_for("python")
    assert pack_for("cobol") is None
    assert pack_for(None) is None


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pack.yml"
    path.write_text(body)
    return path


GOOD_RULE = """
  - id: demo
    title: Demo
    message: "call to {fn}"
    cwe: 78
    severity: high
    query: '(call function: (identifier) @fn) @sink'
    references: [https://example.com]
"""


def test_valid_minimal_pack(tmp_path: Path) -> None:
    pack = load_pack(_write(tmp_path, "language: python\nrules:\n" + GOOD_RULE))
    assert pack.rules[0].id == "demo"
    compiled = compile_pack(pack, "python")
    assert compiled.query is not None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("language: python\nrules:\n" + GOOD_RULE.replace("id: demo", "id: Demo_Rule"), "kebab-case"),
        ("language: python\nrules:\n" + GOOD_RULE.replace("severity: high", "severity: urgent"), "severity"),
        ("language: python\nrules:\n" + GOOD_RULE + GOOD_RULE, "duplicate rule id"),
        ("language: python\nrules:\n" + GOOD_RULE.replace("{fn}", "{nothing}"), "nothing"),
        ("language: python\nrules:\n" + GOOD_RULE.replace("cwe: 78", "cwe: 78\n    colour: red"), "colour"),
        (
            "language: python\nrules:\n" + GOOD_RULE + "    taint: {capture: fn, sanitizers: [nope]}\n",
            "unknown sanitiser",
        ),
    ],
)
def test_invalid_packs_are_rejected_with_a_reason(tmp_path: Path, body: str, error: str) -> None:
    with pytest.raises(RulePackError, match=error):
        load_pack(_write(tmp_path, body))


def test_a_query_that_does_not_compile_names_the_rule(tmp_path: Path) -> None:
    body = "language: python\nrules:\n" + GOOD_RULE.replace("(identifier) @fn", "(no_such_node) @fn")
    pack = load_pack(_write(tmp_path, body))
    with pytest.raises(RulePackError, match="demo"):
        compile_pack(pack, "python")


def test_render_fills_known_names_and_leaves_others() -> None:
    assert render("{a} and {b}", {"a": "x"}) == "x and {b}"


def test_rules_dir_holds_one_pack_per_language_file() -> None:
    names = sorted(p.stem for p in RULES_DIR.glob("*.yml"))
    assert names == ["go", "java", "javascript", "php", "python", "ruby"]
