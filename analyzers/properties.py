"""Property families for a changed function: no-crash, round trip, idempotence, invariants, equivalence, algebra."""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Sequence
from dataclasses import dataclass

from analyzers.strategies import MODULE_ALIAS, FunctionInfo, ModuleInfo, Param, Strategy, strategy_for

RESERVED = frozenset({MODULE_ALIAS, "st", "given", "settings", "assume", "math", "result", "obj", "once", "value"})

# family → how much a passing test of it says about the function (used to rank and to describe)
STRENGTH = {
    "equivalence": 5,
    "selection": 4,
    "parts": 4,
    "bounds": 3,
    "width": 3,
    "roundtrip": 4,
    "sorted": 4,
    "clamp": 3,
    "idempotent": 3,
    "commutative": 2,
    "associative": 2,
    "length": 2,
    "no-crash": 1,
}


@dataclass(frozen=True)
class Arg:
    param: Param
    var: str  # the name of the @given argument
    strategy: Strategy
    keyword: bool  # passed by keyword


@dataclass(frozen=True)
class Call:
    """How a generated test calls one function: its arguments and a receiver for instance methods."""

    info: FunctionInfo
    args: tuple[Arg, ...]
    receiver: Strategy | None  # st.builds(...) of the class for instance methods

    def expression(self, overrides: dict[str, str] | None = None) -> str:
        values = overrides or {}
        parts = [
            f"{a.param.name}={values.get(a.var, a.var)}" if a.keyword else values.get(a.var, a.var) for a in self.args
        ]
        if self.receiver is not None:
            target = f"obj.{self.info.name}"
        else:
            target = f"{MODULE_ALIAS}.{self.info.qualname}"
        return f"{target}({', '.join(parts)})"

    def given(self) -> list[str]:
        out = [f"obj={self.receiver.code}"] if self.receiver is not None else []
        return out + [f"{a.var}={a.strategy.code}" for a in self.args]

    def variables(self) -> list[str]:
        return (["obj"] if self.receiver is not None else []) + [a.var for a in self.args]


@dataclass(frozen=True)
class PropertyTest:
    family: str  # one of STRENGTH's keys
    name: str  # the test function's name
    code: str  # the decorated test function's source
    targets: tuple[str, ...]  # qualnames it exercises
    helpers: frozenset[str] = frozenset()  # names of shared helpers the code uses (see HELPERS)


HELPERS = {
    "_same": '''def _same(a, b):
    """Equal, with float tolerance and NaN equal to NaN, through lists, tuples and dicts."""
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
        return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b
''',
    "_refused": '''def _refused(exc):
    """How a parser refuses malformed input: a decoding error (ValueError, SyntaxError, EOFError, OSError as in
    "invalid data stream") or an error class of its own or of a library it uses. TypeError, IndexError,
    AttributeError and the like are bugs."""
    return isinstance(exc, (ValueError, SyntaxError, EOFError, OSError)) or type(exc).__module__ != "builtins"
''',
    "_outcome": '''def _outcome(fn, *args, **kwargs):
    """What a call did: ("returned", value) or ("raised", exception type name)."""
    try:
        return ("returned", fn(*args, **kwargs))
    except Exception as exc:  # the two versions must fail alike, too
        return ("raised", type(exc).__name__)
''',
}


def plan_call(info: FunctionInfo, module: ModuleInfo, *, optional: bool) -> Call | None:
    """Strategies for the parameters a test passes (required ones; exact optional ones when `optional`)."""
    hint = f"{info.name}\n{info.docstring}"
    receiver: Strategy | None = None
    if info.method_kind == "method":
        if info.class_name is None:
            return None
        receiver = strategy_for(ast.Name(info.class_name), module=module)
        if receiver is None or receiver.kind != "record":
            return None
    args: list[Arg] = []
    used: set[str] = set()
    keyword = False
    for p in info.params:
        if p.kind in ("var_positional", "var_keyword"):
            keyword = True
            continue
        strat = strategy_for(
            p.annotation,
            name=p.name,
            default=p.default,
            module=module,
            hint=hint,
            usage=info.usage.get(p.name),
            min_size=info.min_sizes.get(p.name, 0),
            literals=info.literals.get(p.name, ()),
        )
        if p.required and strat is None:
            return None
        if not p.required and (not optional or not _worth_passing(p, strat) or p.kind == "positional_only"):
            keyword = True  # later parameters go by keyword, this one keeps its default
            continue
        if strat is None:
            return None
        var = p.name if p.name not in RESERVED and p.name not in used else f"{p.name}_arg"
        used.add(var)
        args.append(Arg(p, var, strat, keyword or p.kind == "keyword_only"))
    return Call(info, tuple(args), receiver)


def _worth_passing(p: Param, strat: Strategy | None) -> bool:
    """Optional parameters are varied only when annotated, or flags: other defaults often encode a domain
    (an encoding name, a mode string, a column count) that random values would leave."""
    if strat is None or not strat.exact:
        return False
    return p.annotation is not None or strat.kind == "bool"


def _decorators(call: Call, max_examples: int, extra: Sequence[str] = ()) -> str:
    parts = [*call.given(), *extra]
    given = ", ".join(parts)
    if len(given) > 100:  # one argument a line, as a formatter would write it
        given = "\n" + "".join(f"    {p},\n" for p in parts)
    return f"@settings(max_examples={max_examples}, deadline=None)\n@given({given})\n"


def _slug(qualname: str) -> str:
    return re.sub(r"\W", "_", qualname).lower()


