"""Signature model of a Python module read with `ast` (never imported) and annotation → Hypothesis strategy text."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

ParamKind = Literal["positional_only", "positional_or_keyword", "var_positional", "keyword_only", "var_keyword"]
# "char" and "texts" occur only as usages (`ord(p)`: a single character; `for x in p: x.split("=")`: a list of
# text); their strategies have kinds "str" and "list"
StrategyKind = Literal[
    "int",
    "float",
    "str",
    "bytes",
    "bool",
    "none",
    "list",
    "set",
    "dict",
    "tuple",
    "enum",
    "record",
    "number",
    "any",
    "char",
    "texts",
]

# The alias under which a generated test imports the module under test; strategy text refers to it.
MODULE_ALIAS = "mod"
MAX_DEPTH = 3

FLOATS = "st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)"
UNIT_FLOATS = "st.floats(min_value=0.0, max_value=1.0, allow_nan=False)"


@dataclass(frozen=True)
class Param:
    name: str
    annotation: ast.expr | None
    default: ast.expr | None
    kind: ParamKind

    @property
    def required(self) -> bool:
        return self.default is None and self.kind in ("positional_only", "positional_or_keyword", "keyword_only")


@dataclass(frozen=True)
class FunctionInfo:
    """What a test writer may know about one function from its source text alone."""

    name: str
    qualname: str
    class_name: str | None
    method_kind: Literal["function", "method", "staticmethod", "classmethod"]
    params: tuple[Param, ...]  # without self/cls
    returns: ast.expr | None
    decorators: tuple[str, ...]
    docstring: str
    start_line: int
    end_line: int
    is_async: bool
    is_generator: bool
    raises: frozenset[str]  # exception names raised by the body (and same-module helpers it calls)
    complexity: int  # 1 + branches
    source: str  # the function's text from its `def` line, dedented, decorators excluded
    usage: Mapping[str, StrategyKind] = field(default_factory=dict)  # parameter → "bytes"/"str" from its use
    calls: frozenset[str] = frozenset()  # names of the functions its body calls by bare name
    min_sizes: Mapping[str, int] = field(default_factory=dict)  # parameter → length its unchecked indexing needs
    literals: Mapping[str, tuple[str | bytes, ...]] = field(default_factory=dict)  # parameter → literals it is
    # compared with


@dataclass(frozen=True)
class RecordInfo:
    """A dataclass, NamedTuple or plain class whose constructor st.builds can fill."""

    name: str
    fields: tuple[Param, ...]


@dataclass(frozen=True)
class ModuleInfo:
    functions: Mapping[str, FunctionInfo]  # by qualname
    enums: frozenset[str]
    records: Mapping[str, RecordInfo]
    bound_names: frozenset[str]  # top-level names (defs, classes, imports, assignments)
    imports: frozenset[str]  # top-level imported module names (for hints such as math/statistics)
    classes: frozenset[str] = frozenset()  # classes defined in the module


@dataclass(frozen=True)
class Strategy:
    code: str
    kind: StrategyKind
    exact: bool  # derived from an annotation or a default value, not a name guess
    element: Strategy | None = field(default=None, compare=False)  # element strategy of a collection


# ---- the module model ---------------------------------------------------------------------------


def parse_module(text: str) -> ModuleInfo:
    """The signature model of a module's source text (SyntaxError propagates)."""
    tree = ast.parse(text)
    functions: dict[str, FunctionInfo] = {}
    enums: set[str] = set()
    records: dict[str, RecordInfo] = {}
    bound: set[str] = set()
    imports: set[str] = set()
    lines = text.splitlines()
    raises_by_name: dict[str, set[str]] = {}
    calls_by_name: dict[str, set[str]] = {}
    deleted: set[str] = set()
    nodes: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in _top_level(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name in functions:
                continue  # a conditional second definition: keep the first
            bound.add(node.name)
            functions[node.name] = _function(node, None, lines)
            nodes[node.name] = node
            raises_by_name[node.name], calls_by_name[node.name] = _raises_and_calls(node)
        elif isinstance(node, ast.ClassDef):
            bound.add(node.name)
            bases = {_dotted(b).rsplit(".", 1)[-1] for b in node.bases}
            if bases & {"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag"}:
                enums.add(node.name)
            record = _record(node, bases)
            if record is not None:
                records[node.name] = record
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    info = _function(item, node.name, lines)
                    functions[info.qualname] = info
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
                if isinstance(node, ast.Import):
                    imports.add(alias.name.split(".")[0])
            if isinstance(node, ast.ImportFrom) and node.module:
                imports.add(node.module.split(".")[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Delete):  # `del re` after the defs that needed it: not a name of the module
            deleted.update(t.id for t in node.targets if isinstance(t, ast.Name))
    bound -= deleted
    _docstrings_assigned_later(tree, functions)
    _usage_through_callees(functions, nodes)
    # a function may raise what the same-module helpers it calls raise, and what the methods of the
    # same-module classes it instantiates raise (one level)
    for info in functions.values():
        if info.class_name is not None:
            raises_by_name.setdefault(info.class_name, set()).update(info.raises)
    for name, info in list(functions.items()):
        if info.class_name is None:
            extra = set().union(*(raises_by_name.get(c, set()) for c in calls_by_name.get(name, set())))
            if extra - info.raises:
                functions[name] = _replace_raises(info, info.raises | extra)
    classes = frozenset(n.name for n in _top_level(tree.body) if isinstance(n, ast.ClassDef))
    return ModuleInfo(functions, frozenset(enums), records, frozenset(bound), frozenset(imports), classes)


def _docstrings_assigned_later(tree: ast.Module, functions: dict[str, FunctionInfo]) -> None:
    """`f.__doc__ = TEMPLATE.format(...)` (as in base64): use the template as the docstring."""
    from dataclasses import replace

    strings: dict[str, str] = {}
    for node in _top_level(tree.body):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "format":
            value = value.func.value
        text = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
        if text is None and isinstance(value, ast.Name):
            text = strings.get(value.id)
        if text is None:
            continue
        if isinstance(target, ast.Name):
            strings[target.id] = text
        elif isinstance(target, ast.Attribute) and target.attr == "__doc__" and isinstance(target.value, ast.Name):
            info = functions.get(target.value.id)
            if info is not None and not info.docstring:
                functions[target.value.id] = replace(info, docstring=text)


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module statements, looking into top-level `if`/`try` blocks (platform and fallback definitions)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            out += _top_level(node.body) + _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            out += _top_level(node.body)
            for handler in node.handlers:
                out += _top_level(handler.body)
            out += _top_level(node.orelse)
        else:
            out.append(node)
    return out


def _usage_through_callees(
    functions: dict[str, FunctionInfo], nodes: Mapping[str, ast.FunctionDef | ast.AsyncFunctionDef]
) -> None:
    """A parameter handed on to a same-module function is used as that function uses it (one level)."""
    from dataclasses import replace

    for name, node in nodes.items():
        info = functions[name]
        params = {p.name for p in info.params}
        found: dict[str, StrategyKind] = {}
        for call in _own_nodes(node):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            callee = functions.get(call.func.id)
            if callee is None or callee.class_name is not None or callee.qualname == name:
                continue
            positional = [p for p in callee.params if p.kind in ("positional_only", "positional_or_keyword")]
            pairs = list(zip(call.args, positional, strict=False))
            pairs += [(kw.value, p) for kw in call.keywords for p in callee.params if p.name == kw.arg]
            for arg, param in pairs:
                kind = callee.usage.get(param.name)
                if isinstance(arg, ast.Name) and arg.id in params and kind is not None:
                    found.setdefault(arg.id, kind)
        extra = {k: v for k, v in found.items() if k not in info.usage}
        if extra:
            functions[name] = replace(info, usage={**extra, **info.usage})


def _replace_raises(info: FunctionInfo, raises: frozenset[str] | set[str]) -> FunctionInfo:
    from dataclasses import replace

    return replace(info, raises=frozenset(raises))


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    if isinstance(node, ast.Subscript):
        return _dotted(node.value)
    return ""


def _params(args: ast.arguments) -> list[Param]:
    out: list[Param] = []
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind: ParamKind = "positional_only" if i < len(args.posonlyargs) else "positional_or_keyword"
        out.append(Param(arg.arg, arg.annotation, default, kind))
    if args.vararg is not None:
        out.append(Param(args.vararg.arg, args.vararg.annotation, None, "var_positional"))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out.append(Param(arg.arg, arg.annotation, kw_default, "keyword_only"))
    if args.kwarg is not None:
        out.append(Param(args.kwarg.arg, args.kwarg.annotation, None, "var_keyword"))
    return out


_BRANCHES = (ast.If, ast.For, ast.While, ast.Try, ast.IfExp, ast.BoolOp, ast.comprehension, ast.Match, ast.With)


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, cls: str | None, lines: list[str]) -> FunctionInfo:
    decorators = tuple(_dotted(d) for d in node.decorator_list)
    params = _params(node.args)
    method_kind: Literal["function", "method", "staticmethod", "classmethod"] = "function"
    if cls is not None:
        if "staticmethod" in decorators:
            method_kind = "staticmethod"
        else:
            method_kind = "classmethod" if "classmethod" in decorators else "method"
            params = params[1:] if params and params[0].kind != "var_positional" else params
    own = list(_own_nodes(node))
    is_generator = any(isinstance(n, ast.Yield | ast.YieldFrom) for n in own)
    raises, calls = _raises_and_calls(node)
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    end = node.end_lineno or node.lineno
    source = _dedent("\n".join(lines[node.lineno - 1 : end]))  # from the def line: decorators dropped
    return FunctionInfo(
        name=node.name,
        qualname=f"{cls}.{node.name}" if cls else node.name,
        class_name=cls,
        method_kind=method_kind,
        params=tuple(params),
        returns=node.returns,
        decorators=decorators,
        docstring=ast.get_docstring(node) or "",
        start_line=start,
        end_line=end,
        is_async=isinstance(node, ast.AsyncFunctionDef),
        is_generator=is_generator,
        raises=frozenset(raises),
        complexity=1 + sum(isinstance(n, _BRANCHES) for n in own),
        source=source,
        usage=_usage({p.name for p in params}, own),
        calls=frozenset(calls),
        min_sizes=_min_sizes({p.name for p in params}, own),
        literals=_text_literals({p.name for p in params}, own),
    )


_BYTES_CALLS = re.compile(r"^(BytesIO|memoryview|bytearray|b2a_\w+|a2b_\w+|hexlify|unhexlify|crc32|adler32)$")
_BYTES_MODULES = frozenset({"binascii", "zlib", "struct", "_bz2", "_lzma", "bz2", "lzma", "gzip", "base64", "quopri"})
# re functions and the position of the string they search: it has the type of the (literal) pattern
_RE_SUBJECT = {"match": 1, "search": 1, "fullmatch": 1, "split": 1, "findall": 1, "finditer": 1, "sub": 2, "subn": 2}


# str/bytes methods whose first argument, when a literal, says which of the two the receiver is
_TEXT_METHODS = frozenset(
    "startswith endswith split rsplit find rfind index rindex count replace strip lstrip rstrip partition "
    "rpartition removeprefix removesuffix".split()
)


def _text_subject(
    expr: ast.expr, root: Callable[[ast.expr], str | None], literal: ast.expr | None = None
) -> str | None:
    """The parameter behind p, p[a:b] or p.<text method>(...), else None. An item p[i] is text's only when
    compared with one character: `args[0] == "--"` or `args[0].startswith("-")` says args is a list."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        if expr.func.attr not in _TEXT_METHODS | {"lower", "upper", "casefold", "title"}:
            return None
        expr, literal = expr.func.value, None
    if isinstance(expr, ast.Subscript) and not isinstance(expr.slice, ast.Slice):
        single = (
            isinstance(literal, ast.Constant) and isinstance(literal.value, str | bytes) and len(literal.value) == 1
        )
        if not single or not isinstance(expr.value, ast.Name):
            return None
    return root(expr) if isinstance(expr, ast.Name | ast.Subscript) else None


MAX_LITERALS = 12


def _text_literals(params: set[str], nodes: list[ast.AST]) -> dict[str, tuple[str | bytes, ...]]:
    """The text literals the body compares a parameter (or a piece of it) with: `p[:3] != "150"`,
    `p.startswith("<")`. Inputs built from them reach the code past those checks (see strategy_for)."""

    def root(expr: ast.expr) -> str | None:
        while isinstance(expr, ast.Subscript):
            expr = expr.value
        return expr.id if isinstance(expr, ast.Name) and expr.id in params else None

    found: dict[str, set[str | bytes]] = {}
    for node in nodes:
        pairs: list[tuple[ast.expr, ast.expr]] = []
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq | ast.NotEq):
            pairs = [(node.left, node.comparators[0]), (node.comparators[0], node.left)]
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn):
            if isinstance(node.comparators[0], ast.Tuple | ast.List | ast.Set):  # p[0] in ("a", "b")
                pairs = [(node.left, element) for element in node.comparators[0].elts]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if node.func.attr in _TEXT_METHODS:
                literals = node.args[0].elts if isinstance(node.args[0], ast.Tuple) else [node.args[0]]
                pairs = [(node.func.value, literal) for literal in literals]
        for subject, other in pairs:
            name = _text_subject(subject, root, other)
            if name is not None and isinstance(other, ast.Constant) and isinstance(other.value, str | bytes):
                if type(other.value) in (str, bytes) and 0 < len(other.value) <= 20:
                    found.setdefault(name, set()).add(other.value)
    return {name: tuple(sorted(values, key=repr))[:MAX_LITERALS] for name, values in found.items()}


def _usage(params: set[str], nodes: list[ast.AST]) -> dict[str, StrategyKind]:
    """What the body does with an unannotated parameter says its type: `p.decode()` or `BytesIO(p)` → bytes."""
    out: dict[str, StrategyKind] = {}

    def root(expr: ast.expr) -> str | None:
        while isinstance(expr, ast.Subscript):
            expr = expr.value
        return expr.id if isinstance(expr, ast.Name) and expr.id in params else None

    # `for item in p:` with item used as text: p is a list of text
    loops = [n for n in nodes if isinstance(n, ast.For)]
    for loop in loops:
        target, iterated = loop.target, loop.iter
        if not isinstance(target, ast.Name) or not isinstance(iterated, ast.Name):
            continue
        if iterated.id in params and target.id not in params:
            inner = _usage({target.id}, [n for statement in loop.body for n in ast.walk(statement)])
            if inner.get(target.id) == "str":
                out.setdefault(iterated.id, "texts")
    # ord(p) as an index (`TABLE[ord(c)]`): the table's size bounds the characters, unknown here
    table_indexes = {id(n.slice) for n in nodes if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Call)}
    for node in nodes:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.LShift | ast.RShift | ast.BitAnd | ast.BitXor):
            # `p >> 8`, `p & 0xFF`: p is an int
            for side, other in ((node.left, node.right), (node.right, node.left)):
                if isinstance(side, ast.Name) and side.id in params and _is_int_constant(other):
                    out.setdefault(side.id, "int")
            continue
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq | ast.NotEq):
            # `p == "x"`, `p[:3] != "150"`, `p.strip() == "<>"`: p is text (bytes for a bytes literal)
            for side, other in ((node.left, node.comparators[0]), (node.comparators[0], node.left)):
                name = _text_subject(side, root, other)
                if name is not None and isinstance(other, ast.Constant) and type(other.value) in (str, bytes):
                    out.setdefault(name, "str" if isinstance(other.value, str) else "bytes")
            continue
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _TEXT_METHODS and node.args:
            name = _text_subject(func.value, root)
            literal = node.args[0]
            if name is not None and isinstance(literal, ast.Constant) and type(literal.value) in (str, bytes):
                out.setdefault(name, "str" if isinstance(literal.value, str) else "bytes")
                continue
        if isinstance(func, ast.Attribute) and func.attr in ("to_bytes", "bit_length", "bit_count"):
            name = root(func.value) if isinstance(func.value, ast.Name) else None
            if name is not None:
                out.setdefault(name, "int")
            continue
        if isinstance(func, ast.Attribute) and func.attr in ("decode", "encode"):
            name = root(func.value)
            if name is not None:
                out.setdefault(name, "bytes" if func.attr == "decode" else "str")
            continue
        callee = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        if callee == "ord" and owner == "" and len(node.args) == 1:
            name = root(node.args[0]) if isinstance(node.args[0], ast.Name) else None
            if name is not None and id(node) not in table_indexes:
                out.setdefault(name, "char")
            continue
        if owner == "re" and callee in _RE_SUBJECT and len(node.args) > _RE_SUBJECT[callee]:
            pattern, subject = node.args[0], node.args[_RE_SUBJECT[callee]]
            name = root(subject) if isinstance(subject, ast.Name) else None
            if name is not None and isinstance(pattern, ast.Constant) and isinstance(pattern.value, str | bytes):
                out.setdefault(name, "str" if isinstance(pattern.value, str) else "bytes")
            continue
        if _BYTES_CALLS.match(callee) or owner in _BYTES_MODULES:
            for arg in node.args[:1]:
                name = root(arg)
                if name is not None:
                    out.setdefault(name, "bytes")
    return out


def _own_nodes(root: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's own body, not those of functions, lambdas or classes nested in it."""
    stack = list(ast.iter_child_nodes(root))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))


