"""Static validation of a suggested test module: it parses, imports only what exists, and checks something."""

from __future__ import annotations

import ast
import builtins
import sys
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

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
    problems += _check_names(tree)
    problems += _check_strategies(tree, strategy_aliases)
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
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef) and node.name.startswith("test"):
            problems.append(f"{node.name}: an async test (Hypothesis runs plain functions)")
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    for name in sorted({n for n in defined if defined.count(n) > 1}):
        problems.append(f"{name} is defined twice: the first definition never runs")
    if not tests:
        return [*problems, "no test function"]
    for test in tests:
        decorators = {_name(d) for d in test.decorator_list}
        if "given" not in decorators:
            problems.append(f"{test.name}: not a property test (@given missing)")
        else:
            problems += _check_given(test)
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


def _check_given(test: ast.FunctionDef) -> list[str]:
    """@given draws something, and exactly the test's parameters (else Hypothesis refuses to run it)."""
    given = next(d for d in test.decorator_list if _name(d) == "given")
    if not isinstance(given, ast.Call):
        return [f"{test.name}: @given without arguments"]
    params = [a.arg for a in [*test.args.posonlyargs, *test.args.args, *test.args.kwonlyargs]]
    if not given.args and not given.keywords:
        return [f"{test.name}: @given() draws nothing"]
    if any(k.arg is None for k in given.keywords) or any(isinstance(a, ast.Starred) for a in given.args):
        return []  # **kwargs / *args: not checked statically
    if given.args and given.keywords:
        return [f"{test.name}: @given mixes positional and keyword strategies"]
    if given.keywords:
        drawn = {k.arg for k in given.keywords if k.arg is not None}
        missing, extra = [p for p in params if p not in drawn], sorted(drawn - set(params))
        out = [f"{test.name}: parameter {p!r} has no strategy" for p in missing]
        return out + [f"{test.name}: @given draws {e!r}, which is no parameter" for e in extra]
    if len(given.args) != len(params):
        return [f"{test.name}: @given has {len(given.args)} strategies for {len(params)} parameters"]
    return []


_BUILTINS = frozenset(dir(builtins))


def _check_names(tree: ast.Module) -> list[str]:
    """Names that would raise NameError: used at module level before they are bound, or in a function body
    bound nowhere (module, function, builtins)."""
    problems: list[str] = []
    final = set(_BUILTINS) | {"__name__", "__file__", "__doc__"}
    for node in tree.body:
        final |= _bound_by(node)
    if "*" in final:
        return []  # a star import binds names that cannot be listed
    bound = set(_BUILTINS) | {"__name__", "__file__", "__doc__"}
    for node in tree.body:
        for name in _eager_loads(node) - bound:
            problems.append(f"name {name!r} is used before it is defined")
        bound |= _bound_by(node)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            local = _locals(node)
            for body in node.body:
                for n in ast.walk(body):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in final | local:
                        problems.append(f"{node.name}: name {n.id!r} is not defined")
    return sorted(set(problems))


def _bound_by(node: ast.stmt) -> set[str]:
    """Module names a top-level statement binds."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"} | (
            {"*"} if any(a.name == "*" for a in node.names) else set()
        )
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
            out.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(n.name)
        elif isinstance(n, ast.Import | ast.ImportFrom):
            out |= {(a.asname or a.name).split(".")[0] for a in n.names}
    return out


def _eager_loads(node: ast.stmt) -> set[str]:
    """Names a top-level statement reads when it runs (for a def: decorators and defaults, not the body)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        parts: list[ast.AST] = [*node.decorator_list, *node.args.defaults]
        parts += [d for d in node.args.kw_defaults if d is not None]
    elif isinstance(node, ast.ClassDef):
        parts = [*node.decorator_list, *node.bases, *node.keywords]
    else:
        parts = [node]
    out: set[str] = set()
    for part in parts:
        inner = _scoped_names(part)
        for n in ast.walk(part):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in inner:
                out.add(n.id)
    if "*" in _bound_by(node):
        return set()
    return out


def _scoped_names(root: ast.AST) -> set[str]:
    """Names bound inside nested scopes of an expression: lambda parameters, comprehension targets, defs."""
    out: set[str] = set()
    for n in ast.walk(root):
        if isinstance(n, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef):
            out |= _locals(n)
        elif isinstance(n, ast.comprehension):
            out |= {t.id for t in ast.walk(n.target) if isinstance(t, ast.Name)}
        elif isinstance(n, ast.ClassDef):
            out |= {t.id for t in ast.walk(n) if isinstance(t, ast.Name)}  # class bodies: not checked
    return out


def _locals(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Every name bound anywhere inside a function (parameters, assignments, imports, nested defs...)."""
    args = node.args
    out = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    out |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
            out.add(n.id)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n is not node:
            out.add(n.name)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.add(n.name)
        elif isinstance(n, ast.Import | ast.ImportFrom):
            out |= {(a.asname or a.name).split(".")[0] for a in n.names}
        elif isinstance(n, ast.Global | ast.Nonlocal):
            out |= set(n.names)
        elif isinstance(n, ast.MatchAs | ast.MatchStar) and n.name:
            out.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            out.add(n.rest)
    return out


def _check_strategies(tree: ast.Module, strategy_aliases: set[str]) -> list[str]:
    """Strategies Hypothesis would refuse when the test runs (st.integers(min_value=5, max_value=1),
    st.sampled_from([]) ...): each @given argument built from hypothesis.strategies and literals alone is
    built here and validated; one that needs the module under test is left to the run."""
    from hypothesis import strategies

    problems: list[str] = []
    for test in tree.body:
        if not isinstance(test, ast.FunctionDef):
            continue
        for decorator in test.decorator_list:
            if not isinstance(decorator, ast.Call) or _name(decorator) != "given":
                continue
            for value in [*decorator.args, *(k.value for k in decorator.keywords)]:
                if not _only_strategies(value, strategy_aliases):
                    continue
                namespace: dict[str, Any] = {"__builtins__": {}} | dict.fromkeys(strategy_aliases, strategies)
                try:
                    built = eval(compile(ast.Expression(value), "<strategy>", "eval"), namespace)
                    built.validate()
                except Exception as exc:  # Hypothesis's InvalidArgument, or a TypeError in the call
                    problems.append(f"{test.name}: invalid strategy {ast.unparse(value)[:80]}: {exc}"[:300])
    return problems


_SAFE_NODES = (
    ast.Call,
    ast.Attribute,
    ast.Name,
    ast.Constant,
    ast.keyword,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.BinOp,
    ast.BitOr,
    ast.UnaryOp,
    ast.USub,
    ast.Load,
    ast.Add,
    ast.Sub,
)  # no `*`: "x" * 10**12 would be built here


def _only_strategies(expr: ast.expr, strategy_aliases: set[str]) -> bool:
    """Built from the strategies module, literals and their methods only (no other name, no dunder)."""
    for node in ast.walk(expr):
        if not isinstance(node, _SAFE_NODES):
            return False
        if isinstance(node, ast.Name) and node.id not in strategy_aliases:
            return False
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return False
    return bool(strategy_aliases)