def _invoke(info: FunctionInfo, expression: str) -> str:
    if info.is_async:
        return f"asyncio.run({expression})"
    if info.is_generator:
        return f"list(itertools.islice({expression}, 1000))"
    return expression


# ---- no unexpected exception (+ the annotated return type) ----------------------------------------


PARSER = re.compile(
    r"(^|_)(parse\w*|decode\w*|loads?|from|unquote\w*|unescape|unpack\w*|deseriali[sz]e|decompress|decrypt|"
    r"unmarshal|read\w*|thaw)($|_)|^from_|decode",
    re.IGNORECASE,
)


ENCODER = re.compile(r"encode", re.IGNORECASE)
CODEC_PARAMS = re.compile(r"^(encoding|charset|codec)$", re.IGNORECASE)
DECODING_WORDS: tuple[str, ...] = ("deserialize", "deserialise", "decode", "decrypt", "decompress", "loads", "load")
DECODING_WORDS += ("unquote", "unescape", "unmarshal", "unpack", "unwrap", "thaw", "split", "parse", "from_")


def is_parser(info: FunctionInfo, module: ModuleInfo) -> bool:
    """Does the function interpret its input (parse, decode, decompress, unpack, load ...)?

    By name; as the inverse of an encoder in the same module (b from a/b = encode/decode, dumps/loads ...),
    taking text or bytes; or by handing its input to a same-module function that is a parser by name.
    Such a function refuses most arbitrary input, by design, so a test on arbitrary input must accept that.
    """
    if PARSER.search(info.name):
        return True
    if any(
        PARSER.search(callee) and callee in module.functions and module.functions[callee].class_name is None
        for callee in info.calls
    ):
        return True
    inverse = any(backward == info.qualname for _, backward in inverse_pairs(module))
    return inverse and any(word in info.name.lower() for word in DECODING_WORDS) and _takes_text(info, module)


def _takes_text(info: FunctionInfo, module: ModuleInfo) -> bool:
    first = next((p for p in info.params if p.kind not in ("var_positional", "var_keyword")), None)
    if first is None:
        return False
    found = strategy_for(
        first.annotation, name=first.name, default=first.default, module=module, usage=info.usage.get(first.name)
    )
    return found is not None and found.kind in ("str", "bytes")


def allowed_exceptions(info: FunctionInfo, module: ModuleInfo) -> list[str]:
    """Exceptions the function raises on purpose (a test accepts them as a refusal of the input).

    A parser or decoder refuses malformed text with ValueError (UnicodeDecodeError, binascii.Error, ...)
    whether or not its own body says `raise`, so those are accepted for parsers (see is_parser). Likewise an
    encoder, or a function given an encoding, refuses text its charset cannot hold with UnicodeError.
    """
    out: list[str] = []
    raises = set(info.raises)
    if is_parser(info, module):
        raises.add("ValueError")
    elif ENCODER.search(info.name) or any(CODEC_PARAMS.match(p.name) for p in info.params):
        raises.add("UnicodeError")
    for name in sorted(raises):
        head = name.split(".", 1)[0]
        obj = getattr(builtins, name, None)
        if isinstance(obj, type) and issubclass(obj, Exception):
            if name not in ("AssertionError", "NotImplementedError"):
                out.append(name)
        elif head in module.bound_names and head not in module.functions:
            out.append(f"{MODULE_ALIAS}.{name}")
    return out


_RETURN_CHECKS = {
    "int": "isinstance(result, int)",
    "float": "isinstance(result, (int, float))",
    "str": "isinstance(result, str)",
    "bytes": "isinstance(result, bytes)",
    "bool": "isinstance(result, bool)",
    "list": "isinstance(result, list)",
    "List": "isinstance(result, list)",
    "dict": "isinstance(result, dict)",
    "Dict": "isinstance(result, dict)",
    "tuple": "isinstance(result, tuple)",
    "Tuple": "isinstance(result, tuple)",
    "set": "isinstance(result, set)",
    "Set": "isinstance(result, set)",
    "frozenset": "isinstance(result, frozenset)",
    "None": "result is None",
}


def return_check(returns: ast.expr | None, module: ModuleInfo | None = None) -> str | None:
    """An assertion that the result has the annotated type, for the simple forms and the module's classes."""
    if returns is None:
        return None
    if isinstance(returns, ast.Constant) and isinstance(returns.value, str):
        try:
            returns = ast.parse(returns.value, mode="eval").body
        except SyntaxError:
            return None
    if module is not None and isinstance(returns, ast.Name) and returns.id in module.classes:
        return f"isinstance(result, {MODULE_ALIAS}.{returns.id})"
    if isinstance(returns, ast.Constant) and returns.value is None:
        return "result is None"
    node = returns.value if isinstance(returns, ast.Subscript) else returns
    name = node.id if isinstance(node, ast.Name) else None
    if name == "Optional" and isinstance(returns, ast.Subscript):
        inner = return_check(returns.slice, module)
        return f"result is None or {inner}" if inner else None
    if isinstance(returns, ast.BinOp) and isinstance(returns.op, ast.BitOr):
        left, right = return_check(returns.left, module), return_check(returns.right, module)
        return f"({left}) or ({right})" if left and right else None
    return _RETURN_CHECKS.get(name or "")


PREDICATE = re.compile(r"^(is|has|can|should|needs?)_?[a-z]")


