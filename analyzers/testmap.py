"""Which test files cover a source file, by naming convention, and whether any of them mentions a function."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from analyzers.base import FileReader

_TEST_DIRS = ("tests", "test", "__tests__", "spec", "testing")
_TEST_NAME = re.compile(
    r"(^test_.*\.py$|.*_test\.py$|^conftest\.py$|.*_test\.go$|.*\.(test|spec)\.[cm]?[jt]sx?$"
    r"|.*(Test|Tests|IT|Spec)\.(java|kt)$|.*_spec\.rb$|.*_test\.rb$|.*Test\.php$)"
)
_SOURCE_EXTS = (".py", ".go", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".java")


def is_test_path(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    if any(p in _TEST_DIRS for p in parts[:-1]):
        return True
    return bool(_TEST_NAME.match(parts[-1]))


def candidate_test_paths(path: str) -> list[str]:
    """Where the tests of `path` live by the usual conventions, most specific first, without duplicates."""
    path = path.replace("\\", "/")
    directory, name = posixpath.split(path)
    stem, ext = posixpath.splitext(name)
    if ext not in _SOURCE_EXTS or is_test_path(path):
        return []
    out: list[str] = []
    if ext == ".py":
        names = [f"test_{stem}.py", f"{stem}_test.py"]
        if stem == "__init__":
            package = posixpath.basename(directory)
            names = [f"test_{package}.py"] if package else []
        out += _near(directory, names)
    elif ext == ".go":
        out.append(_join(directory, f"{stem}_test.go"))
    elif ext == ".java":
        names = [f"{stem}Test.java", f"{stem}Tests.java", f"{stem}IT.java"]
        if "/src/main/" in f"/{directory}/":
            head, _, tail = f"/{directory}/".partition("/src/main/")
            test_dir = f"{head}/src/test/{tail}".strip("/")
            out += [_join(test_dir, n) for n in names]
        out += [_join(directory, n) for n in names]
    else:
        base_ext = ext.lstrip(".")
        exts = [base_ext] + [e for e in ("ts", "tsx", "js", "jsx") if e != base_ext]
        names = [f"{stem}.{kind}.{e}" for e in exts for kind in ("test", "spec")]
        out += [_join(directory, n) for n in names]
        out += [_join(directory, "__tests__", n) for n in names + [f"{stem}.{e}" for e in exts]]
        out += _near(directory, names, dirs=("test", "tests", "__tests__"))
    return list(dict.fromkeys(out))


def _join(*parts: str) -> str:
    return posixpath.join(*[p for p in parts if p])


def _near(directory: str, names: list[str], dirs: tuple[str, ...] = ("tests", "test")) -> list[str]:
    """Same directory, a tests/ beside it, and tests/ trees mirroring any suffix of the source directory."""
    out = [_join(directory, n) for n in names]
    parts = [p for p in directory.split("/") if p]
    for test_dir in dirs:
        out += [_join(directory, test_dir, n) for n in names]
        for i in range(len(parts) + 1):
            mirrored = "/".join(parts[i:])
            out += [_join(test_dir, mirrored, n) for n in names]
    return out


class TestIndex:
    """Answers "does a test touch this function?" from conventional test paths and the changed test files."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, changed_paths: Iterable[str], read_file: FileReader, max_reads: int = 200) -> None:
        self._read = read_file
        self._texts: dict[str, str | None] = {}
        self._reads_left = max_reads
        self._changed_tests = [p for p in changed_paths if is_test_path(p)]

    def _text(self, path: str) -> str | None:
        if path not in self._texts:
            if self._reads_left <= 0:
                return None
            self._reads_left -= 1
            try:
                self._texts[path] = self._read(path)
            except Exception:
                self._texts[path] = None
        return self._texts[path]

    def test_files(self, path: str) -> list[str]:
        """Existing conventional test files of `path`."""
        return [p for p in candidate_test_paths(path) if self._text(p) is not None]

    def touches(self, path: str, name: str) -> bool:
        """True when a conventional test file of `path`, or any changed test file, mentions `name`."""
        needle = re.compile(re.escape(name) if len(name) > 2 else rf"\b{re.escape(name)}\b")
        for candidate in [*candidate_test_paths(path), *self._changed_tests]:
            text = self._text(candidate)
            if text is not None and needle.search(text):
                return True
        return False