def _raises_and_calls(node: ast.AST) -> tuple[set[str], set[str]]:
    raises: set[str] = set()
    calls: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Raise) and n.exc is not None:
            name = _dotted(n.exc)
            if name and not _reraise_of_handler_name(n, node):
                raises.add(name)
        elif isinstance(n, ast.ExceptHandler):
            raises |= _reraised(n)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            calls.add(n.func.id)
    return raises, calls


def _handler_types(handler: ast.ExceptHandler) -> set[str]:
    if handler.type is None:
        return set()
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {name for t in types if (name := _dotted(t))}


def _reraised(handler: ast.ExceptHandler) -> set[str]:
    """What an `except X:` block raises again: X, when it has a bare `raise` or `raise <the caught name>`."""
    stack: list[ast.AST] = list(handler.body)
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Raise) and (
            n.exc is None or (isinstance(n.exc, ast.Name) and handler.name and n.exc.id == handler.name)
        ):
            return _handler_types(handler)
        if not isinstance(n, ast.ExceptHandler | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(n))
    return set()


def _reraise_of_handler_name(raise_node: ast.Raise, root: ast.AST) -> bool:
    """`raise exc` where exc is the name an enclosing handler bound: its types count, not the variable."""
    if not isinstance(raise_node.exc, ast.Name):
        return False
    return any(
        isinstance(h, ast.ExceptHandler) and h.name == raise_node.exc.id and raise_node in list(ast.walk(h))
        for h in ast.walk(root)
    )