def _predicate(info: FunctionInfo) -> bool:
    """Named as a predicate (is_x, isleap, has_y ...) and no `return` says otherwise (None, a number, a string:
    iso2time or issue_number are not predicates)."""
    if not PREDICATE.match(info.name) or info.is_async or info.is_generator:
        return False
    return not any(_not_boolean(value) for value in _returned(info))


def _returned(info: FunctionInfo) -> list[ast.expr | None]:
    """The values of the function's own `return` statements (None for a bare return), from its source."""
    try:
        tree = ast.parse(info.source)
    except SyntaxError:
        return []
    if not tree.body or not isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        return []
    out: list[ast.expr | None] = []
    stack: list[ast.AST] = list(tree.body[0].body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            out.append(node.value)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))
    return out


def _not_boolean(value: ast.expr | None) -> bool:
    if value is None:
        return True
    if isinstance(value, ast.Constant):
        return not isinstance(value.value, bool)
    return isinstance(value, ast.BinOp | ast.JoinedStr | ast.Tuple | ast.List | ast.Dict | ast.Set | ast.ListComp)


def _guarded_call(call: Call, module: ModuleInfo) -> tuple[list[str], frozenset[str]]:
    """`result = f(...)`, returning early when f refuses the input with an exception it raises on purpose
    (and, for a parser, with any refusal of malformed input: see the _refused helper); and the helpers used."""
    info = call.info
    parser = is_parser(info, module)
    allowed = [name for name in allowed_exceptions(info, module) if not (parser and name == "ValueError")]
    body = f"result = {_invoke(info, call.expression())}"
    lines = ["try:", f"    {body}"]
    if allowed:
        caught = allowed[0] if len(allowed) == 1 else f"({', '.join(allowed)})"
        lines += [f"except {caught}:", "    return  # refused on purpose: raised by the code"]
    if parser:
        lines += [
            "except Exception as exc:  # a parser refuses malformed input; other errors are bugs",
            "    if not _refused(exc):",
            "        raise",
            "    return",
        ]
        return lines, frozenset({"_refused"})
    return (lines if allowed else [body]), frozenset()


def no_crash(call: Call, module: ModuleInfo, max_examples: int, *, bare: bool = False) -> PropertyTest:
    """Valid inputs raise nothing unexpected; the result has the annotated type (a predicate returns a bool).

    `bare` leaves out every check of the result: the kill-rate floor of the benchmark.
    """
    info = call.info
    check = return_check(info.returns, module) if not (info.is_generator or info.is_async or bare) else None
    if check is None and not bare and info.returns is None and _predicate(info):
        check = "isinstance(result, bool)"
    if check is None and not bare and info.returns is None and never_none(info, module, call):
        check = "result is not None"
    lines, helpers = _guarded_call(call, module)
    if check:
        lines.append(f"assert {check}, result")
    else:
        lines.append("del result  # no-crash property: any other exception fails the test")
    name = f"test_{_slug(info.qualname)}_no_crash"
    code = _decorators(call, max_examples) + f"def {name}({', '.join(call.variables())}):\n" + _indent(lines)
    return PropertyTest("no-crash", name, code, (info.qualname,), helpers)


# ---- the body never returns None (an unannotated function's result is still checked) ---------------------

_NEVER_NONE_CALLS = frozenset(
    "str int float complex bool bytes bytearray tuple list dict set frozenset len abs round sorted repr ascii chr "
    "ord hex oct bin format divmod pow sum any all isinstance issubclass hash id type range enumerate zip map "
    "filter reversed iter memoryview".split()
)
_NEVER_NONE_METHODS = frozenset(
    "replace strip lstrip rstrip lower upper title capitalize casefold swapcase join split rsplit splitlines "
    "encode decode format zfill ljust rjust center expandtabs translate partition rpartition hex startswith "
    "endswith isalpha isdigit isalnum isspace isupper islower isascii isdecimal isnumeric isidentifier "
    "istitle isprintable count find rfind index rindex copy keys values items removeprefix removesuffix to_bytes "
    "bit_length bit_count".split()
)


def never_none(info: FunctionInfo, module: ModuleInfo, call: Call | None = None, depth: int = 0) -> bool:
    """Can the function return None? No when every path ends in a return or raise, and every returned value
    is a literal, an operation, a builtin or str/bytes method call, a same-module function that never returns
    None, a parameter the test never draws None for, or a local only ever bound to such values."""
    if info.is_async or info.is_generator or depth > 2:
        return False
    fn = _parse_def(info)
    if fn is None or not _always_exits(fn.body):
        return False
    values = _returned(info)
    if not values or any(v is None for v in values):
        return False
    safe_params: set[str] = set()
    if call is not None:
        drawn = {a.param.name: a.strategy for a in call.args}
        for p in info.params:
            if p.name in drawn:
                strategy = drawn[p.name]
                if strategy.kind not in ("none", "any") and "st.none()" not in strategy.code:
                    safe_params.add(p.name)
            elif isinstance(p.default, ast.Constant) and p.default.value is not None:
                safe_params.add(p.name)
    scope = _Scope(module, frozenset(p.name for p in info.params), frozenset(safe_params), _bindings(fn), depth)
    return all(_not_none(v, scope) for v in values if v is not None)


def _parse_def(info: FunctionInfo) -> ast.FunctionDef | None:
    try:
        tree = ast.parse(info.source)
    except SyntaxError:
        return None
    first = tree.body[0] if tree.body else None
    return first if isinstance(first, ast.FunctionDef) else None


