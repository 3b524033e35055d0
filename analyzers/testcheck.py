"""Static validation of a suggested test module: it parses, imports only what exists, and checks something."""

from __future__ import annotations

import ast
import sys
import warnings
from collections.abc import Callable
from functools import cache

ModuleNames = Callable[[str], frozenset[str] | None]  # dotted repo module → its top-level names, None if absent
ALLOWED_THIRD_PARTY = frozenset({"hypothesis", "pytest"})
MAX_EXAMPLES_CAP = 1000


@cache
def _strategy_names() -> frozenset[str]:
    from hypothesis import strategies

    return frozenset(n for n in dir(strategies) if not n.startswith("_"))


def check_test_module(content: str, *, module_names: ModuleNames) -> list[str]:
    """Problems that make a suggested module unfit to suggest; an empty list means valid."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(content)
            compile(tree, "<suggested test>", "exec")
    except (SyntaxError, ValueError) as exc:
        return [f"does not parse: {exc}"]
    problems: list[str] = []
    repo_aliases: dict[str, str] = {}  # local name → repo module
    strategy_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                problem = _check_import(alias.name, module_names)
                if problem:
                    problems.append(problem)
                elif module_names(alias.name) is not None:
                    repo_aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(f"relative import from {node.module!r}")
                continue
            source = node.module or ""
            problem = _check_import(source, module_names)
            if problem:
                problems.append(problem)
                continue
            names = module_names(source)
            for alias in node.names:
                if source == "hypothesis" and alias.name == "strategies":
                    strategy_aliases.add(alias.asname or alias.name)
                if names is not None and alias.name not in names and module_names(f"{source}.{alias.name}") is None:
                    problems.append(f"{source} has no name {alias.name!r}")
    problems += _check_references(tree, repo_aliases, strategy_aliases, module_names)
    problems += _check_tests(tree, set(repo_aliases))
    return problems


def _check_import(dotted: str, module_names: ModuleNames) -> str | None:
    top = dotted.split(".", 1)[0]
    if top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY:
        return None
    if module_names(dotted) is not None:
        return None
    return (
        f"imports {dotted!r}, which is neither the standard library, hypothesis/pytest nor a module of the repository"
    )


def _check_references(
    tree: ast.Module, repo_aliases: dict[str, str], strategy_aliases: set[str], module_names: ModuleNames
) -> list[str]:
    problems: list[str] = []
    known = _strategy_names()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not isinstance(node.value, ast.Name):
            continue
        base = node.value.id
        if base in repo_aliases:
            names = module_names(repo_aliases[base]) or frozenset()
            if node.attr not in names:
                problems.append(f"{repo_aliases[base]} has no name {node.attr!r}")
        elif base in strategy_aliases:
            if node.attr not in known:
                problems.append(f"hypothesis.strategies has no {node.attr!r}")
            elif node.attr == "nothing":
                problems.append("placeholder strategy st.nothing()")
    return sorted(set(problems))


def _check_tests(tree: ast.Module, repo_aliases: set[str]) -> list[str]:
    problems: list[str] = []
    tests = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    if not tests:
        return ["no test function"]
    for test in tests:
        decorators = {_name(d) for d in test.decorator_list}
        if "given" not in decorators:
            problems.append(f"{test.name}: not a property test (@given missing)")
        examples = _max_examples(test)
        if examples is None or examples > MAX_EXAMPLES_CAP:
            problems.append(f"{test.name}: no bounded settings(max_examples=...)")
        if not _asserts(test) and not _checked_no_crash(test, repo_aliases):
            problems.append(f"{test.name}: asserts nothing")
    return problems


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _max_examples(test: ast.FunctionDef) -> int | None:
    for d in test.decorator_list:
        if isinstance(d, ast.Call) and _name(d) == "settings":
            for kw in d.keywords:
                if kw.arg == "max_examples" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int):
                    return kw.value.value
    return None


def _asserts(test: ast.FunctionDef) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Assert):
            if isinstance(node.test, ast.Constant) and node.test.value:
                continue  # `assert True` checks nothing
            return True
        if isinstance(node, ast.Call) and _name(node) == "raises":
            return True
    return False


def _checked_no_crash(test: ast.FunctionDef, repo_aliases: set[str]) -> bool:
    """A no-crash property: named so, and it calls into the module under test."""
    if "no_crash" not in test.name:
        return False
    for node in ast.walk(test):
        if isinstance(node, ast.Call):
            root = node.func
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and (root.id in repo_aliases or root.id == "obj"):
                return True
    return False
