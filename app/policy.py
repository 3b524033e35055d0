"""The repository policy (`.github/diffwise.yml`): schema, built-in defaults, deep merge and query helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SeverityName = Literal["info", "low", "medium", "high", "critical"]
ConfidenceName = Literal["low", "medium", "high"]
Trigger = Literal["opened", "reopened", "ready_for_review", "synchronize"]
CommandName = Literal["help", "config", "review", "tests", "explain", "ask", "ignore", "pause", "resume"]
AnalyzerName = Literal["security", "secrets", "quality", "external"]

DEFAULT_TRIGGERS: tuple[Trigger, ...] = ("opened", "reopened", "ready_for_review", "synchronize")
DEFAULT_WRITE_REQUIRED: tuple[CommandName, ...] = ("review", "tests", "ask", "explain", "ignore", "pause", "resume")

POLICY_PATH = ".github/diffwise.yml"
POLICY_PATHS = (".github/diffwise.yml", ".github/diffwise.yaml")

# Paths that are produced by tools rather than written by people; `paths.skip_generated` skips them.
GENERATED_GLOBS = (
    "**/*.lock",
    "**/package-lock.json",
    "**/pnpm-lock.yaml",
    "**/go.sum",
    "**/*.min.js",
    "**/*.min.css",
    "**/*.map",
    "**/*_pb2.py",
    "**/*_pb2_grpc.py",
    "**/*.pb.go",
    "**/*.generated.*",
    "**/vendor/**",
    "**/node_modules/**",
    "**/dist/**",
)


class _Section(BaseModel):
    # strict: YAML already yields typed values, so "5" for an int is a mistake worth reporting.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ReviewPolicy(_Section):
    auto: bool = Field(True, description="Review pull requests automatically on the `on` events.")
    on: list[Trigger] = Field(
        default_factory=lambda: list(DEFAULT_TRIGGERS),
        description="pull_request actions that trigger an automatic review.",
    )
    drafts: bool = Field(False, description="Also review draft pull requests.")
    incremental: bool = Field(True, description="On a push, review only what changed since the last review.")
    ignore_authors: list[str] = Field(default_factory=list, description="Logins whose pull requests are skipped.")
    ignore_bots: bool = Field(True, description="Skip pull requests opened by bots.")
    skip_labels: list[str] = Field(
        default_factory=lambda: ["diffwise:skip"], description="A pull request with any of these labels is skipped."
    )
    debounce_seconds: int = Field(5, ge=0, le=3600, description="Wait this long for further pushes before reviewing.")


class PathsPolicy(_Section):
    include: list[str] = Field(default_factory=lambda: ["**"], description="Globs of paths to review.")
    exclude: list[str] = Field(default_factory=list, description="Globs of paths never reviewed (wins over include).")
    skip_generated: bool = Field(True, description="Skip lock files, minified and generated code, vendored trees.")


class CommentsPolicy(_Section):
    min_severity: SeverityName = Field("medium", description="Inline comments only at or above this severity.")
    max_comments: int = Field(12, ge=0, le=100, description="At most this many inline comments per review.")
    suggestions: bool = Field(True, description="Offer committable suggestions when a fix is certain.")


class PathInstruction(_Section):
    path: str = Field(min_length=1, description="Glob of the paths these instructions apply to.")
    instructions: str = Field(max_length=4000, description="Extra review instructions for matching files.")


class SecurityPolicy(_Section):
    enabled: bool = True
    min_confidence: ConfidenceName = "medium"


class SecretsPolicy(_Section):
    enabled: bool = True


class QualityPolicy(_Section):
    enabled: bool = True
    max_complexity: int = Field(10, ge=1, le=1000)
    max_function_lines: int = Field(80, ge=1, le=100000)
    max_params: int = Field(6, ge=1, le=1000)
    max_nesting: int = Field(4, ge=1, le=1000)


class ExternalPolicy(_Section):
    enabled: bool = True
    ruff: bool = True
    bandit: bool = True
    semgrep: bool = True


class RuleOverride(_Section):
    enabled: bool | None = Field(None, description="Turn this rule on or off; unset follows its analyzer.")
    severity: SeverityName | None = Field(None, description="Report this rule's findings at this severity.")


class AnalyzersPolicy(_Section):
    mode: Literal["added", "diff_context", "file"] = Field(
        "added", description="Report findings on added lines, anywhere in a hunk, or anywhere in a changed file."
    )
    security: SecurityPolicy = Field(default_factory=SecurityPolicy)
    secrets: SecretsPolicy = Field(default_factory=SecretsPolicy)
    quality: QualityPolicy = Field(default_factory=QualityPolicy)
    external: ExternalPolicy = Field(default_factory=ExternalPolicy)
    rules: dict[str, RuleOverride] = Field(
        default_factory=dict, description="Per-rule overrides keyed by rule id (`<analyzer>/<rule>`, `*` allowed)."
    )
    auto_demote: bool = Field(True, description="Lower the severity of rules that reviewers keep dismissing.")


class LlmPolicy(_Section):
    enabled: bool = True
    model: str | None = Field(None, max_length=100, description="Anthropic model id; unset uses the server default.")
    max_input_tokens: int = Field(200000, ge=0, le=5000000, description="Input token budget per pull request.")
    max_cost_usd: float = Field(0.5, ge=0, le=100, description="Cost budget per pull request, in US dollars.")
    max_concurrency: int = Field(4, ge=1, le=32)


class TestsPolicy(_Section):
    __test__ = False  # not a pytest class

    enabled: bool = True
    max_functions: int = Field(5, ge=0, le=100, description="Suggest tests for at most this many functions.")
    verify: bool = Field(False, description="Run suggested tests in a sandbox before posting them.")
    max_examples: int = Field(50, ge=1, le=10000, description="Hypothesis max_examples in suggested tests.")


class ChecksPolicy(_Section):
    enabled: bool = True
    fail_on: Literal["info", "low", "medium", "high", "critical", "never"] = Field(
        "high", description="The check run fails on a finding at or above this severity."
    )


class CommandsPolicy(_Section):
    enabled: bool = True
    write_required: list[CommandName] = Field(
        default_factory=lambda: list(DEFAULT_WRITE_REQUIRED),
        description="Commands only users with write, maintain or admin permission may run.",
    )
    llm_rate_limit_per_hour: int = Field(20, ge=0, le=10000, description="LLM commands per user per hour.")


class Policy(_Section):
    """The whole policy; every field has a default, so `Policy()` is the built-in policy.

    Editors validate `.github/diffwise.yml` against the committed `schema/diffwise.schema.json` (regenerate
    with `diffwise config schema > schema/diffwise.schema.json`) when the file starts with

        # yaml-language-server: $schema=https://raw.githubusercontent.com/<owner>/diffwise/main/schema/diffwise.schema.json
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        populate_by_name=True,
        title="diffwise policy (.github/diffwise.yml)",
    )

    extends: str | None = Field(
        None,
        alias="_extends",
        max_length=300,
        description="Inherit another policy file: `repo`, `org/repo` or `[org/]repo:path.yml` (Probot semantics).",
    )
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)
    paths: PathsPolicy = Field(default_factory=PathsPolicy)
    comments: CommentsPolicy = Field(default_factory=CommentsPolicy)
    instructions: str = Field("", max_length=8000, description="Extra instructions for the LLM review.")
    path_instructions: list[PathInstruction] = Field(default_factory=list)
    analyzers: AnalyzersPolicy = Field(default_factory=AnalyzersPolicy)
    llm: LlmPolicy = Field(default_factory=LlmPolicy)
    tests: TestsPolicy = Field(default_factory=TestsPolicy)
    checks: ChecksPolicy = Field(default_factory=ChecksPolicy)
    commands: CommandsPolicy = Field(default_factory=CommandsPolicy)

    @classmethod
    def default(cls) -> Policy:
        return _default_policy()

    def to_data(self) -> dict[str, Any]:
        """Plain data in file form (aliases, no `_extends`), the shape `merge` and `from_data` work on."""
        return self.model_dump(mode="json", by_alias=True, exclude={"extends"})

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Policy:
        return cls.model_validate(dict(data))

    # -- helpers the pipeline and handlers call -------------------------------------------------------

    def skip_reason(self, path: str) -> str | None:
        """Why `path` is not reviewed under this policy, or None when it is."""
        if not any(glob_match(g, path) for g in self.paths.include):
            return "not in paths.include"
        if any(glob_match(g, path) for g in self.paths.exclude):
            return "in paths.exclude"
        if self.paths.skip_generated and any(glob_match(g, path) for g in GENERATED_GLOBS):
            return "generated file"
        return None

    def path_included(self, path: str) -> bool:
        return self.skip_reason(path) is None

    def instructions_for(self, path: str) -> list[str]:
        """The `path_instructions` texts whose glob matches `path`, in file order.

        The repository-wide `instructions` are not repeated here; they apply to the whole review.
        """
        return [pi.instructions for pi in self.path_instructions if pi.instructions and glob_match(pi.path, path)]

    def _rule_override(self, rule_id: str) -> RuleOverride | None:
        rules = self.analyzers.rules
        if rule_id in rules:
            return rules[rule_id]
        # The most specific wildcard wins: the longest pattern that matches.
        matches = [p for p in rules if "*" in p and glob_match(p, rule_id, separator="")]
        return rules[max(matches, key=len)] if matches else None

    def rule_enabled(self, rule_id: str) -> bool:
        override = self._rule_override(rule_id)
        if override is not None and override.enabled is not None:
            return override.enabled
        analyzer = rule_id.split("/", 1)[0]
        section = getattr(self.analyzers, analyzer, None) if analyzer in _ANALYZER_SECTIONS else None
        return bool(section.enabled) if section is not None else True

    def severity_override(self, rule_id: str) -> str | None:
        override = self._rule_override(rule_id)
        return override.severity if override is not None else None

    def analyzer_settings(self, name: str) -> dict[str, Any]:
        """The settings section of one analyzer (`security`, `secrets`, `quality`, `external`), else {}."""
        key = name.split("-", 1)[0] if name not in _ANALYZER_SECTIONS else name
        if key not in _ANALYZER_SECTIONS:
            return {}
        settings: dict[str, Any] = getattr(self.analyzers, key).model_dump(mode="json")
        return settings

    def command_needs_write(self, command: str) -> bool:
        return command in self.commands.write_required