def _always_exits(body: list[ast.stmt]) -> bool:
    if not body:
        return False
    last = body[-1]
    if isinstance(last, ast.Return | ast.Raise):
        return True
    if isinstance(last, ast.If):
        return _always_exits(last.body) and _always_exits(last.orelse)
    if isinstance(last, ast.Try):
        if _always_exits(last.finalbody):
            return True
        main = last.orelse if last.orelse else last.body
        return _always_exits(main) and all(_always_exits(h.body) for h in last.handlers)
    if isinstance(last, ast.With):
        return _always_exits(last.body)
    if isinstance(last, ast.While) and isinstance(last.test, ast.Constant) and last.test.value is True:
        return not any(isinstance(n, ast.Break) for n in _loop_own(last))
    return False


def _loop_own(loop: ast.While) -> list[ast.AST]:
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(loop.body)
    while stack:
        n = stack.pop()
        out.append(n)
        if not isinstance(n, ast.For | ast.While | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(n))
    return out


_UNKNOWN = ast.Constant(None)  # a binding whose value is not known (loop target, unpacking, with/except)


def _bindings(fn: ast.FunctionDef) -> dict[str, list[ast.expr]]:
    """Local name → the values bound to it in the function's own body (_UNKNOWN for other kinds of binding)."""
    out: dict[str, list[ast.expr]] = {}
    stack: list[ast.AST] = list(fn.body)
    while stack:
        n = stack.pop()
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            out.setdefault(getattr(n, "name", ""), []).append(_UNKNOWN)
            continue
        if isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) for t in n.targets):
            for t in n.targets:
                out.setdefault(t.id, []).append(n.value)  # type: ignore[attr-defined]
            stack.append(n.value)
            continue
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None:
            out.setdefault(n.target.id, []).append(n.value)
            stack.append(n.value)
            continue
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            out.setdefault(n.target.id, []).append(ast.BinOp(n.target, n.op, n.value))
            stack.append(n.value)
            continue
        if isinstance(n, ast.NamedExpr):
            out.setdefault(n.target.id, []).append(n.value)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
            out.setdefault(n.id, []).append(_UNKNOWN)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.setdefault(n.name, []).append(_UNKNOWN)
        elif isinstance(n, ast.Global | ast.Nonlocal):
            for name in n.names:
                out.setdefault(name, []).append(_UNKNOWN)
        stack.extend(ast.iter_child_nodes(n))
    return out


@dataclass(frozen=True)
class _Scope:
    module: ModuleInfo
    params: frozenset[str]  # every parameter of the function
    safe: frozenset[str]  # parameters the test never draws None for
    bindings: dict[str, list[ast.expr]]
    depth: int


def _not_none(value: ast.expr, scope: _Scope, seen: frozenset[str] = frozenset()) -> bool:
    def again(v: ast.expr) -> bool:
        return _not_none(v, scope, seen)

    if isinstance(value, ast.Constant):
        return value is not _UNKNOWN and value.value is not None
    if isinstance(value, ast.JoinedStr | ast.BinOp | ast.Compare | ast.UnaryOp | ast.Tuple | ast.List | ast.Dict):
        return True
    if isinstance(value, ast.Set | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp | ast.Lambda):
        return True
    if isinstance(value, ast.IfExp):
        return again(value.body) and again(value.orelse)
    if isinstance(value, ast.BoolOp):
        return again(value.values[-1]) if isinstance(value.op, ast.Or) else all(again(v) for v in value.values)
    if isinstance(value, ast.NamedExpr):
        return again(value.value)
    if isinstance(value, ast.Subscript):
        return isinstance(value.slice, ast.Slice)  # a slice is a sequence (or raises), an item may be None
    if isinstance(value, ast.Call):
        func = value.func
        if isinstance(func, ast.Name):
            if func.id in scope.bindings or func.id in scope.params:
                return False
            callee = scope.module.functions.get(func.id)
            if callee is not None and callee.class_name is None:
                return never_none(callee, scope.module, None, scope.depth + 1)
            return func.id in _NEVER_NONE_CALLS and func.id not in scope.module.bound_names
        return isinstance(func, ast.Attribute) and func.attr in _NEVER_NONE_METHODS
    if isinstance(value, ast.Name):
        if value.id in seen:
            return True  # a cycle of bindings adds no None
        if value.id in scope.params and value.id not in scope.safe:
            return False
        bound = scope.bindings.get(value.id)
        if bound is None:
            return value.id in scope.safe
        return all(_not_none(v, scope, seen | {value.id}) for v in bound)
    return False


def _indent(lines: Sequence[str]) -> str:
    return "".join(f"    {line}\n" for line in lines)


# ---- round trips between inverse pairs --------------------------------------------------------------

INVERSE_WORDS = (
    ("serialize", "deserialize"),
    ("serialise", "deserialise"),
    ("encode", "decode"),
    ("encrypt", "decrypt"),
    ("compress", "decompress"),
    ("dumps", "loads"),
    ("dump", "load"),
    ("quote", "unquote"),
    ("escape", "unescape"),
    ("marshal", "unmarshal"),
    ("pack", "unpack"),
    ("wrap", "unwrap"),
    ("freeze", "thaw"),
    ("join", "split"),
    ("stringify", "parse"),
    ("serialize", "parse"),
    ("format", "parse"),
    ("render", "parse"),
    ("to_", "from_"),
)


