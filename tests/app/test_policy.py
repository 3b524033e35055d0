"""The policy model: defaults, helpers, merge properties and the committed JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.policy import Policy, default_data, glob_match, leaf_paths, merge, merge_all, schema_text
from app.policy_loader import parse_policy_text

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_match_the_documented_values() -> None:
    p = Policy.default()
    assert p.review.auto is True
    assert p.review.on == ["opened", "reopened", "ready_for_review", "synchronize"]
    assert (p.review.drafts, p.review.incremental, p.review.ignore_bots) == (False, True, True)
    assert p.review.skip_labels == ["diffwise:skip"]
    assert p.review.debounce_seconds == 5
    assert (p.paths.include, p.paths.exclude, p.paths.skip_generated) == (["**"], [], True)
    assert (p.comments.min_severity, p.comments.max_comments, p.comments.suggestions) == ("medium", 12, True)
    assert p.analyzers.mode == "added"
    assert p.analyzers.security.min_confidence == "medium"
    assert p.analyzers.quality.max_complexity == 10
    assert (p.llm.model, p.llm.max_input_tokens, p.llm.max_cost_usd, p.llm.max_concurrency) == (None, 200000, 0.5, 4)
    assert (p.tests.max_functions, p.tests.verify, p.tests.max_examples) == (5, False, 50)
    assert p.checks.fail_on == "high"
    assert p.commands.write_required == ["review", "tests", "ask", "explain", "ignore", "pause", "resume"]
    assert p.commands.llm_rate_limit_per_hour == 20
    assert Policy.default() is Policy.default()
    assert Policy.from_data({}) == Policy.default()


def test_unknown_keys_are_rejected_everywhere() -> None:
    for data in ({"bogus": 1}, {"review": {"bogus": 1}}, {"analyzers": {"rules": {"a/b": {"bogus": 1}}}}):
        with pytest.raises(ValueError, match="Extra inputs"):
            Policy.from_data(data)


def test_paths_include_exclude_and_generated() -> None:
    p = Policy.from_data({"paths": {"include": ["src/**", "*.md"], "exclude": ["src/legacy/**"]}})
    assert p.path_included("src/app/main.py")
    assert p.path_included("docs/readme.md")  # a glob without "/" matches the basename anywhere
    assert not p.path_included("tests/test_x.py")
    assert p.skip_reason("tests/test_x.py") == "not in paths.include"
    assert p.skip_reason("src/legacy/old.py") == "in paths.exclude"
    assert p.skip_reason("src/vendor/lib.py") == "generated file"
    assert Policy.from_data({"paths": {"skip_generated": False}}).path_included("package-lock.json")
    assert not Policy.default().path_included("web/package-lock.json")


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**", "a/b/c.py", True),
        ("*.py", "a/b/c.py", True),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/a/b.py", False),
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/a/b/c.py", True),
        ("src/**", "src/a/b", True),
        ("/src/a.py", "src/a.py", True),
        ("a?.py", "ab.py", True),
        ("a?.py", "a/.py", False),
        ("docs/**", "docsx/a", False),
    ],
)
def test_glob_match(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


def test_instructions_for_returns_matching_path_instructions_in_order() -> None:
    p = Policy.from_data(
        {
            "instructions": "global",
            "path_instructions": [
                {"path": "migrations/**", "instructions": "reversible"},
                {"path": "**/*.sql", "instructions": "indexes"},
                {"path": "docs/**", "instructions": "spelling"},
            ],
        }
    )
    assert p.instructions_for("migrations/001.sql") == ["reversible", "indexes"]
    assert p.instructions_for("src/a.py") == []


def test_rule_overrides_exact_wildcard_and_analyzer_switch() -> None:
    p = Policy.from_data(
        {
            "analyzers": {
                "quality": {"enabled": False},
                "rules": {
                    "security/*": {"severity": "critical"},
                    "security/sql-injection": {"severity": "high"},
                    "quality/long-function": {"enabled": True},
                    "secrets/aws-key": {"enabled": False},
                },
            }
        }
    )
    assert p.severity_override("security/sql-injection") == "high"
    assert p.severity_override("security/eval") == "critical"
    assert p.severity_override("quality/x") is None
    assert p.rule_enabled("quality/long-function") is True
    assert p.rule_enabled("quality/too-many-params") is False  # follows the analyzer
    assert p.rule_enabled("secrets/aws-key") is False
    assert p.rule_enabled("secrets/github-token") is True
    assert p.rule_enabled("llm/anything") is True


def test_analyzer_settings() -> None:
    p = Policy.from_data({"analyzers": {"mode": "file", "quality": {"max_params": 3}}})
    settings_ = p.analyzer_settings("quality")
    assert settings_["max_params"] == 3
    assert "mode" not in settings_  # analyzers get the mode from their context
    assert p.analyzer_settings("external")["semgrep"] is True
    assert p.analyzer_settings("nope") == {}


def test_command_needs_write() -> None:
    p = Policy.default()
    assert p.command_needs_write("review")
    assert not p.command_needs_write("help")


def test_merge_replaces_lists_and_merges_mappings() -> None:
    base = {"review": {"on": ["opened"], "auto": True}, "x": 1}
    over = {"review": {"on": ["synchronize"]}, "y": 2}
    assert merge(base, over) == {"review": {"on": ["synchronize"], "auto": True}, "x": 1, "y": 2}
    assert base == {"review": {"on": ["opened"], "auto": True}, "x": 1}  # inputs untouched


# As in the schema, a key either always holds a mapping (a section) or never does.
_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=3) | st.lists(st.integers(), max_size=2)
_docs = st.recursive(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), _leaf, max_size=3),
    lambda inner: st.builds(
        merge,
        st.dictionaries(st.sampled_from(["a", "b", "c"]), _leaf, max_size=3),
        st.dictionaries(st.sampled_from(["review", "paths"]), inner, max_size=2),
    ),
    max_leaves=6,
)


@given(_docs, _docs, _docs)
def test_merge_is_associative(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> None:
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge_all([a, b, c]) == merge(a, merge(b, c))
    assert merge({}, a) == a == merge(a, {})


def _partial_policies() -> st.SearchStrategy[dict[str, Any]]:
    """Valid partial policy files built from each section's scalar fields."""
    sections: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "review": {
            "auto": st.booleans(),
            "drafts": st.booleans(),
            "debounce_seconds": st.integers(0, 3600),
            "on": st.lists(st.sampled_from(["opened", "synchronize"]), max_size=2),
        },
        "paths": {"exclude": st.lists(st.sampled_from(["docs/**", "*.md"]), max_size=2)},
        "comments": {"min_severity": st.sampled_from(["low", "high"]), "max_comments": st.integers(0, 100)},
        "llm": {"enabled": st.booleans(), "max_cost_usd": st.floats(0, 100)},
        "tests": {"max_functions": st.integers(0, 100)},
        "checks": {"fail_on": st.sampled_from(["never", "critical"])},
    }
    section_strategies = {name: st.fixed_dictionaries({}, optional=fields) for name, fields in sections.items()}
    return st.fixed_dictionaries({}, optional={**section_strategies, "instructions": st.text(max_size=20)})