def _min_sizes(params: set[str], nodes: list[ast.AST]) -> dict[str, int]:
    """Parameters indexed at a constant position with no length or emptiness check anywhere in the body:
    `s[0]` with no `len(s)`, `if s`, `not s` or IndexError handler says the function requires len(s) > 0."""
    if any(isinstance(n, ast.ExceptHandler) and _catches_index_error(n) for n in nodes):
        return {}
    checked: set[str] = set()
    needed: dict[str, int] = {}
    for n in nodes:
        tests: list[ast.expr] = []
        if isinstance(n, ast.If | ast.While | ast.IfExp | ast.Assert):
            tests.append(n.test)
        elif isinstance(n, ast.BoolOp):
            tests += n.values
        elif isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
            tests.append(n.operand)
        elif isinstance(n, ast.Compare):
            tests += [n.left, *n.comparators]
        elif isinstance(n, ast.comprehension):
            tests += n.ifs
        for test in tests:  # `if s`, `not s`, `s == ""`, `len(s) > 3`, `if len(s)`: a check of the length
            checked.update(_length_checked(test))
        if (
            isinstance(n, ast.Subscript)
            and isinstance(n.ctx, ast.Load)
            and isinstance(n.value, ast.Name)
            and n.value.id in params
            and isinstance(n.slice, ast.Constant | ast.UnaryOp)
        ):
            index = ast.literal_eval(n.slice) if _is_int_literal(n.slice) else None
            if isinstance(index, int):
                needed[n.value.id] = max(needed.get(n.value.id, 0), index + 1 if index >= 0 else -index)
    return {name: size for name, size in needed.items() if name not in checked}