def inverse_pairs(module: ModuleInfo) -> list[tuple[str, str]]:
    """(forward, inverse) qualname pairs in the same scope, by name: encode/decode, x_to_y/y_to_x, ..."""
    by_scope: dict[str | None, dict[str, FunctionInfo]] = {}
    for info in module.functions.values():
        by_scope.setdefault(info.class_name, {})[info.name] = info
    pairs: list[tuple[str, str]] = []
    for scope in by_scope.values():
        names = list(scope)
        for a in names:
            for forward, backward in INVERSE_WORDS:
                candidates = {a.replace(forward, backward, 1)} if forward in a else set()
                if forward.endswith("_"):
                    candidates = {backward + a[len(forward) :]} if a.startswith(forward) else set()
                for b in candidates:
                    if b != a and b in scope and (scope[a].qualname, scope[b].qualname) not in pairs:
                        pairs.append((scope[a].qualname, scope[b].qualname))
            if "_to_" in a:
                left, right = a.split("_to_", 1)
                b = f"{right}_to_{left}"
                if b in scope and names.index(a) < names.index(b):
                    pairs.append((scope[a].qualname, scope[b].qualname))
    return pairs


def roundtrip(forward: Call, backward: FunctionInfo, module: ModuleInfo, max_examples: int) -> PropertyTest | None:
    inverse = plan_call(backward, module, optional=False)
    if inverse is None or inverse.receiver is not None:
        return None
    if forward.receiver is not None:
        return _method_roundtrip(forward, backward, inverse, max_examples)
    if backward.is_async or backward.is_generator or forward.info.is_async or forward.info.is_generator:
        return None
    n_in, n_back = len(forward.args), len(inverse.args)
    if n_in == 0 or _variadic(forward.info) or _variadic(backward):
        return None  # a *args function's arity is unknown: its inverse's output cannot be matched to the input
    if any(isinstance(v, ast.Tuple) and len(v.elts) != n_in for v in _returned(backward)):
        return None  # the inverse returns more (or fewer) parts than the input had: not a plain inverse
    back_target = f"{MODULE_ALIAS}.{backward.qualname}"
    extra: list[str] = []  # @given entries for the inverse's own options
    if n_back == 1:
        back = f"{back_target}(value)"
    elif n_back == n_in and n_in > 1:
        back = f"{back_target}(*value)"
    elif n_in == 1 and all(ERROR_HANDLER.match(a.param.name) for a in inverse.args[1:]):
        # decode(text, errors): an error handler only acts on malformed input, so any one restores the input
        options = [(a, f"{a.param.name}_back") for a in inverse.args[1:]]
        extra = [f"{var}={a.strategy.code}" for a, var in options]
        passed = [f"{a.param.name}={var}" if a.keyword else var for a, var in options]
        back = f"{back_target}(value, {', '.join(passed)})"
    else:
        return None
    original = forward.args[0].var if n_in == 1 else f"({', '.join(a.var for a in forward.args)})"
    restored = "back" if n_in == 1 else "tuple(back)"
    lines = [
        f"value = {forward.expression()}",
        f"back = {back}",
        f"assert _same({restored}, {original}), (value, back)",
    ]
    name = f"test_{_slug(forward.info.qualname)}_roundtrip_{_slug(backward.name)}"
    variables = [*forward.variables(), *(e.split("=", 1)[0] for e in extra)]
    code = _decorators(forward, max_examples, extra) + f"def {name}({', '.join(variables)}):\n" + _indent(lines)
    return PropertyTest("roundtrip", name, code, (forward.info.qualname, backward.qualname), frozenset({"_same"}))


ERROR_HANDLER = re.compile(r"^errors$")


def _variadic(info: FunctionInfo) -> bool:
    return any(p.kind == "var_positional" for p in info.params)


def _method_roundtrip(forward: Call, backward: FunctionInfo, inverse: Call, max_examples: int) -> PropertyTest | None:
    """obj.to_x() then Cls.from_x(...) (a classmethod or staticmethod) gives back an equal object."""
    if forward.args or len(inverse.args) != 1 or backward.method_kind not in ("classmethod", "staticmethod"):
        return None
    if forward.info.is_async or forward.info.is_generator or backward.is_async or backward.is_generator:
        return None
    lines = [
        f"value = {forward.expression()}",
        f"back = {MODULE_ALIAS}.{backward.qualname}(value)",
        "assert back == obj, (value, back)",
    ]
    name = f"test_{_slug(forward.info.qualname)}_roundtrip_{_slug(backward.name)}"
    code = _decorators(forward, max_examples) + f"def {name}({', '.join(forward.variables())}):\n" + _indent(lines)
    return PropertyTest("roundtrip", name, code, (forward.info.qualname, backward.qualname))


# ---- idempotence for normalisers ---------------------------------------------------------------------

NORMALISER = re.compile(
    r"(^|_)(normali[sz]e\w*|norm\w*|clean\w*|canonical\w*|sort|sorted|dedupe|dedup|unique\w*|strip|lstrip|rstrip|"
    r"trim|dedent|slugify|lower|upper|casefold|simplify|squash|collapse\w*|saniti[sz]e\w*|compact|tidy|"
    r"standardi[sz]e)($|_)",
    re.IGNORECASE,
)


def idempotent(call: Call, max_examples: int) -> PropertyTest | None:
    info = call.info
    if not NORMALISER.search(info.name) or len(call.args) != 1 or call.receiver is not None:
        return None
    if info.is_async or info.is_generator or _returns_none(info) or _removes_one_layer(info):
        return None
    arg = call.args[0]
    if info.returns is not None and arg.param.annotation is not None:
        if ast.dump(info.returns) != ast.dump(arg.param.annotation):
            return None
    lines = [
        f"once = {call.expression()}",
        f"assert _same({call.expression({arg.var: 'once'})}, once), once",
    ]
    name = f"test_{_slug(info.qualname)}_idempotent"
    code = _decorators(call, max_examples) + f"def {name}({', '.join(call.variables())}):\n" + _indent(lines)
    return PropertyTest("idempotent", name, code, (info.qualname,), frozenset({"_same"}))


