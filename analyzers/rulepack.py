"""Rule packs: YAML files of tree-sitter queries plus metadata, validated, compiled once per language, run."""

from __future__ import annotations

import bisect
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from tree_sitter import Node, Query, QueryCursor, Tree

from analyzers.base import Confidence, Severity
from analyzers.languages import get_language
from analyzers.prefilter import Need, Prefilter, pattern_conditions, regex_conditions

log = logging.getLogger(__name__)

RULES_DIR = Path(__file__).with_name("rules")
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """A regex that must (when) or must not (unless) search the text of a capture (or the match)."""

    capture: str | None = None  # None: the whole reported node
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)
        return value

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.regex)


class Context(_Model):
    """A regex that must search the enclosing function's (or the file's) text: a cheap 'used for X' check."""

    regex: str
    scope: Literal["function", "file"] = "function"
    otherwise: Literal["skip", "low"] = "skip"  # without the context: no finding, or a low-confidence one

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.regex)


class TaintSpec(_Model):
    """How data-flow decides a match: the capture whose origin matters and what it must be."""

    capture: str
    # value: any non-constant origin fires; built: the value must be assembled from strings (or be raw input)
    require: Literal["value", "built"] = "value"
    unknown: Literal["skip", "low", "medium", "high"] = "low"  # confidence when the origin is unknown
    param: Literal["skip", "low", "medium", "high"] = "high"  # confidence when it is a function parameter
    sanitizers: tuple[str, ...] = ()  # names of the pack's sanitiser sets that neutralise this sink


class FixSpec(_Model):
    """A certain fix: replace the text of `capture` with `replacement` (a template over captures)."""

    capture: str
    replacement: str
    when: tuple[Condition, ...] = ()
    unless: tuple[Condition, ...] = ()
    literal: str | None = None  # a capture that must evaluate to a constant for the fix to apply


class Rule(_Model):
    id: str
    title: str
    message: str
    cwe: int | None = None
    severity: Severity
    confidence: Confidence = Confidence.MEDIUM
    query: str
    report: str = "sink"
    taint: TaintSpec | None = None
    when: tuple[Condition, ...] = ()
    unless: tuple[Condition, ...] = ()
    context: Context | None = None
    # a regex over the enclosing function's text before the sink: a check there (e.g. rejecting "..")
    # that returns or raises makes the sink safe
    guard: str | None = None
    fix: FixSpec | None = None
    references: tuple[str, ...] = ()
    exclude_paths: str | None = None  # regex over the file path (e.g. tests, where asserts are the point)
    # a regex over the conditions of the `if`s around the sink: when one matches, the sink runs only because a
    # caller asked for it (e.g. `if verify is False:` in a client library implementing that option), so the
    # finding is low confidence
    opt_out: str | None = None
    languages: tuple[str, ...] = ()  # restrict to some of the pack's languages (e.g. JSX-only rules)
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _kebab(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"rule id {value!r} must be kebab-case")
        return value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: object) -> Severity:
        if isinstance(value, str | Severity):
            return Severity.parse(value)
        if isinstance(value, int):
            return Severity(value)
        raise ValueError(f"severity must be a name or a number, not {type(value).__name__}")

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence(cls, value: object) -> Confidence:
        if isinstance(value, str | Confidence):
            return Confidence.parse(value)
        if isinstance(value, int):
            return Confidence(value)
        raise ValueError(f"confidence must be a name or a number, not {type(value).__name__}")

    @model_validator(mode="after")
    def _captures_exist(self) -> Rule:
        names = set(re.findall(r"@([A-Za-z_][A-Za-z0-9_.]*)", self.query))
        wanted = {self.report}
        if self.taint is not None:
            wanted.add(self.taint.capture)
        if self.fix is not None:
            wanted.add(self.fix.capture)
            if self.fix.literal:
                wanted.add(self.fix.literal)
        for cond in (*self.when, *self.unless, *(self.fix.when + self.fix.unless if self.fix else ())):
            if cond.capture:
                wanted.add(cond.capture)
        for template in (self.message, self.fix.replacement if self.fix else ""):
            wanted.update(n for n in _PLACEHOLDER.findall(template) if n not in ("origin", "rule"))
        missing = wanted - names
        if missing:
            raise ValueError(f"rule {self.id}: captures {sorted(missing)} are not in its query")
        return self