@settings(max_examples=60)
@given(_partial_policies())
def test_defaults_fill_every_missing_key(partial: dict[str, Any]) -> None:
    policy = Policy.from_data(partial)
    data = policy.to_data()
    assert data == merge(default_data(), partial)
    assert sorted(leaf_paths(data)) == sorted(leaf_paths(default_data()))


@settings(max_examples=40)
@given(_partial_policies(), _partial_policies())
def test_layered_files_validate_like_their_merge(a: dict[str, Any], b: dict[str, Any]) -> None:
    merged = Policy.from_data(merge(a, b)).to_data()
    assert merged == merge(merge(default_data(), a), b)


def test_committed_schema_matches_the_model() -> None:
    committed = (ROOT / "schema" / "diffwise.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "regenerate: python -m app config schema > schema/diffwise.schema.json"


def test_schema_accepts_the_example_and_rejects_unknown_keys() -> None:
    schema = json.loads(schema_text())
    validator = jsonschema.Draft202012Validator(schema)
    # Our reader keeps `on:` a string key, as YAML 1.2 editors do (yaml.safe_load would turn it into True).
    example = parse_policy_text((ROOT / "tests/fixtures/policy/full.yml").read_bytes()).data
    assert list(validator.iter_errors(example)) == []
    assert list(validator.iter_errors(default_data())) == []
    assert list(validator.iter_errors({"_extends": "org/base"})) == []
    assert list(validator.iter_errors({"review": {"bogus": True}}))