def _removes_one_layer(info: FunctionInfo) -> bool:
    """Strips one prefix/suffix per call (`if s.startswith('"'): s = s[1:]`, removeprefix, replace(a, b, 1)):
    '""x""' loses one layer a call, so such a normaliser is not idempotent."""
    fn = _parse_def(info)
    if fn is None:
        return False
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("removeprefix", "removesuffix"):
                return True
            if node.func.attr == "replace" and len(node.args) + len(node.keywords) >= 3:
                return True
        if isinstance(node, ast.If) and isinstance(node.test, ast.Call) and isinstance(node.test.func, ast.Attribute):
            if node.test.func.attr in ("startswith", "endswith") and isinstance(node.test.func.value, ast.Name):
                name = node.test.func.value.id
                for inner in ast.walk(ast.Module(body=node.body, type_ignores=[])):
                    if (
                        isinstance(inner, ast.Subscript)
                        and isinstance(inner.slice, ast.Slice)
                        and isinstance(inner.value, ast.Name)
                        and inner.value.id == name
                    ):
                        return True
    return False


def _returns_none(info: FunctionInfo) -> bool:
    return isinstance(info.returns, ast.Constant) and info.returns.value is None


# ---- invariants: sorted output, length preservation, clamp bounds -------------------------------------

SORTING = re.compile(r"(^|_)sort(ed)?($|_)", re.IGNORECASE)
LENGTH_KEEPING = re.compile(r"(^|_)(reverse[d]?|shuffle[d]?|rotate[d]?|permute[d]?|swap\w*|scale[d]?)($|_)", re.I)
CLAMPING = re.compile(r"(^|_)(clamp\w*|clip\w*|bound(ed)?|constrain\w*)($|_)", re.IGNORECASE)
_LOW = re.compile(r"^(lo|low|lower|min\w*|minimum|floor|start|a_min|smallest)$", re.IGNORECASE)
_HIGH = re.compile(r"^(hi|high|upper|max\w*|maximum|ceil\w*|end|a_max|largest)$", re.IGNORECASE)


def sorted_invariant(call: Call, max_examples: int) -> PropertyTest | None:
    info = call.info
    if not SORTING.search(info.name) or not call.args or call.receiver is not None:
        return None
    first = call.args[0]
    if first.strategy.kind != "list" or info.is_async or info.is_generator:
        return None
    in_place = _returns_none(info)
    lines = [f"before = list({first.var})", f"result = {call.expression()}"]
    out = first.var if in_place else "result"
    lines += [
        f"out = list({out})",
        "assert all(a <= b for a, b in zip(out, out[1:])), out",
        "assert sorted(out) == sorted(before), (out, before)",
    ]
    name = f"test_{_slug(info.qualname)}_sorted_permutation"
    code = _decorators(call, max_examples) + f"def {name}({', '.join(call.variables())}):\n" + _indent(lines)
    return PropertyTest("sorted", name, code, (info.qualname,))


def length_invariant(call: Call, max_examples: int) -> PropertyTest | None:
    info = call.info
    if not LENGTH_KEEPING.search(info.name) or not call.args or call.receiver is not None:
        return None
    first = call.args[0]
    if first.strategy.kind not in ("list", "tuple", "str", "bytes") or info.is_async or _returns_none(info):
        return None
    lines = [f"result = {_invoke(info, call.expression())}", f"assert len(result) == len({first.var}), result"]
    name = f"test_{_slug(info.qualname)}_keeps_length"
    code = _decorators(call, max_examples) + f"def {name}({', '.join(call.variables())}):\n" + _indent(lines)
    return PropertyTest("length", name, code, (info.qualname,))


def clamp_invariant(call: Call, max_examples: int) -> PropertyTest | None:
    info = call.info
    if not CLAMPING.search(info.name) or len(call.args) != 3 or call.receiver is not None:
        return None
    if any(a.strategy.kind not in ("int", "float") for a in call.args) or info.is_async:
        return None
    low = [a.var for a in call.args if _LOW.match(a.param.name)]
    high = [a.var for a in call.args if _HIGH.match(a.param.name)]
    if len(low) != 1 or len(high) != 1:
        return None
    lines = [
        f"assume({low[0]} <= {high[0]})",
        f"result = {call.expression()}",
        f"assert {low[0]} <= result <= {high[0]}, result",
    ]
    name = f"test_{_slug(info.qualname)}_within_bounds"
    code = _decorators(call, max_examples) + f"def {name}({', '.join(call.variables())}):\n" + _indent(lines)
    return PropertyTest("clamp", name, code, (info.qualname,))


AGGREGATE = re.compile(r"(^|_)(mean|fmean|median\w*|average|avg|mode|midpoint|percentile|quantile)($|_)", re.I)
MEMBER = re.compile(r"(^|_)(median_low|median_high|mode|choice|pick|select\w*)$", re.IGNORECASE)
SELECTION = re.compile(r"(^|_)(n?largest|n?smallest|top_?k?|bottom_?k?)($|_)", re.IGNORECASE)
PARTS = re.compile(r"^(r?partition|split_?ext|splitdrive|split_?extension)$", re.IGNORECASE)
WIDTH_FUNCS = re.compile(r"(^|_)(wrap|fill|shorten|truncate|ellipsize|abbreviate)($|_)", re.IGNORECASE)
WIDTH_PARAMS = re.compile(r"^(width|max_?width|max_?len|maxlen|max_?length|limit|line_?length)$", re.IGNORECASE)


