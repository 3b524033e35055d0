"""Language detection (extension, file name, shebang) and lazily loaded tree-sitter grammars."""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

from tree_sitter import Language, Node, Parser, Query, QueryCursor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grammar:
    name: str  # our language id, e.g. "python", "tsx"
    module: str  # the tree-sitter-<lang> wheel's module
    function: str = "language"  # the wheel's entry point returning the grammar pointer


GRAMMARS: dict[str, Grammar] = {
    g.name: g
    for g in (
        Grammar("python", "tree_sitter_python"),
        Grammar("javascript", "tree_sitter_javascript"),
        Grammar("typescript", "tree_sitter_typescript", "language_typescript"),
        Grammar("tsx", "tree_sitter_typescript", "language_tsx"),
        Grammar("go", "tree_sitter_go"),
        Grammar("java", "tree_sitter_java"),
        Grammar("rust", "tree_sitter_rust"),
        Grammar("ruby", "tree_sitter_ruby"),
        Grammar("csharp", "tree_sitter_c_sharp"),
        Grammar("php", "tree_sitter_php", "language_php"),
        Grammar("c", "tree_sitter_c"),
        Grammar("cpp", "tree_sitter_cpp"),
        Grammar("kotlin", "tree_sitter_kotlin"),
        Grammar("bash", "tree_sitter_bash"),
        Grammar("yaml", "tree_sitter_yaml"),
        Grammar("swift", "tree_sitter_swift"),
        Grammar("scala", "tree_sitter_scala"),
        # registered so that installing the wheel is enough; absent here, they degrade to line level
        Grammar("hcl", "tree_sitter_hcl"),
        Grammar("dockerfile", "tree_sitter_dockerfile"),
    )
}

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
    ".rs": "rust",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    ".cs": "csharp",
    ".php": "php",
    ".phtml": "php",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".sh": "bash",
    ".bash": "bash",
    ".zsh": "bash",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".tf": "hcl",
    ".hcl": "hcl",
    ".swift": "swift",
    ".scala": "scala",
    ".sc": "scala",
    ".bzl": "python",
    ".star": "python",
    ".ru": "ruby",
    ".es6": "javascript",
    ".c++": "cpp",
    ".h++": "cpp",
    ".ipp": "cpp",
    ".tfvars": "hcl",
}

FILENAMES: dict[str, str] = {
    "Rakefile": "ruby",
    "Gemfile": "ruby",
    "Guardfile": "ruby",
    "Vagrantfile": "ruby",
    "Dockerfile": "dockerfile",
    "Containerfile": "dockerfile",
    "Makefile": "make",
    "BUILD": "python",  # Bazel/Starlark reads as Python
    "BUILD.bazel": "python",
    "WORKSPACE": "python",
    "WORKSPACE.bazel": "python",
    "Tiltfile": "python",
    "Podfile": "ruby",
    "Fastfile": "ruby",
    "Brewfile": "ruby",
    "Capfile": "ruby",
    "Berksfile": "ruby",
    ".bash_profile": "bash",
    ".bash_aliases": "bash",
    "PKGBUILD": "bash",
    "APKBUILD": "bash",
    "SConstruct": "python",
    ".bashrc": "bash",
    ".zshrc": "bash",
    ".profile": "bash",
}

_CPP_HEADER = re.compile(
    r"^\s*(?:class\s+\w+\s*[:{]|namespace\s+\w+|template\s*<|#include\s*<(?:string|vector|memory|map)>)", re.M
)
_SHEBANG = re.compile(r"^#!\s*(?:\S*/)?(?:env\s+(?:-\S+\s+)*)?([A-Za-z0-9_.+-]+)")
INTERPRETERS: dict[str, str] = {
    "python": "python",
    "python2": "python",
    "python3": "python",
    "pypy": "python",
    "pypy3": "python",
    "node": "javascript",
    "nodejs": "javascript",
    "deno": "typescript",
    "ts-node": "typescript",
    "bash": "bash",
    "sh": "bash",
    "zsh": "bash",
    "dash": "bash",
    "ksh": "bash",
    "ruby": "ruby",
    "php": "php",
    "rbx": "ruby",
    "jruby": "ruby",
    "bun": "javascript",
    "tsx": "typescript",
    "kotlin": "kotlin",
    "scala": "scala",
    "swift": "swift",
}


def detect_language(path: str, text: str | None = None) -> str | None:
    """Language id for a path (and its first line, for shebangs); None when unknown."""
    name = os.path.basename(path)
    if name in FILENAMES:
        return FILENAMES[name]
    if name.startswith("Dockerfile.") or name.endswith(".dockerfile"):
        return "dockerfile"
    _, ext = os.path.splitext(name)
    lang = EXTENSIONS.get(ext.lower())
    if lang == "c" and ext == ".h" and text and _CPP_HEADER.search(text):
        return "cpp"  # .h is shared by C and C++: look for C++-only constructs
    if lang is not None:
        return lang
    if text and text.startswith("#!"):
        match = _SHEBANG.match(text.split("\n", 1)[0])
        if match:
            interp = re.sub(r"[0-9.]+$", "", match.group(1)) or match.group(1)
            return INTERPRETERS.get(match.group(1)) or INTERPRETERS.get(interp)
    return None


_lock = threading.Lock()
_languages: dict[str, Language | None] = {}


