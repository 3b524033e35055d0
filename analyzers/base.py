"""The analyzer contract: Severity, Confidence, Finding (frozen), fingerprints and the Analyzer protocol."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from analyzers.diff import ChangeSet
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


@runtime_checkable
class Analyzer(Protocol):
    name: str  # kebab-case

    def analyze(self, ctx: AnalyzerContext) -> list[Finding]: ...