def _guarded_test(
    call: Call,
    module: ModuleInfo,
    family: str,
    suffix: str,
    checks: Sequence[str],
    max_examples: int,
    pre: Sequence[str] = (),
) -> PropertyTest:
    info = call.info
    guarded, helpers = _guarded_call(call, module)
    lines = [*pre, *guarded, *checks]
    name = f"test_{_slug(info.qualname)}_{suffix}"
    code = _decorators(call, max_examples) + f"def {name}({', '.join(call.variables())}):\n" + _indent(lines)
    return PropertyTest(family, name, code, (info.qualname,), helpers)


def _plain(call: Call) -> bool:
    return call.receiver is None and not call.info.is_async and not call.info.is_generator


def aggregate_invariant(call: Call, module: ModuleInfo, max_examples: int) -> PropertyTest | None:
    """A mean/median/mode of numbers lies within their range (a median_low/high or mode is one of them)."""
    info = call.info
    if not AGGREGATE.search(info.name) or len(call.args) != 1 or not _plain(call):
        return None
    data = call.args[0]
    numeric = "st.floats" in data.strategy.code or "st.integers" in data.strategy.code
    if data.strategy.kind != "list" or not numeric:
        return None
    tol = f"1e-9 * max(1.0, abs(min({data.var})), abs(max({data.var})))"
    checks = [f"assert min({data.var}) - {tol} <= result <= max({data.var}) + {tol}, result"]
    if MEMBER.search(info.name):
        checks.append(f"assert result in {data.var}, result")
    return _guarded_test(call, module, "bounds", "within_input_range", checks, max_examples)


def selection_invariant(call: Call, module: ModuleInfo, max_examples: int) -> PropertyTest | None:
    """n largest/smallest: min(n, len) items, taken from the input, in order."""
    info = call.info
    if not SELECTION.search(info.name) or len(call.args) != 2 or not _plain(call):
        return None
    count = next((a for a in call.args if a.strategy.kind == "int"), None)
    items = next((a for a in call.args if a.strategy.kind == "list"), None)
    if count is None or items is None:
        return None
    order = ">=" if re.search("larg|top", info.name, re.IGNORECASE) else "<="
    checks = [
        "out = list(result)",
        f"assert len(out) == max(0, min({count.var}, len({items.var}))), out",
        f"assert all(x in {items.var} for x in out), out",
        f"assert all(a {order} b for a, b in zip(out, out[1:])), out",
    ]
    return _guarded_test(call, module, "selection", "selects_in_order", checks, max_examples)


def parts_invariant(call: Call, module: ModuleInfo, max_examples: int) -> PropertyTest | None:
    """A partition/splitext of a string gives parts that concatenate back to it."""
    info = call.info
    if not PARTS.match(info.name) or not call.args or call.args[0].strategy.kind not in ("str", "bytes"):
        return None
    if not _plain(call):
        return None
    first = call.args[0].var
    checks = [f"assert {first}[:0].join(result) == {first}, result"]
    return _guarded_test(call, module, "parts", "parts_concatenate", checks, max_examples)


def width_invariant(call: Call, module: ModuleInfo, max_examples: int) -> PropertyTest | None:
    """wrap/fill/shorten to a width: no output line is longer than the width."""
    info = call.info
    if not WIDTH_FUNCS.search(info.name) or not _plain(call):
        return None
    width = next((a for a in call.args if WIDTH_PARAMS.match(a.param.name) and a.strategy.kind == "int"), None)
    text = next((a for a in call.args if a.strategy.kind == "str"), None)
    if text is None:
        return None
    if width is not None:
        limit, pre = width.var, [f"assume({width.var} >= 1)"]
    else:  # the width keeps its default: read it from the signature
        defaults = [p.default for p in info.params if WIDTH_PARAMS.match(p.name) and p.default is not None]
        value = defaults[0].value if defaults and isinstance(defaults[0], ast.Constant) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return None
        limit, pre = str(value), []
    checks = [
        "lines = result.splitlines() if isinstance(result, str) else list(result)",
        f"assert all(len(line) <= {limit} for line in lines), lines",
    ]
    return _guarded_test(call, module, "width", "fits_width", checks, max_examples, pre)


# ---- commutativity / associativity for binary operations ------------------------------------------------

COMMUTATIVE = re.compile(
    r"^(add|plus|sum|mul|multiply|times|product|gcd|lcm|max|min|maximum|minimum|union|intersect|intersection|"
    r"hypot|dist|distance|overlap|xor|combine|merge_sets|same|equal|equals|eq)$",
    re.IGNORECASE,
)
ASSOCIATIVE = re.compile(
    r"^(add|plus|mul|multiply|times|gcd|lcm|max|min|maximum|minimum|union|intersect|intersection|concat|"
    r"concatenate|compose|xor)$",
    re.IGNORECASE,
)