def _length_checked(test: ast.expr) -> set[str]:
    if isinstance(test, ast.Name):
        return {test.id}
    out: set[str] = set()
    for n in ast.walk(test):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("len", "bool") and n.args:
            if isinstance(n.args[0], ast.Name):
                out.add(n.args[0].id)
    return out


def _is_int_constant(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _is_int_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def _catches_index_error(handler: ast.ExceptHandler) -> bool:
    return handler.type is None or bool(_handler_types(handler) & {"IndexError", "LookupError", "Exception"})


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


def _record(node: ast.ClassDef, bases: set[str]) -> RecordInfo | None:
    decorators = {_dotted(d).rsplit(".", 1)[-1] for d in node.decorator_list}
    if "dataclass" in decorators or "NamedTuple" in bases:
        fields: list[Param] = []
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                if _dotted(item.annotation).rsplit(".", 1)[-1] == "ClassVar":
                    continue
                default = item.value
                if isinstance(default, ast.Call) and _dotted(default.func).endswith("field"):
                    has = any(k.arg in ("default", "default_factory") for k in default.keywords)
                    default = default if has else None
                fields.append(Param(item.target.id, item.annotation, default, "positional_or_keyword"))
        return RecordInfo(node.name, tuple(fields))
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            params = _params(item.args)[1:]
            if all(p.annotation is not None or not p.required for p in params):
                return RecordInfo(
                    node.name, tuple(p for p in params if p.kind not in ("var_positional", "var_keyword"))
                )
            return None
    return None


# ---- annotation → strategy ----------------------------------------------------------------------

_SIMPLE: dict[str, tuple[str, StrategyKind]] = {
    "int": ("st.integers(min_value=-100_000, max_value=100_000)", "int"),
    "float": (FLOATS, "float"),
    "str": ("st.text()", "str"),
    "bytes": ("st.binary()", "bytes"),
    "bytearray": ("st.binary().map(bytearray)", "bytes"),
    "bool": ("st.booleans()", "bool"),
    "complex": ("st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=1e9)", "number"),
    "None": ("st.none()", "none"),
    "NoneType": ("st.none()", "none"),
    "Decimal": ("st.decimals(allow_nan=False, allow_infinity=False)", "number"),
    "Fraction": ("st.fractions()", "number"),
    "date": ("st.dates()", "any"),
    "datetime": ("st.datetimes()", "any"),
    "time": ("st.times()", "any"),
    "timedelta": ("st.timedeltas()", "any"),
    "UUID": ("st.uuids()", "any"),
    "list": ("st.lists(st.integers())", "list"),
    "List": ("st.lists(st.integers())", "list"),
    "dict": ("st.dictionaries(st.text(), st.integers())", "dict"),
    "Dict": ("st.dictionaries(st.text(), st.integers())", "dict"),
    "set": ("st.sets(st.integers())", "set"),
    "Set": ("st.sets(st.integers())", "set"),
    "frozenset": ("st.frozensets(st.integers())", "set"),
    "tuple": ("st.lists(st.integers()).map(tuple)", "tuple"),
    "Any": ("st.none() | st.booleans() | st.integers() | st.text()", "any"),
    "object": ("st.none() | st.booleans() | st.integers() | st.text()", "any"),
}
_SEQUENCES = {"list", "List", "Sequence", "MutableSequence", "Iterable", "Collection", "Reversible"}
_SETS = {"set", "Set", "frozenset", "FrozenSet", "AbstractSet", "MutableSet"}
_MAPPINGS = {"dict", "Dict", "Mapping", "MutableMapping", "OrderedDict", "defaultdict"}
_ITERATORS = {"Iterator", "Generator"}


def strategy_for(
    annotation: ast.expr | None,
    *,
    name: str = "",
    default: ast.expr | None = None,
    module: ModuleInfo | None = None,
    hint: str = "",
    depth: int = 0,
    usage: StrategyKind | None = None,
    min_size: int = 0,
    literals: tuple[str | bytes, ...] = (),
) -> Strategy | None:
    """Strategy source text for a parameter, from its annotation, else its default, else its name; None if unknown.

    `hint` is the function's name and docstring, used only by name-based guesses. `min_size` is a length
    the function needs (see FunctionInfo.min_sizes); it is applied to plain text, bytes and list strategies.
    `literals` (FunctionInfo.literals) mix into plain text or bytes: strings made of them and a few random
    characters, so that inputs get past the function's checks of its input's content.
    """
    found = _strategy_for(annotation, name, default, module, hint, depth, usage)
    if found is not None and found.code == "st.text()" and name.lower() in _CODEC_WORDS:
        found = replace_code(found, _CODEC_WORDS[name.lower()])  # any text is no codec name nor error handler
    if found is not None and min_size > 0:
        return _at_least(found, min_size)
    if found is not None and literals:
        return _with_literals(found, literals)
    return found


def _with_literals(strategy: Strategy, literals: tuple[str | bytes, ...]) -> Strategy:
    """st.text() | pieces of the literals and random characters, joined (st.binary() likewise)."""
    words: list[str] | list[bytes]
    if strategy.code == "st.text()":
        words = [w for w in literals if isinstance(w, str)]
        piece, join = "st.text(max_size=3)", '"".join'
    elif strategy.code == "st.binary()":
        words = [w for w in literals if isinstance(w, bytes)]
        piece, join = "st.binary(max_size=3)", 'b"".join'
    else:
        return strategy
    if not words:
        return strategy
    mixed = f"st.lists(st.sampled_from({words!r}) | {piece}, max_size=6).map({join})"
    return replace_code(strategy, f"{strategy.code} | {mixed}")


_CODECS = 'st.sampled_from(["utf-8", "latin-1", "ascii"])'
_CODEC_WORDS = {
    "encoding": _CODECS,
    "charset": _CODECS,
    "codec": _CODECS,
    "errors": 'st.sampled_from(["strict", "replace", "ignore"])',
}


_SIZED = re.compile(r"^st\.(text|binary|lists)\((.*)\)$")


def _at_least(strategy: Strategy, size: int) -> Strategy:
    """The same strategy with min_size=size, for the plain st.text()/st.binary()/st.lists(...) forms."""
    match = _SIZED.match(strategy.code)
    if match is None or "min_size" in match.group(2) or ")." in strategy.code:
        return strategy
    args = [a for a in [match.group(2), f"min_size={size}"] if a]
    return replace_code(strategy, f"st.{match.group(1)}({', '.join(args)})")


def replace_code(strategy: Strategy, code: str) -> Strategy:
    return Strategy(code, strategy.kind, strategy.exact, strategy.element)


def _strategy_for(
    annotation: ast.expr | None,
    name: str,
    default: ast.expr | None,
    module: ModuleInfo | None,
    hint: str,
    depth: int,
    usage: StrategyKind | None,
) -> Strategy | None:
    if annotation is not None:
        found = _from_annotation(annotation, module, depth)
        if found is not None:
            return found
        return None
    if default is not None:
        found = _from_default(default, name)
        if found is not None:
            return found
    if usage == "bytes":
        return Strategy("st.binary()", "bytes", False)
    if usage == "str":
        return Strategy("st.text()", "str", False)
    if usage == "char":
        return Strategy("st.characters()", "str", False)
    if usage == "int":
        return Strategy("st.integers()", "int", False)
    if usage == "texts":
        return Strategy("st.lists(st.text(), max_size=20)", "list", False, Strategy("st.text()", "str", False))
    return guess_from_name(name, hint, module)


def _from_annotation(node: ast.expr, module: ModuleInfo | None, depth: int) -> Strategy | None:
    if depth > MAX_DEPTH:
        return None
    if isinstance(node, ast.Constant):
        if node.value is None:
            return Strategy("st.none()", "none", True)
        if isinstance(node.value, str):  # a string (forward) annotation
            try:
                inner = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None
            return _from_annotation(inner, module, depth)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([node.left, node.right], module, depth)
    if isinstance(node, ast.Name | ast.Attribute):
        full = _dotted(node)
        last = full.rsplit(".", 1)[-1]
        if module is not None and "." not in full:
            if last in module.enums:
                return Strategy(f"st.sampled_from({MODULE_ALIAS}.{last})", "enum", True)
            if last in module.records:
                return _builds(module.records[last], module, depth)
        if last in _SIMPLE:
            code, simple_kind = _SIMPLE[last]
            return Strategy(code, simple_kind, True)
        if module is not None and "." not in full and full in module.bound_names and full not in module.classes:
            return Strategy(f"st.from_type({MODULE_ALIAS}.{full})", "any", False)
        return None
    if isinstance(node, ast.Subscript):
        base = _dotted(node.value).rsplit(".", 1)[-1]
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "Optional" and len(args) == 1:
            return _union([args[0], ast.Constant(None)], module, depth)
        if base == "Union":
            return _union(args, module, depth)
        if base == "Annotated" and args:
            return _from_annotation(args[0], module, depth)
        if base == "Literal":
            values = [a for a in args if isinstance(a, ast.Constant)]
            if len(values) != len(args) or not values:
                return None
            kinds = {type(v.value).__name__ for v in values}
            literal_kind: StrategyKind = _kind_of(kinds.pop()) if len(kinds) == 1 else "any"
            return Strategy(f"st.sampled_from([{', '.join(repr(v.value) for v in values)}])", literal_kind, True)
        if base in _SEQUENCES | _SETS | _ITERATORS and len(args) == 1:
            elem = _from_annotation(args[0], module, depth + 1)
            if elem is None:
                return None
            if base in _SETS:
                maker = "st.frozensets" if base.lower().startswith("frozen") else "st.sets"
                return Strategy(f"{maker}({elem.code}, max_size=20)", "set", elem.exact, elem)
            if base in _ITERATORS:
                return Strategy(f"st.lists({elem.code}, max_size=20).map(iter)", "any", elem.exact, elem)
            return Strategy(f"st.lists({elem.code}, max_size=20)", "list", elem.exact, elem)
        if base in _MAPPINGS and len(args) == 2:
            key = _from_annotation(args[0], module, depth + 1)
            value = _from_annotation(args[1], module, depth + 1)
            if key is None or value is None:
                return None
            return Strategy(
                f"st.dictionaries({key.code}, {value.code}, max_size=20)", "dict", key.exact and value.exact
            )
        if base in ("tuple", "Tuple"):
            if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
                elem = _from_annotation(args[0], module, depth + 1)
                if elem is None:
                    return None
                return Strategy(f"st.lists({elem.code}, max_size=20).map(tuple)", "tuple", elem.exact, elem)
            parts = [_from_annotation(a, module, depth + 1) for a in args]
            if any(p is None for p in parts):
                return None
            done = [p for p in parts if p is not None]
            return Strategy(f"st.tuples({', '.join(p.code for p in done)})", "tuple", all(p.exact for p in done))
        if base in ("Type", "type") and len(args) == 1 and isinstance(args[0], ast.Name):
            return Strategy(f"st.just({args[0].id})", "any", True) if args[0].id in _SIMPLE else None
        return None
    return None


def _kind_of(type_name: str) -> StrategyKind:
    return {"int": "int", "str": "str", "bytes": "bytes", "bool": "bool", "float": "float"}.get(  # type: ignore[return-value]
        type_name, "any"
    )


def _union(members: list[ast.expr], module: ModuleInfo | None, depth: int) -> Strategy | None:
    parts = [_from_annotation(m, module, depth + 1) for m in members]
    if any(p is None for p in parts):
        return None
    done = [p for p in parts if p is not None]
    kinds = {p.kind for p in done if p.kind != "none"}
    kind: StrategyKind = kinds.pop() if len(kinds) == 1 else "any"
    return Strategy(" | ".join(p.code for p in done), kind, all(p.exact for p in done))


def _builds(record: RecordInfo, module: ModuleInfo, depth: int) -> Strategy | None:
    kwargs: list[str] = []
    for f in record.fields:
        strat = _from_annotation(f.annotation, module, depth + 1) if f.annotation is not None else None
        if strat is None:
            if f.required:
                return None
            continue
        kwargs.append(f"{f.name}={strat.code}")
    inner = ", ".join([f"{MODULE_ALIAS}.{record.name}", *kwargs])
    return Strategy(f"st.builds({inner})", "record", True)


def _from_default(default: ast.expr, name: str) -> Strategy | None:
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, bool):
        return Strategy("st.booleans()", "bool", True)
    if isinstance(value, int):
        guessed = guess_from_name(name, "", None)
        if guessed is not None and guessed.kind == "int":
            return Strategy(guessed.code, "int", True)
        return Strategy("st.integers(min_value=-1000, max_value=1000)", "int", True)
    if isinstance(value, float):
        return Strategy(FLOATS, "float", True)
    if isinstance(value, str):
        return Strategy("st.text()", "str", True)
    if isinstance(value, bytes):
        return Strategy("st.binary()", "bytes", True)
    return None