class RulePack(_Model):
    language: str
    languages: tuple[str, ...] = ()  # every language the pack applies to (default: just `language`)
    sanitizers: dict[str, str] = Field(default_factory=dict)
    rules: tuple[Rule, ...]

    @model_validator(mode="after")
    def _unique(self) -> RulePack:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r} in the {self.language} pack")
            seen.add(rule.id)
        for rule in self.rules:
            for name in rule.taint.sanitizers if rule.taint else ():
                if name not in self.sanitizers:
                    raise ValueError(f"rule {rule.id}: unknown sanitiser set {name!r}")
        for value in self.sanitizers.values():
            re.compile(value)
        return self

    @property
    def targets(self) -> tuple[str, ...]:
        return self.languages or (self.language,)


class RulePackError(ValueError):
    """A rule pack that does not validate or whose queries do not compile."""


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader parses the packs ~10x faster


def load_pack(path: Path) -> RulePack:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
        return RulePack.model_validate(data)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise RulePackError(f"{path.name}: {exc}") from exc


@dataclass(frozen=True)
class RuleMatch:
    rule: Rule
    captures: dict[str, list[Node]]

    def node(self, name: str) -> Node | None:
        nodes = self.captures.get(name)
        return nodes[0] if nodes else None


@dataclass(frozen=True)
class CompiledPack:
    language: str
    pack: RulePack
    query: Query | None
    owners: tuple[int, ...]  # pattern index -> index into pack.rules
    sanitizers: dict[str, re.Pattern[str]]
    source: bytes = b""  # the combined query's text
    prefilter: Prefilter | None = None  # pattern index -> what a file must contain for the pattern to match
    _rule_sanitizers: dict[str, re.Pattern[str] | None] = field(default_factory=dict, repr=False, compare=False)
    _variants: dict[tuple[int, ...], Query | None] = field(default_factory=dict, repr=False, compare=False)

    def run(
        self, tree: Tree, byte_ranges: list[tuple[int, int]] | None = None, *, text: bytes | None = None
    ) -> Iterator[RuleMatch]:
        """Matches of every enabled rule, over the whole tree or only the given byte ranges.

        With the file's `text`, patterns that cannot match it (prefilter) are left out of the query run.
        """
        if self.query is None:
            return
        query, patterns = self.query, None
        if text is not None and self.prefilter is not None:
            active = self.prefilter.active(text)
            if not active:
                return
            if len(active) < self.query.pattern_count:
                variant = self._variant(active)
                if variant is not None:
                    query, patterns = variant, active
        ranges = byte_ranges if byte_ranges is not None else [(0, tree.root_node.end_byte)]
        seen: set[tuple[int, int, int]] = set()
        for start, end in ranges:
            cursor = QueryCursor(query)
            cursor.set_byte_range(start, end)
            for pattern_index, captures in cursor.matches(tree.root_node):
                if patterns is not None:
                    pattern_index = patterns[pattern_index]
                rule = self.pack.rules[self.owners[pattern_index]]
                report = captures.get(rule.report)
                if not report:
                    continue
                key = (pattern_index, report[0].start_byte, report[0].end_byte)
                if key in seen:
                    continue
                seen.add(key)
                yield RuleMatch(rule, captures)

    def _variant(self, patterns: tuple[int, ...]) -> Query | None:
        """The combined query cut down to `patterns` (compiled once per distinct set; None: use the full one)."""
        try:  # one lookup: another thread may evict the entry between a test and a read
            return self._variants[patterns]
        except KeyError:
            pass
        assert self.query is not None
        with _lock:
            try:
                return self._variants[patterns]
            except KeyError:
                pass
            if len(self._variants) >= _MAX_VARIANTS:
                self._variants.pop(next(iter(self._variants)))
            query = self.query
            parts = [self.source[query.start_byte_for_pattern(p) : query.end_byte_for_pattern(p)] for p in patterns]
            lang = get_language(self.language)
            variant: Query | None = None
            try:
                variant = Query(lang, b"\n".join(parts).decode("utf-8")) if lang is not None else None
            except Exception:  # never expected: the parts compiled as one query; fall back to it
                log.exception("a cut-down %s rule query did not compile; the full one runs", self.language)
            if variant is not None and variant.pattern_count != len(patterns):
                variant = None
            self._variants[patterns] = variant
            return variant

    def sanitizer_pattern(self, rule: Rule) -> re.Pattern[str] | None:
        if rule.taint is None or not rule.taint.sanitizers:
            return None
        cached = self._rule_sanitizers.get(rule.id)  # asked once per match: build the alternation once per rule
        if cached is None:
            cached = re.compile("|".join(f"(?:{self.pack.sanitizers[n]})" for n in rule.taint.sanitizers))
            self._rule_sanitizers[rule.id] = cached
        return cached