def algebra(call: Call, max_examples: int) -> list[PropertyTest]:
    info = call.info
    if len(call.args) != 2 or call.receiver is not None or info.is_async or info.is_generator:
        return []
    a, b = call.args
    if a.strategy.code != b.strategy.code or a.strategy.kind in ("any", "none"):
        return []
    bare = info.name.lstrip("_")
    out: list[PropertyTest] = []
    if COMMUTATIVE.match(bare):
        swapped = call.expression({a.var: b.var, b.var: a.var})
        lines = [f"assert _same({call.expression()}, {swapped})"]
        name = f"test_{_slug(info.qualname)}_commutative"
        code = _decorators(call, max_examples) + f"def {name}({', '.join(call.variables())}):\n" + _indent(lines)
        out.append(PropertyTest("commutative", name, code, (info.qualname,), frozenset({"_same"})))
    if ASSOCIATIVE.match(bare) and a.strategy.kind != "float":
        third = f"{a.var}_third"
        left = call.expression({a.var: call.expression(), b.var: third})
        right = call.expression({b.var: call.expression({a.var: b.var, b.var: third})})
        lines = [f"assert _same({left}, {right})"]
        name = f"test_{_slug(info.qualname)}_associative"
        code = _decorators(call, max_examples, [f"{third}={a.strategy.code}"])
        code += f"def {name}({', '.join([*call.variables(), third])}):\n" + _indent(lines)
        out.append(PropertyTest("associative", name, code, (info.qualname,), frozenset({"_same"})))
    return out


# ---- equivalence with the base version (refactors) ----------------------------------------------------


def equivalence(
    call: Call, base_source: str, max_examples: int, module: ModuleInfo | None = None
) -> tuple[PropertyTest, str] | None:
    """A test that the head function behaves as its base version; returns it and the module-level loader code.

    The base version is embedded as text and compiled into a copy of the head module's namespace, so its
    helpers and imports resolve as they do in the head; nothing outside the repository is needed.
    """
    info = call.info
    if info.class_name is not None and info.method_kind != "staticmethod":
        return None
    if info.is_async or info.is_generator or call.receiver is not None or not call.args:
        return None  # (nothing to vary: `@given()` is no property test)
    try:
        tree = ast.parse(base_source)
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef) or tree.body[0].name != info.name:
        return None
    if module is not None and _unbound_at_definition(tree.body[0], module):
        return None  # its defaults or decorators need a name the module no longer has (`del re`): not loadable
    base_name = f"base_{_slug(info.qualname)}"
    constant = f"{base_name.upper()}_SOURCE"
    loader = (
        f"# The base version of {info.qualname}, before this change: the new code must behave the same.\n"
        f"{constant} = {base_source!r}\n"
        f"{base_name} = _load_base({constant}, {info.name!r})\n"
    )
    head_call = call.expression()
    args = head_call[head_call.index("(") + 1 : -1]
    lines = [
        f"new = _outcome({MODULE_ALIAS}.{info.qualname}{', ' + args if args else ''})",
        f"old = _outcome({base_name}{', ' + args if args else ''})",
        "assert new[0] == old[0] and _same(new[1], old[1]), (new, old)",
    ]
    name = f"test_{_slug(info.qualname)}_matches_base"
    code = _decorators(call, max_examples) + f"def {name}({', '.join(call.variables())}):\n" + _indent(lines)
    test = PropertyTest("equivalence", name, code, (info.qualname,), frozenset({"_same", "_outcome", "_load_base"}))
    return test, loader


def _unbound_at_definition(node: ast.FunctionDef, module: ModuleInfo) -> bool:
    """Does defining the function need a name that the module's namespace will not have?"""
    if "*" in module.bound_names:
        return False  # a star import binds names that cannot be listed
    evaluated = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None), *node.decorator_list]
    names = {n.id for e in evaluated for n in ast.walk(e) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    known = module.bound_names | frozenset(module.functions) | frozenset(dir(builtins))
    return bool(names - known)


LOAD_BASE = '''def _load_base(source, name):
    """Compile an older version of a function into a copy of the module's namespace."""
    namespace = dict(vars(mod))
    exec(compile(source, f"<base version of {name}>", "exec"), namespace)
    return namespace[name]
'''
HELPERS["_load_base"] = LOAD_BASE.replace("vars(mod)", f"vars({MODULE_ALIAS})")


def family_tests(
    info: FunctionInfo,
    module: ModuleInfo,
    max_examples: int,
    base_source: str | None = None,
) -> tuple[list[PropertyTest], list[str]]:
    """Every property test that applies to `info` (no-crash first) and module-level code they need."""
    required = plan_call(info, module, optional=False)
    if required is None:
        return [], []
    full = plan_call(info, module, optional=True) or required
    if not full.args and full.receiver is None:
        return [], []  # nothing to vary: `@given()` without strategies is not a property test
    tests: list[PropertyTest] = [no_crash(full, module, max_examples)]
    preamble: list[str] = []
    for forward, backward in inverse_pairs(module):
        if info.qualname in (forward, backward):
            first = plan_call(module.functions[forward], module, optional=False)
            if first is not None:
                found = roundtrip(first, module.functions[backward], module, max_examples)
                if found is not None:
                    tests.append(found)
    for maker in (idempotent, sorted_invariant, length_invariant, clamp_invariant):
        found = maker(required, max_examples)
        if found is not None:
            tests.append(found)
    for guarded in (aggregate_invariant, selection_invariant, parts_invariant, width_invariant):
        found = guarded(required, module, max_examples)
        if found is not None:
            tests.append(found)
    tests.extend(algebra(required, max_examples))
    if base_source is not None and base_source.strip() != info.source.strip():
        eq = equivalence(full, base_source, max_examples, module)
        if eq is not None:
            tests.append(eq[0])
            preamble.append(eq[1])
    return tests, preamble