# name-based guesses: documented, deliberately small, and marked inexact
_SIZE_NAMES = re.compile(
    r"^(n|k|count|size|width|height|length|len|num|number_of_.*|indent|times|repeat|limit|maxsize|max_.*|min_.*|"
    r"level|depth|tabsize|columns|cols|rows|precision|digits|places|ndigits)$"
)
_INDEX_NAMES = re.compile(r"^(i|j|idx|index|pos|position|start|stop|end|step|offset|lo|hi|low|high)$")
_TEXT_NAMES = re.compile(
    r"^(text|s|string|str|name|prefix|suffix|sep|separator|word|words_str|line|label|title|msg|message|url|uri|"
    r"path|p|filename|fname|char|chars|pattern|template|source|src|sentence|query|qs|content|html|css|cmd|"
    r"command|s1|s2|a_str|value_str|key|token|code|fmt|format_spec|encoding|errors|safe)$"
)
_BYTES_NAMES = re.compile(r"^(b|bs|buf|buffer|raw|payload|blob|data_bytes|bytes_|octets)$")
_LIST_NAMES = re.compile(r"^(items|seq|sequence|iterable|values|elements|lst|list_|arr|array|xs|heap|nums|numbers)$")
_FLOAT_NAMES = re.compile(r"^(x|y|z|t|ratio|fraction|weight|alpha|beta|angle|factor|scale|amount|price)$")
_COLOUR_FUNCS = re.compile(r"(rgb|hsv|hls|yiq|hsl|cmyk)", re.IGNORECASE)
_BOUNDED: dict[str, str] = {
    "year": "st.integers(min_value=1, max_value=9999)",
    "y1": "st.integers(min_value=1, max_value=9999)",
    "y2": "st.integers(min_value=1, max_value=9999)",
    "month": "st.integers(min_value=1, max_value=12)",
    "day": "st.integers(min_value=1, max_value=28)",
    "hour": "st.integers(min_value=0, max_value=23)",
    "minute": "st.integers(min_value=0, max_value=59)",
    "second": "st.integers(min_value=0, max_value=59)",
    "weekday": "st.integers(min_value=0, max_value=6)",
}
_BYTES_DOC = re.compile(r"bytes-like|bytes object|bytestring|byte string|\bbytes\b", re.IGNORECASE)
_TEXT_DOC = re.compile(r"\b(string|str|text)\b", re.IGNORECASE)
_STRUCTURE_DOC = re.compile(r"\b(\d+-)?tuples?\b", re.IGNORECASE)  # ("... object instead" is no structure)
_NUMERIC_DOC = re.compile(r"\b(mean|median|mode|variance|deviation|numbers|numeric|samples?|average)\b", re.IGNORECASE)


