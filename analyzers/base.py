"""The analyzer contract: Severity, Confidence, Finding (frozen), fingerprints and the Analyzer protocol."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from analyzers.diff import ChangedFile, ChangeSet
    from analyzers.syntax import SyntaxMap

Side = Literal["RIGHT", "LEFT"]
FilterMode = Literal["added", "diff_context", "file"]


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {value!r}; expected one of {', '.join(cls.names())}") from None

    @classmethod
    def names(cls) -> list[str]:
        return [s.name.lower() for s in cls]

    @property
    def label(self) -> str:
        return self.name.lower()


class Confidence(IntEnum):
    LOW = 0
    MEDIUM = 1
    HIGH = 2

    @classmethod
    def parse(cls, value: str | Confidence) -> Confidence:
        if isinstance(value, Confidence):
            return value
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown confidence {value!r}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Fix:
    """A certain fix: `replacement` replaces new-file lines start_line..end_line (inclusive) verbatim."""

    start_line: int
    end_line: int
    replacement: str


_WS = re.compile(r"\s+")


def normalize_code(code: str) -> str:
    """Whitespace-insensitive form of a code snippet, so re-indentation keeps a fingerprint."""
    return _WS.sub(" ", code).strip()


def fingerprint(rule: str, path: str, symbol: str | None, code: str, occurrence: int = 0) -> str:
    """A stable id that survives line shifts: rule, path, enclosing symbol and normalised code, no line."""
    material = "\x1f".join((rule, path, symbol or "", normalize_code(code), str(occurrence)))
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class Finding:
    rule: str  # "<analyzer>/<rule>", stable across releases
    analyzer: str
    severity: Severity
    confidence: Confidence
    message: str
    path: str
    start_line: int
    end_line: int
    side: Side = "RIGHT"
    title: str = ""
    cwe: int | None = None
    fix: Fix | None = None
    symbol: str | None = None  # enclosing symbol chain, e.g. "Cls.method"
    code: str = ""  # the flagged source text (normalised into the fingerprint)
    references: tuple[str, ...] = ()
    source: Literal["analyzer", "llm", "tests"] = "analyzer"
    occurrence: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return fingerprint(self.rule, self.path, self.symbol, self.code, self.occurrence)

    @property
    def line(self) -> int:
        return self.end_line

    @property
    def rank(self) -> tuple[int, int]:
        return (int(self.severity) * 3 + int(self.confidence), int(self.confidence))


FileReader = Callable[[str], str | None]


@dataclass(frozen=True)
class AnalyzerContext:
    """What an analyzer receives: data only, never a client."""

    changeset: ChangeSet
    read_file: FileReader  # head-version text of a path, None if absent/unreadable
    syntax: SyntaxMap | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    mode: FilterMode = "added"
    read_base_file: FileReader | None = None
    # analyze only these changed files (another process takes the rest of a large change); None: all of them
    paths: frozenset[str] | None = None

    def changed_files(self) -> Iterator[ChangedFile]:
        """The changed files this run analyzes, in the change's order."""
        if self.paths is None:
            yield from self.changeset.files
        else:
            yield from (f for f in self.changeset.files if f.path in self.paths)


@runtime_checkable
class Analyzer(Protocol):
    """An analyzer; one may also set `cpu_bound = True` when it only computes (no subprocess, no network),
    so the pipeline runs it in turn with the others like it rather than in a thread of its own."""

    name: str  # kebab-case

    def analyze(self, ctx: AnalyzerContext) -> list[Finding]: ...


class LazyPattern:
    """A regular expression compiled on first use, for module-level patterns that a run may never need
    (another language's sources, token formats whose gate never opens): importing costs nothing.

    Offers the `re.Pattern` methods; after the first call they are the compiled pattern's own bound
    methods (set on the instance), so a hot loop pays no indirection.
    """

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        compiled = self._compiled
        if compiled is None:
            compiled = re.compile(self.pattern, self._flags)
            self._compiled = compiled
            for name in ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split"):
                setattr(self, name, getattr(compiled, name))
        return compiled

    @property
    def flags(self) -> int:
        return self.compiled.flags

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled.search(string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled.match(string, pos, endpos)

    def fullmatch(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.compiled.fullmatch(string, pos, endpos)

    def finditer(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(string, pos, endpos)

    def findall(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> list[Any]:
        return self.compiled.findall(string, pos, endpos)

    def sub(self, repl: str | Callable[[re.Match[str]], str], string: str, count: int = 0) -> str:
        return self.compiled.sub(repl, string, count)

    def subn(self, repl: str | Callable[[re.Match[str]], str], string: str, count: int = 0) -> tuple[str, int]:
        return self.compiled.subn(repl, string, count)

    def split(self, string: str, maxsplit: int = 0) -> list[str | Any]:
        return self.compiled.split(string, maxsplit)

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r})"


Pattern = re.Pattern[str] | LazyPattern  # what a module-level pattern may be: compiled now or on first use