def get_language(lang: str) -> Language | None:
    """The tree-sitter Language for `lang`, imported on first use; None when its wheel is missing."""
    if lang in _languages:
        return _languages[lang]
    with _lock:
        if lang in _languages:
            return _languages[lang]
        grammar = GRAMMARS.get(lang)
        language: Language | None = None
        if grammar is not None:
            try:
                module = importlib.import_module(grammar.module)
                language = Language(getattr(module, grammar.function)())
            except (ImportError, AttributeError, ValueError) as exc:
                log.info("tree-sitter grammar for %s unavailable (%s); line-level analysis only", lang, exc)
        _languages[lang] = language
        return language


def has_grammar(lang: str | None) -> bool:
    return lang is not None and get_language(lang) is not None


def new_parser(lang: str) -> Parser | None:
    """A fresh Parser (parsers are not thread-safe; languages are)."""
    language = get_language(lang)
    return Parser(language) if language is not None else None


# ---- one walk per tree, shared by every analyzer ----------------------------------------------------

_kinds_lock = threading.Lock()
_index_kinds: dict[str, set[str]] = {}  # language -> node kinds any consumer has asked a NodeIndex for
_kinds_queries: dict[tuple[str, frozenset[str]], tuple[Query | None, tuple[str, ...]]] = {}


def want_kinds(lang: str, kinds: Iterable[str]) -> None:
    """Announce node kinds an analyzer will ask a NodeIndex of `lang` for (at import, by name only), so the
    first file's walk fetches them with the others instead of compiling a query per analyzer."""
    with _kinds_lock:
        _index_kinds.setdefault(lang, set()).update(kinds)


def _kinds_query(lang: str, kinds: frozenset[str]) -> tuple[Query | None, tuple[str, ...]]:
    """One query capturing every named node of these kinds, kind i under capture "k<i>" (compiled once per
    language and kind set), and the kinds it covers; kinds the grammar lacks (or supertypes, which would
    capture their subtypes) are left out."""
    key = (lang, kinds)
    found = _kinds_queries.get(key)
    if found is not None:
        return found
    language = get_language(lang)
    query: Query | None = None
    known: tuple[str, ...] = ()
    if language is not None:
        supertypes = {language.node_kind_for_id(i) for i in language.supertypes}
        known = tuple(sorted(k for k in kinds if k not in supertypes and language.id_for_node_kind(k, True)))
        if known:
            try:
                query = _alternation(language, known)
            except Exception:  # a kind the grammar lists but a query cannot name: keep those that compile
                known = tuple(k for k in known if _compiles(language, k))
                query = _alternation(language, known) if known else None
    with _kinds_lock:
        _kinds_queries[key] = (query, known)
    return query, known


def _alternation(language: Language, kinds: tuple[str, ...]) -> Query:
    return Query(language, "[" + " ".join(f"({k}) @k{i}" for i, k in enumerate(kinds)) + "]")


def _compiles(language: Language, kind: str) -> bool:
    try:
        Query(language, f"({kind}) @n")
    except Exception:
        return False
    return True


_START = attrgetter("start_byte")
_END = attrgetter("end_byte")


def _document_order(nodes: list[Node]) -> None:
    """Sort in place by start byte, the outer of two nodes starting together first (ties keep their order).

    Two stable sorts with C key functions: several times faster than one with a (start, -end) tuple key.
    """
    nodes.sort(key=_END, reverse=True)
    nodes.sort(key=_START)


class NodeIndex:
    """The named nodes of one tree, by kind, found in C by one query that every analyzer shares.

    Each analyzer asks for the kinds it reads (`by_kind`, `ordered`). The kinds asked for so far in any
    file of the language are fetched together, so from the second file on a tree is walked once in all,
    not once per analyzer. Lists are in document order; treat them as read-only. Safe to share between
    threads (a lost race costs a second walk, never a partial list).
    """

    def __init__(self, root: Node, lang: str) -> None:
        self.root = root
        self.lang = lang
        self._kinds: dict[str, list[Node]] = {}
        self._ordered: dict[frozenset[str], list[Node]] = {}

    def by_kind(self, kinds: Iterable[str]) -> dict[str, list[Node]]:
        """Nodes of each of these kinds (a kind without nodes, or unknown to the grammar: an empty list)."""
        kinds = tuple(kinds)
        index = self._kinds
        if any(k not in index for k in kinds):
            self._fetch(kinds)
        return {k: index[k] for k in kinds}

    def ordered(self, kinds: Iterable[str]) -> list[Node]:
        """Nodes of these kinds together, by (start byte, outermost first): a pre-order of the tree."""
        key = frozenset(kinds)
        found = self._ordered.get(key)
        if found is None:
            found = [n for nodes in self.by_kind(sorted(key)).values() for n in nodes]
            _document_order(found)
            self._ordered[key] = found
        return found

    def _fetch(self, kinds: tuple[str, ...]) -> None:
        with _kinds_lock:
            wanted = _index_kinds.setdefault(self.lang, set())
            wanted.update(kinds)
            missing = frozenset(k for k in wanted if k not in self._kinds)
        query, known = _kinds_query(self.lang, missing)
        fetched: dict[str, list[Node]] = {k: [] for k in missing}
        if query is not None:
            captures = QueryCursor(query).captures(self.root)
            for i, kind in enumerate(known):
                nodes = captures.get(f"k{i}")
                if nodes:
                    if len(nodes) > 1:
                        _document_order(nodes)  # the cursor's order is not document order
                    fetched[kind] = nodes
        for kind, nodes in fetched.items():
            self._kinds.setdefault(kind, nodes)  # a thread that got here first keeps its (identical) list