def guess_from_name(name: str, hint: str, module: ModuleInfo | None) -> Strategy | None:
    """A strategy guessed from a parameter's name (and the function's name/docstring in `hint`)."""
    lowered = name.lower()
    if lowered in _BOUNDED:
        return Strategy(_BOUNDED[lowered], "int", False)
    if _COLOUR_FUNCS.search(hint.split("\n", 1)[0]) and len(lowered) == 1:
        return Strategy(UNIT_FLOATS, "float", False)
    if _SIZE_NAMES.match(lowered):
        return Strategy("st.integers(min_value=0, max_value=100)", "int", False)
    if _INDEX_NAMES.match(lowered):
        return Strategy("st.integers(min_value=-100, max_value=100)", "int", False)
    doc = hint.split("\n", 1)[1] if "\n" in hint else ""
    if lowered in ("s", "data", "string", "input", "b", "buf") and _BYTES_DOC.search(doc) and "str" not in doc.split():
        return Strategy("st.binary()", "bytes", False)
    if lowered in ("x", "a", "l", "lst", "seq") and re.search(r"\blist\b", doc, re.IGNORECASE):
        return Strategy("st.lists(st.integers(), max_size=20)", "list", False, Strategy("st.integers()", "int", False))
    if lowered == "data":
        if _NUMERIC_DOC.search(doc) or (module is not None and module.imports & {"math", "statistics", "fractions"}):
            return Strategy(f"st.lists({FLOATS}, min_size=1, max_size=20)", "list", False)
        if _TEXT_DOC.search(doc):  # "Convert a date string to ..."
            return Strategy("st.text()", "str", False)
        if _STRUCTURE_DOC.search(doc):  # "Turn a 10-tuple as returned by ...": a tuple, not raw bytes
            return None
        return Strategy("st.binary()", "bytes", False)
    if _BYTES_NAMES.match(lowered):
        return Strategy("st.binary()", "bytes", False)
    if _TEXT_NAMES.match(lowered) or lowered.endswith(("_text", "_str", "_name", "_path", "_string")):
        return Strategy("st.text()", "str", False)
    if _LIST_NAMES.match(lowered):
        elem = Strategy("st.integers()", "int", False)
        return Strategy("st.lists(st.integers(), max_size=20)", "list", False, elem)
    if _FLOAT_NAMES.match(lowered):
        return Strategy(FLOATS, "float", False)
    if lowered.startswith(("is_", "has_", "use_", "allow_", "enable_")):
        return Strategy("st.booleans()", "bool", False)
    return None
