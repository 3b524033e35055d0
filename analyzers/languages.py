"""Language detection (extension, file name, shebang) and lazily loaded tree-sitter grammars."""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from dataclasses import dataclass

from tree_sitter import Language, Parser

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