def compile_pack(pack: RulePack, language: str) -> CompiledPack:
    """One combined Query for all enabled rules, so a file is walked once whatever the number of rules."""
    lang = get_language(language)
    sanitizers = {name: re.compile(rx) for name, rx in pack.sanitizers.items()}
    if lang is None:
        return CompiledPack(language, pack, None, (), sanitizers)
    chosen = [i for i, r in enumerate(pack.rules) if r.enabled and (not r.languages or language in r.languages)]
    if not chosen:
        return CompiledPack(language, pack, None, (), sanitizers)
    parts: list[str] = []
    starts: list[int] = []  # byte offset of each rule's query inside the combined source
    offset = 0
    for i in chosen:
        starts.append(offset)
        text = pack.rules[i].query + "\n"
        parts.append(text)
        offset += len(text.encode("utf-8"))
    query_text = "".join(parts)
    try:
        combined = Query(lang, query_text)
    except Exception:  # the binding raises QueryError subclasses: find the rule at fault
        for i in chosen:
            try:
                Query(lang, pack.rules[i].query)
            except Exception as exc:
                rule_id = pack.rules[i].id
                raise RulePackError(f"{pack.language} rule {rule_id} does not compile for {language}: {exc}") from exc
        raise
    owners = tuple(
        chosen[bisect.bisect_right(starts, combined.start_byte_for_pattern(p)) - 1]
        for p in range(combined.pattern_count)
    )
    source = query_text.encode("utf-8")
    extra = [_rule_conditions(pack.rules[owner]) for owner in owners]
    prefilter = Prefilter(pattern_conditions(combined, source, extra))
    return CompiledPack(language, pack, combined, owners, sanitizers, source, prefilter)


def _rule_conditions(rule: Rule) -> tuple[Need, ...]:
    """What a file needs for `rule` to report anything, beyond its query: text its `when` regexes (searched
    in slices of the file) and its context regex (when a failed context means no finding) must find."""
    regexes = [c.regex for c in rule.when]
    if rule.context is not None and rule.context.otherwise == "skip":
        regexes.append(rule.context.regex)
    return tuple(c for regex in regexes for c in regex_conditions(regex))


_lock = threading.Lock()
_MAX_VARIANTS = 64  # distinct sets of active patterns kept compiled per language
_packs: dict[str, RulePack] | None = None
_compiled: dict[str, CompiledPack | None] = {}


def builtin_packs(rules_dir: Path = RULES_DIR) -> dict[str, RulePack]:
    """Every pack under analyzers/rules, keyed by each language it targets (loaded once)."""
    global _packs
    if _packs is not None and rules_dir == RULES_DIR:
        return _packs
    packs: dict[str, RulePack] = {}
    for path in sorted(rules_dir.glob("*.yml")):
        pack = load_pack(path)
        for target in pack.targets:
            packs[target] = pack
    if rules_dir == RULES_DIR:
        _packs = packs
    return packs


# languages served by another language's pack file (the pack's `languages` list must name them too)
PACK_FILES: dict[str, str] = {"typescript": "javascript", "tsx": "javascript"}


def pack_for(language: str | None) -> CompiledPack | None:
    """The compiled built-in pack for a language (loaded and compiled on first use, then cached), or None."""
    if language is None:
        return None
    if language in _compiled:
        return _compiled[language]
    with _lock:
        if language not in _compiled:
            path = RULES_DIR / f"{PACK_FILES.get(language, language)}.yml"
            pack = load_pack(path) if path.is_file() else None
            if pack is not None and language not in pack.targets:
                pack = None
            _compiled[language] = compile_pack(pack, language) if pack is not None else None
        return _compiled[language]


def render(template: str, values: dict[str, str]) -> str:
    """Fill {name} placeholders; an unknown name is left as it is."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