_ANALYZER_SECTIONS = ("security", "secrets", "quality", "external")


@lru_cache(maxsize=1)
def _default_policy() -> Policy:
    return Policy()


def default_data() -> dict[str, Any]:
    return Policy.default().to_data()


def policy_json_schema() -> dict[str, Any]:
    schema = Policy.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    """The committed `schema/diffwise.schema.json`, byte for byte."""
    return json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n"


# -- merging ---------------------------------------------------------------------------------------------


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else (lists included) in `override` replaces.

    Associative whenever the layers agree on which keys hold mappings, as every schema-valid file does.
    """
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = merge(current, value)
        else:
            out[key] = value
    return out


def merge_all(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in layers:
        out = merge(out, layer)
    return out


def leaf_paths(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    """Every key path to a non-mapping value (an empty mapping counts as a leaf)."""
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from leaf_paths(value, path)
        else:
            yield path


# -- globs -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str, separator: str) -> re.Pattern[str]:
    """`**` crosses separators, `*` and `?` do not; a pattern without a separator matches any basename."""
    sep = re.escape(separator) if separator else ""
    not_sep = f"[^{sep}]" if sep else "."
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append(f"(?:.*{sep})?" if sep else ".*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append(f"{not_sep}*")
            i += 1
        elif c == "?":
            out.append(not_sep)
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    if separator and separator not in pattern:
        body = f"(?:.*{sep})?{body}"
    return re.compile(f"^{body}$", re.DOTALL)


def glob_match(pattern: str, path: str, *, separator: str = "/") -> bool:
    return _glob_regex(pattern.lstrip("/") if separator else pattern, separator).match(path.lstrip("/")) is not None
