"""The quality analyzer: size metrics per changed function and precise hygiene rules on changed lines."""

from __future__ import annotations

import posixpath
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from typing import Any

from tree_sitter import Node, Tree

from analyzers.base import AnalyzerContext, Confidence, FilterMode, Finding, Fix, Severity
from analyzers.diff import ChangeSet
from analyzers.languages import NodeIndex, detect_language, new_parser, want_kinds
from analyzers.metrics import SPECS as METRIC_SPECS
from analyzers.metrics import FunctionInfo, body_kinds, functions, iter_nodes, supported
from analyzers.testmap import TestIndex, is_test_path

NAME = "quality"
DEFAULTS: Mapping[str, int] = {
    "max_complexity": 10,
    "max_function_lines": 80,
    "max_params": 6,
    "max_nesting": 4,
    "max_untested_hints": 5,
}
MAX_SOURCE_BYTES = 1_000_000
JS_LANGS = frozenset({"javascript", "typescript", "tsx"})
COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})
_START_BYTE = attrgetter("start_byte")


@dataclass(frozen=True)
class Source:
    """One parsed file of the change: what every rule reads."""

    path: str
    lang: str
    text: str
    data: bytes
    tree: Tree
    scope: frozenset[int] | None  # new-file lines in scope for the filter mode; None: every line
    syntax: Any = None  # the syntax map's FileSyntax, when there is one: its symbols name findings

    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def functions(self) -> list[FunctionInfo]:
        if not supported(self.lang):
            return []
        body = self._nodes.ordered(body_kinds(self.lang))
        return functions(self.tree.root_node, self.lang, self.data, self.within, body=body)

    def line(self, n: int) -> str:
        lines = self.lines
        return lines[n - 1] if 0 < n <= len(lines) else ""

    @cached_property
    def _scope_prefix(self) -> list[int]:
        """prefix[n]: how many lines 1..n are in scope, so a range test is two lookups."""
        size = max(self.scope or (0,)) + 1
        prefix = [0] * (size + 1)
        for n in range(1, size + 1):
            prefix[n] = prefix[n - 1] + (1 if self.scope is not None and n in self.scope else 0)
        return prefix

    def in_scope(self, start: int, end: int | None = None) -> bool:
        if self.scope is None:
            return True
        prefix = self._scope_prefix
        top = len(prefix) - 1
        last = end if end is not None and end > start else start
        last = last if last < top else top  # min/max spelt out: this runs for every candidate node
        first = start if start > 1 else 1
        return first <= last and prefix[last] - prefix[first - 1] > 0

    @property
    def within(self) -> Callable[[int, int], bool] | None:
        """The pruning predicate for tree walks: None (walk everything) in whole-file mode."""
        return self._within

    @cached_property
    def _within(self) -> Callable[[int, int], bool] | None:
        if self.scope is None:
            return None
        scope = self.scope
        count = self.text.count("\n") + (0 if self.text.endswith("\n") else 1)
        if count and len(scope) == count and min(scope) == 1 and max(scope) == count:
            # a new file: every line is in scope, so a range is in scope unless it starts past the end
            return lambda start, end: start <= count
        return self.in_scope

    @cached_property
    def _nodes(self) -> NodeIndex:
        """Named nodes of the whole tree by kind: the syntax map's index of this tree when there is one (the
        walk runs in C, once per file for every analyzer), else one of this Source's own."""
        shared = getattr(self.syntax, "nodes", None)
        if isinstance(shared, NodeIndex) and getattr(self.syntax, "tree", None) is self.tree:
            return shared
        return NodeIndex(self.tree.root_node, self.lang)

    @cached_property
    def _by_type(self) -> dict[str, list[Node]]:
        """In-scope named nodes by type (filled per type on first request)."""
        return {}

    def nodes(self, *types: str) -> list[Node]:
        """In-scope nodes of these types, in document order."""
        index = self._by_type
        missing = [t for t in types if t not in index]
        if missing:
            captured = self._nodes.by_kind(missing)
            within = self.within
            for t in missing:
                # an ancestor's range holds the node's, so the ancestors are in scope whenever the node is
                found = captured[t]
                index[t] = (
                    found
                    if within is None
                    else [n for n in found if within(n.start_point.row + 1, n.end_point.row + 1)]
                )
        found = [n for t in types for n in index.get(t, ())]
        if len(types) > 1:
            found.sort(key=_START_BYTE)
        return found

    def first_in_scope(self, lines: Iterable[int]) -> int | None:
        scope = self.scope
        return min(lines if scope is None else scope.intersection(lines), default=None)  # the set work in C


class QualityAnalyzer:
    name = NAME
    cpu_bound = True  # pure computation: the pipeline runs it in turn with the others like it

    def analyze(self, ctx: AnalyzerContext) -> list[Finding]:
        findings, untested = self.collect(ctx)
        return findings + self.resolve(ctx, [untested])

    def collect(self, ctx: AnalyzerContext) -> tuple[list[Finding], list[UntestedCandidate]]:
        """The per-file findings, and the changed functions whose tests `resolve` still has to look for
        (that step reads the repository's test files, so it runs where the whole change is known)."""
        limits = _limits(ctx)
        mode: FilterMode = ctx.settings.get("mode", ctx.mode) or ctx.mode
        findings: list[Finding] = []
        untested: list[UntestedCandidate] = []
        for changed in ctx.changed_files():
            if changed.status.value in ("removed", "binary", "mode-only"):
                continue
            src = load_source(ctx, changed.path, scope_lines(ctx.changeset, changed.path, mode))
            if src is None:
                continue
            findings.extend(check_source(src, limits))
            if supported(src.lang) and not is_test_path(src.path) and limits["max_untested_hints"] > 0:
                untested.extend(_untested_candidates(src))
        return findings, untested

    def resolve(self, ctx: AnalyzerContext, parts: Sequence[Sequence[UntestedCandidate]]) -> list[Finding]:
        """The "no test touches it" hints for the candidates `collect` found, in the change's file order
        (`parts`: one list per group of files, the groups in order), at most the policy's limit of them."""
        untested = [c for part in parts for c in part]
        limit = _limits(ctx)["max_untested_hints"]
        if not untested or limit <= 0:
            return []
        index = TestIndex((f.path for f in ctx.changeset.files), ctx.read_file)
        return list(untested_findings(untested, index, limit))


def _limits(ctx: AnalyzerContext) -> dict[str, int]:
    return {k: _int_setting(ctx.settings.get(k), v) for k, v in DEFAULTS.items()}


def _int_setting(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def scope_lines(changeset: ChangeSet, path: str, mode: FilterMode) -> frozenset[int] | None:
    if mode == "file":
        return None
    changed = changeset.get(path)
    if changed is None:
        return frozenset()
    if mode == "added":
        return changed.added_lines
    return frozenset(n for h in changed.hunks for n in range(h.new_start, h.new_end + 1))


def load_source(ctx: AnalyzerContext, path: str, scope: frozenset[int] | None) -> Source | None:
    """The file's tree: the syntax map's when it has one, else parsed here."""
    if scope is not None and not scope:
        return None
    parsed = _from_syntax_map(ctx, path)
    if parsed is not None:
        lang, text, tree, fs = parsed
        return Source(path, lang, text, text.encode("utf-8", "surrogatepass"), tree, scope, fs)
    read = ctx.read_file(path)
    if read is None or len(read) > MAX_SOURCE_BYTES or "\x00" in read:
        return None
    language = detect_language(path, read)
    parser = new_parser(language) if language else None
    if language is None or parser is None:
        return None
    data = read.encode("utf-8", "surrogatepass")
    return Source(path, language, read, data, parser.parse(data), scope)


def _from_syntax_map(ctx: AnalyzerContext, path: str) -> tuple[str, str, Tree, Any] | None:
    if ctx.syntax is None:
        return None
    try:
        fs: Any = ctx.syntax.get(path)
    except Exception:
        return None
    tree = getattr(fs, "tree", None)
    lang = getattr(fs, "language", None)
    source = getattr(fs, "source", None)
    if tree is None or not isinstance(lang, str) or source is None:
        return None
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else str(source)
    if len(text) > MAX_SOURCE_BYTES:
        return None
    return lang, text, tree, fs


def check_source(src: Source, limits: Mapping[str, int]) -> list[Finding]:
    out: list[Finding] = []
    if supported(src.lang) and not src.path.endswith(".pyi"):  # a stub's signatures mirror an API, not code
        for fn in src.functions:
            if not _is_overload(fn):
                out.extend(metric_findings(src, fn, limits))
    if src.lang == "python":
        out.extend(python_findings(src))
    elif src.lang in JS_LANGS:
        out.extend(js_findings(src))
    if src.lang in ("go", "java"):
        out.extend(unreachable_findings(src))
        out.extend(empty_catch_findings(src))
    out.extend(todo_findings(src))
    out.extend(commented_code_findings(src))
    return out


# ---- findings -------------------------------------------------------------------------------------


def _finding(
    src: Source,
    rule: str,
    severity: Severity,
    confidence: Confidence,
    title: str,
    message: str,
    start: int,
    end: int,
    code: str,
    symbol: str | None = None,
    fix: Fix | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Finding:
    return Finding(
        rule=f"{NAME}/{rule}",
        analyzer=NAME,
        severity=severity,
        confidence=confidence,
        message=message,
        path=src.path,
        start_line=start,
        end_line=max(start, end),
        title=title,
        symbol=symbol,
        code=code.strip(),
        fix=fix,
        extra=dict(extra or {}),
    )


def _symbol_at(src: Source, line: int) -> str | None:
    """Qualified name of the innermost symbol around `line`: the syntax map's when present (so every
    analyzer names a place alike), else the innermost function found here."""
    innermost = getattr(src.syntax, "innermost", None)
    if callable(innermost):
        return getattr(innermost(line), "qualname", None)
    best: FunctionInfo | None = None
    for fn in src.functions:
        if fn.start_line <= line <= fn.end_line and (best is None or fn.start_line >= best.start_line):
            best = fn
    return best.qualname if best is not None else None


def _row(node: Node) -> int:
    return node.start_point.row + 1


def _end_row(node: Node) -> int:
    return node.end_point.row + 1


def _text(node: Node | None) -> str:
    return (node.text or b"").decode("utf-8", "replace") if node is not None else ""


# ---- per-function metrics -------------------------------------------------------------------------


def _is_overload(fn: FunctionInfo) -> bool:
    """A typing.overload signature: it restates the implementation's parameters, so its size is not its own."""
    parent = fn.node.parent
    if parent is None or parent.type != "decorated_definition":
        return False
    return any(
        child.type == "decorator" and (child.text or b"").decode("utf-8", "replace").rstrip().endswith("overload")
        for child in parent.children
    )


def metric_findings(src: Source, fn: FunctionInfo, limits: Mapping[str, int]) -> list[Finding]:
    """Size findings for a function whose own lines changed, anchored on its header line.

    When the header itself is not a changed line the range runs from the header to the first changed
    line of the body, so a line-based diff filter keeps it and the comment lands inside the change.
    """
    first_changed = src.first_in_scope(fn.own_lines)
    if first_changed is None:
        return []
    end = fn.header_line if src.in_scope(fn.header_line) else max(first_changed, fn.header_line)
    checks = (
        ("complexity", fn.complexity, limits["max_complexity"], "Cyclomatic complexity", "branches"),
        ("function-length", fn.length, limits["max_function_lines"], "Function length", "lines"),
        ("too-many-params", fn.params, limits["max_params"], "Parameter count", "parameters"),
        ("deep-nesting", fn.nesting, limits["max_nesting"], "Nesting depth", "levels"),
    )
    out: list[Finding] = []
    for rule, value, limit, label, unit in checks:
        if value <= limit:
            continue
        hint = {
            "complexity": "split it into smaller functions or replace branches with a lookup",
            "function-length": "extract cohesive steps into helper functions",
            "too-many-params": "group related parameters into an object or use keyword-only options",
            "deep-nesting": f"use early returns or extract the inner block (deepest at line {fn.nesting_line})",
        }[rule]
        severity = Severity.MEDIUM if value > 2 * limit else Severity.LOW
        out.append(
            _finding(
                src,
                rule,
                severity,
                Confidence.HIGH,
                f"{label} {value} exceeds {limit}",
                f"`{fn.qualname}` has {label.lower()} {value} (limit {limit} {unit}); {hint}.",
                fn.header_line,
                end,
                fn.header,
                symbol=fn.qualname,
                extra={"scope": "symbol", "value": value, "limit": limit, "symbol_end_line": fn.end_line},
            )
        )
    return out


# ---- Python ---------------------------------------------------------------------------------------

_BROAD = frozenset({"Exception", "BaseException", "builtins.Exception", "builtins.BaseException"})
_MUTABLE_NODES = frozenset(
    {"list", "dictionary", "set", "list_comprehension", "dictionary_comprehension", "set_comprehension"}
)
_MUTABLE_CALLS = frozenset(
    {"list", "dict", "set", "bytearray", "defaultdict", "OrderedDict", "deque", "Counter"}
    | {"collections.defaultdict", "collections.OrderedDict", "collections.deque", "collections.Counter"}
)
_PDB_MODULES = frozenset({"pdb", "ipdb", "pudb", "rpdb", "web_pdb", "pdbpp"})
_DEBUG_CALL = re.compile(r"breakpoint\(\)|(%s)\.set_trace\(\)" % "|".join(sorted(_PDB_MODULES)))  # noqa: UP031
_PRINT_OK_NAME = re.compile(r"(^|_)(main|cli|run|usage|help|print|show|display|dump|report|echo|render|debug)", re.I)
_SCRIPT_DIRS = frozenset({"scripts", "script", "bin", "tools", "examples", "example", "docs", "benchmarks", "demo"})
_SCRIPT_FILES = frozenset(
    {"__main__.py", "cli.py", "manage.py", "setup.py", "conftest.py", "noxfile.py", "fabfile.py", "tasks.py"}
)
_CLI_MODULES = ("argparse", "click", "typer", "fire", "docopt", "rich.console")
_CLI_IMPORT = re.compile(r"^\s*(import|from)\s+(argparse|click|typer|fire|docopt|rich\.console)\b", re.M)
_MAIN_GUARD = re.compile(r"""^if\s+__name__\s*==\s*['"]__main__['"]\s*:""", re.M)


def python_findings(src: Source) -> Iterator[Finding]:
    scripty = _is_script(src)
    for node in src.nodes(*_PYTHON_KINDS):
        kind = node.type
        if kind == "except_clause":
            yield from _python_except(src, node)
        elif kind in ("default_parameter", "typed_default_parameter"):
            yield from _mutable_default(src, node)
        elif kind in _BLOCKS:
            yield from _unreachable_in(src, node, lambda s: s.type in _PY_TERMINATORS)
        elif kind == "call":
            yield from _python_debug_call(src, node, scripty)


def _is_script(src: Source) -> bool:
    parts = src.path.replace("\\", "/").split("/")
    if is_test_path(src.path) or parts[-1] in _SCRIPT_FILES or parts[-1].endswith("_cli.py"):
        return True
    if any(p in _SCRIPT_DIRS for p in parts[:-1]):
        return True
    text = src.text
    if text.startswith("#!"):
        return True
    # the regexes run over the whole file: only when the words they need are in it (a substring test is ~free)
    if "__main__" in text and _MAIN_GUARD.search(text):
        return True
    return any(m in text for m in _CLI_MODULES) and _CLI_IMPORT.search(text) is not None


def _statements(block: Node | None) -> list[Node]:
    return [c for c in block.named_children if c.type not in COMMENT_TYPES] if block is not None else []


def _has_comment(block: Node | None) -> bool:
    return block is not None and any(c.type in COMMENT_TYPES for c in iter_nodes(block))


def _is_noop(stmt: Node) -> bool:
    if stmt.type in ("pass_statement", "continue_statement"):
        return True
    if stmt.type == "expression_statement" and stmt.named_child_count == 1:
        return stmt.named_children[0].type == "ellipsis"
    return False


def _except_types(clause: Node) -> list[str] | None:
    """The caught type names; None for a bare `except:`."""
    exprs = [c for c in clause.named_children if c.type not in ("block", "comment")]
    if not exprs:
        return None
    target = exprs[0]
    if target.type == "as_pattern" and target.named_children:
        target = target.named_children[0]
    if target.type in ("tuple", "parenthesized_expression"):
        return [_text(c).strip() for c in target.named_children]
    return [_text(target).strip()]


def _python_except(src: Source, clause: Node) -> Iterator[Finding]:
    if not src.in_scope(_row(clause), _end_row(clause)):
        return
    block = next((c for c in clause.named_children if c.type == "block"), None)
    body = _statements(block)
    types = _except_types(clause)
    header = src.line(_row(clause))
    swallows = bool(body) and all(_is_noop(s) for s in body) and not _has_comment(clause)
    if types is None and not swallows:
        if block is not None and any(n.type == "raise_statement" for n in iter_nodes(block)):
            return
        yield _finding(
            src,
            "bare-except",
            Severity.LOW,
            Confidence.HIGH,
            "Bare `except:`",
            "A bare `except:` also catches KeyboardInterrupt and SystemExit; catch `Exception` or a narrower type.",
            _row(clause),
            _row(clause),
            header,
            symbol=_symbol_at(src, _row(clause)),
        )
        return
    if swallows and (types is None or any(t in _BROAD for t in types)):
        caught = "everything" if types is None else "`" + ", ".join(types) + "`"
        yield _finding(
            src,
            "swallowed-exception",
            Severity.MEDIUM,
            Confidence.HIGH,
            "Exception swallowed",
            f"This handler catches {caught} and does nothing, hiding real failures; catch the specific "
            "exception you expect, or log it.",
            _row(clause),
            _end_row(clause),
            header,
            symbol=_symbol_at(src, _row(clause)),
        )


def _mutable_default(src: Source, param: Node) -> Iterator[Finding]:
    value = param.child_by_field_name("value")
    if value is None or not src.in_scope(_row(value)):
        return
    mutable = value.type in _MUTABLE_NODES
    if value.type == "call":
        mutable = _text(value.child_by_field_name("function")) in _MUTABLE_CALLS
    if not mutable:
        return
    name = _text(param.child_by_field_name("name"))
    yield _finding(
        src,
        "mutable-default",
        Severity.MEDIUM,
        Confidence.HIGH,
        "Mutable default argument",
        f"The default of `{name}` is created once and shared by every call; default to `None` and create "
        "the value inside the function.",
        _row(param),
        _end_row(param),
        _text(param),
        symbol=_symbol_at(src, _row(param)),
    )


def _python_debug_call(src: Source, call: Node, scripty: bool) -> Iterator[Finding]:
    func = call.child_by_field_name("function")
    if func is None or not src.in_scope(_row(call)):
        return
    name = _text(func)
    if name == "breakpoint" or (
        func.type == "attribute"
        and _text(func.child_by_field_name("attribute")) == "set_trace"
        and _text(func.child_by_field_name("object")) in _PDB_MODULES
    ):
        yield _finding(
            src,
            "debugger",
            Severity.MEDIUM,
            Confidence.HIGH,
            "Debugger left in",
            f"`{name}()` stops the program in a debugger; remove it before merging.",
            _row(call),
            _end_row(call),
            _text(call),
            symbol=_symbol_at(src, _row(call)),
            fix=_delete_line_fix(src, call, _is_python_debug_stmt),
        )
    elif name == "print" and not scripty:
        yield from _python_print(src, call)


def _python_print(src: Source, call: Node) -> Iterator[Finding]:
    args = call.child_by_field_name("arguments")
    if args is not None and any(
        c.type == "keyword_argument" and _text(c.child_by_field_name("name")) == "file" for c in args.named_children
    ):
        return
    fn = _enclosing_function(call)
    if fn is None:
        return
    fn_name = _text(fn.child_by_field_name("name"))
    if _PRINT_OK_NAME.search(fn_name) or _has_cli_decorator(fn):
        return
    yield _finding(
        src,
        "print",
        Severity.LOW,
        Confidence.MEDIUM,
        "print() in library code",
        "`print()` in library code writes to the user's stdout; use `logging` or return the value.",
        _row(call),
        _end_row(call),
        _text(call),
        symbol=_symbol_at(src, _row(call)),
    )


def _enclosing_function(node: Node) -> Node | None:
    parent = node.parent
    while parent is not None:
        if parent.type == "function_definition":
            return parent
        parent = parent.parent
    return None


def _has_cli_decorator(fn: Node) -> bool:
    parent = fn.parent
    if parent is None or parent.type != "decorated_definition":
        return False
    return any(re.search(r"\b(command|group|callback)\b", _text(d)) for d in parent.named_children)


def _is_python_debug_stmt(stmt: Node) -> bool:
    text = _text(stmt).strip()
    if stmt.type in ("import_statement", "import_from_statement"):
        return all(_text(c).split(".")[0] in _PDB_MODULES for c in stmt.named_children)
    return stmt.type == "expression_statement" and bool(_DEBUG_CALL.fullmatch(text))


def _delete_line_fix(src: Source, node: Node, is_debug: Any) -> Fix | None:
    """Delete the line when it holds only debug statements and the block keeps another statement."""
    stmt = node
    while stmt.parent is not None and stmt.parent.type not in ("block", "module", "statement_block", "program"):
        stmt = stmt.parent
        if stmt.type in ("switch_case", "switch_default"):
            return None
    parent = stmt.parent
    if parent is None or _row(stmt) != _end_row(stmt):
        return None
    row = _row(stmt)
    siblings = _statements(parent)
    on_line = [s for s in siblings if _row(s) <= row <= _end_row(s)]
    if not on_line or not all(_row(s) == row == _end_row(s) and is_debug(s) for s in on_line):
        return None
    if len(siblings) == len(on_line) and parent.type == "block":  # Python would be left with an empty block
        return None
    line = src.line(row).strip()
    joined = "".join(_text(s).strip() for s in on_line)
    if line.replace(" ", "").replace(";", "") != joined.replace(" ", "").replace(";", ""):
        return None  # a comment or something else shares the line
    return Fix(row, row, "")


# ---- unreachable code -----------------------------------------------------------------------------

_BLOCKS = frozenset({"block", "module", "statement_block", "statement_list", "program", "switch_case"})
_PY_TERMINATORS = frozenset({"return_statement", "raise_statement", "continue_statement", "break_statement"})
_JS_TERMINATORS = frozenset({"return_statement", "throw_statement", "break_statement", "continue_statement"})
_GO_TERMINATORS = frozenset({"return_statement", "break_statement", "continue_statement", "goto_statement"})
_HOISTED = frozenset(
    {"function_declaration", "generator_function_declaration", "empty_statement", "labeled_statement"}
    | {"type_alias_declaration", "interface_declaration", "function_signature", "variable_declaration"}
)


def unreachable_findings(src: Source) -> Iterator[Finding]:
    if src.lang != "go":
        return  # javac already rejects unreachable statements
    for node in src.nodes(*_BLOCKS):
        yield from _unreachable_in(src, node, lambda s: s.type in _GO_TERMINATORS or _is_go_panic(s))


def _is_go_panic(node: Node) -> bool:
    if node.type != "expression_statement" or node.named_child_count != 1:
        return False
    call = node.named_children[0]
    return call.type == "call_expression" and _text(call.child_by_field_name("function")) == "panic"


def _unreachable_in(src: Source, block: Node, is_terminator: Callable[[Node], bool]) -> Iterator[Finding]:
    """Statements of `block` after its first return/raise/break/continue (hoisted declarations aside)."""
    siblings = _statements(block)
    index = next((i for i, s in enumerate(siblings) if is_terminator(s)), None)
    if index is None:
        return
    terminator = siblings[index]
    rest = [s for s in siblings[index + 1 :] if s.type not in _HOISTED and not _is_bare_yield(s)]
    if not rest:
        return
    first, last = rest[0], rest[-1]
    if not src.in_scope(_row(terminator), _end_row(last)):
        return
    anchor = _row(first) if src.in_scope(_row(first), _end_row(last)) else _row(terminator)
    keyword = _text(terminator).split(None, 1)[0].rstrip(";") or terminator.type
    yield _finding(
        src,
        "unreachable-code",
        Severity.MEDIUM,
        Confidence.HIGH,
        "Unreachable code",
        f"Code after `{keyword}` on line {_row(terminator)} never runs (lines {_row(first)}-{_end_row(last)}); "
        "remove it or fix the control flow.",
        anchor,
        anchor,
        _text(first).split("\n", 1)[0],
        symbol=_symbol_at(src, _row(first)),
    )


def _is_bare_yield(stmt: Node) -> bool:
    # `raise NotImplementedError` then `yield` is the idiom that makes an abstract method a generator
    return stmt.type == "expression_statement" and _text(stmt).strip() in ("yield", "yield None")


# ---- JavaScript / TypeScript ----------------------------------------------------------------------

_CONSOLE_DEBUG = frozenset({"console.log", "console.debug", "console.trace", "console.dir"})
_JS_SCRIPT_FILE = re.compile(
    r"(^|/)(bin|scripts?|tools|examples?|docs|benchmarks?)/|(^|/)(cli|gulpfile|gruntfile|webpack\.[\w.]+|"
    r"[\w.-]+\.config)\.[cm]?[jt]sx?$",
    re.I,
)


def js_findings(src: Source) -> Iterator[Finding]:
    scripty = is_test_path(src.path) or bool(_JS_SCRIPT_FILE.search(src.path)) or src.text.startswith("#!")
    for node in src.nodes("debugger_statement", "call_expression", *_BLOCKS):
        if node.type == "debugger_statement" and src.in_scope(_row(node)):
            yield _finding(
                src,
                "debugger",
                Severity.MEDIUM,
                Confidence.HIGH,
                "Debugger left in",
                "A `debugger` statement pauses every user with open dev tools; remove it before merging.",
                _row(node),
                _end_row(node),
                _text(node),
                symbol=_symbol_at(src, _row(node)),
                fix=_delete_line_fix(src, node, lambda s: s.type == "debugger_statement"),
            )
        elif node.type == "call_expression" and not scripty and src.in_scope(_row(node)):
            callee = _text(node.child_by_field_name("function"))
            if callee in _CONSOLE_DEBUG:
                yield _finding(
                    src,
                    "console-log",
                    Severity.LOW,
                    Confidence.MEDIUM,
                    f"{callee}() left in",
                    f"`{callee}()` looks like a debugging leftover; remove it or use the project's logger.",
                    _row(node),
                    _end_row(node),
                    _text(node),
                    symbol=_symbol_at(src, _row(node)),
                )
        elif node.type in _BLOCKS:
            yield from _unreachable_in(src, node, lambda s: s.type in _JS_TERMINATORS)
    yield from empty_catch_findings(src)


def empty_catch_findings(src: Source) -> Iterator[Finding]:
    """`catch (e) {}` with nothing in it, not even a comment saying why (JS/TS, Java)."""
    for node in src.nodes("catch_clause"):
        body = node.child_by_field_name("body") or next(
            (c for c in node.named_children if c.type in ("statement_block", "block")), None
        )
        if body is None or body.named_child_count > 0 or not src.in_scope(_row(node), _end_row(node)):
            continue
        yield _finding(
            src,
            "swallowed-exception",
            Severity.MEDIUM,
            Confidence.HIGH,
            "Exception swallowed",
            "This empty `catch` hides every failure; handle or log the error, or say in a comment why it is "
            "safe to ignore.",
            _row(node),
            _end_row(node),
            src.line(_row(node)),
            symbol=_symbol_at(src, _row(node)),
        )


# ---- comments: TODO without issue, commented-out code ---------------------------------------------

# the marker opening a comment, or followed by ":" or "(" (not quoted): not prose that mentions one
_TODO = re.compile(r"^[\s#/*!-]*(TODO|FIXME)\b|(?<![`'\"])\b(TODO|FIXME)(?=\s*[:(])", re.M)
_ISSUE_REF = re.compile(r"#\d+\b|https?://\S+|\b[A-Z][A-Z0-9_]+-\d+\b|\bGH-\d+\b|\b[\w.-]+/[\w.-]+#\d+")
_LINE_MARKERS = {"python": "#", "javascript": "//", "typescript": "//", "tsx": "//", "go": "//", "java": "//"}
_DIRECTIVE = re.compile(
    r"^\s*(!|-\*-|type:|noqa|pragma|pylint:|mypy:|fmt:|isort:|ruff:|nosec|eslint|tslint|prettier|@ts-|"
    r"istanbul|c8 |go:|\+build|nolint|region|endregion|<reference|:|/)",
    re.I,
)


def todo_findings(src: Source) -> Iterator[Finding]:
    for node in src.nodes(*COMMENT_TYPES):
        if not src.in_scope(_row(node), _end_row(node)):
            continue
        text = _text(node)
        if not _TODO.search(text) or _ISSUE_REF.search(text):
            continue
        for offset, line in enumerate(text.split("\n")):
            match = _TODO.search(line)
            marker = (match.group(1) or match.group(2)) if match is not None else ""
            row = _row(node) + offset
            if match is None or not src.in_scope(row):
                continue
            yield _finding(
                src,
                "todo-without-issue",
                Severity.INFO,
                Confidence.HIGH,
                f"{marker} without an issue link",
                f"This {marker} names no issue; link one (`#123`, a URL or `KEY-123`) so it is not forgotten.",
                row,
                row,
                line,
                symbol=_symbol_at(src, row),
            )
            break


def commented_code_findings(src: Source) -> Iterator[Finding]:
    marker = _LINE_MARKERS.get(src.lang)
    if marker is None:
        return
    for run in _comment_blocks(src, marker):
        block = _code_suffix(src.lang, run)
        if block is None:
            continue
        rows = [row for row, _ in block]
        if not src.in_scope(rows[0], rows[-1]):
            continue
        body = [text for _, text in block]
        yield _finding(
            src,
            "commented-out-code",
            Severity.INFO,
            Confidence.MEDIUM,
            "Commented-out code",
            f"{len(block)} lines of commented-out code; delete them (version control keeps the history).",
            rows[0],
            rows[-1],
            "\n".join(body),
            symbol=_symbol_at(src, rows[0]),
        )


def _code_suffix(lang: str, run: list[tuple[int, str]]) -> list[tuple[int, str]] | None:
    """The run minus a few leading prose lines ("# old version:"), when the rest is 3+ lines of code."""
    for skip in range(min(4, len(run) - 2)):
        block = run[skip:]
        body = [text for _, text in block]
        if any(_DIRECTIVE.match(t) for t in body):
            return None
        if _parses_as_code(lang, body):
            return block
    return None


def _comment_blocks(src: Source, marker: str) -> Iterator[list[tuple[int, str]]]:
    """Runs of consecutive whole-line comments, as (row, text without the marker)."""
    lines = src.lines
    block: list[tuple[int, str]] = []
    for node in src.nodes(*COMMENT_TYPES):
        row = _row(node)
        raw = _text(node)
        own_line = lines[row - 1].strip() == raw.strip() if row <= len(lines) else False
        if not own_line or not raw.startswith(marker) or raw.startswith(marker + marker[-1]) or "\n" in raw:
            if block:
                yield block
            block = []
            continue
        body = raw[len(marker) :]
        body = body[1:] if body.startswith(" ") else body
        if block and row != block[-1][0] + 1:
            yield block
            block = []
        if body.strip():
            block.append((row, body))
        elif block:
            yield block
            block = []
    if block:
        yield block


_TRIVIAL_EXPRESSIONS = frozenset(
    {"identifier", "attribute", "member_expression", "string", "integer", "float", "number", "true", "false"}
    | {"none", "binary_expression", "concatenated_string", "selector_expression", "field_access"}
)
_WRAPPERS = {
    "go": ("package p\nfunc _() {\n", "\n}\n", "package p\n", "\n"),
    "java": ("class W { void w() {\n", "\n} }\n", "class W {\n", "\n}\n"),
}


def _parses_as_code(lang: str, body: list[str]) -> bool:
    code = textwrap.dedent("\n".join(body))
    parser = new_parser(lang)
    if parser is None:
        return False
    attempts = [("", "")]
    if lang in _WRAPPERS:
        inner_open, inner_close, outer_open, outer_close = _WRAPPERS[lang]
        attempts = [(inner_open, inner_close), (outer_open, outer_close)]
    for opening, closing in attempts:
        data = (opening + code + closing).encode("utf-8")
        tree = parser.parse(data)
        if tree.root_node.has_error:
            continue
        first = opening.count("\n") + 1
        code_rows = _code_rows(tree.root_node, first, first + len(body) - 1)
        return len(code_rows) >= max(3, (len(body) * 3 + 4) // 5)
    return False


def _code_rows(root: Node, first: int, last: int) -> set[int]:
    """Rows of the comment covered by real statements (calls, assignments, control flow), not bare words."""
    rows: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        start, end = _row(node), _end_row(node)
        if end < first or start > last:
            continue
        inside = first <= start and end <= last
        if inside and _is_statement(node):
            if not _trivial_statement(node):
                rows.update(range(start, end + 1))
            continue
        stack.extend(node.named_children)
    return rows


def _is_statement(node: Node) -> bool:
    return node.type.endswith(("_statement", "_declaration", "_definition")) or node.type in (
        "expression_statement",
        "lexical_declaration",
        "short_var_declaration",
        "assignment_statement",
    )


def _trivial_statement(node: Node) -> bool:
    if node.type != "expression_statement" or node.named_child_count != 1:
        return False
    inner = node.named_children[0]
    if inner.type == "assignment" and inner.child_by_field_name("right") is None:
        return True  # `key: value` reads as a Python annotation, but is usually prose or config
    if inner.type == "expression_list":
        return all(c.type in _TRIVIAL_EXPRESSIONS for c in inner.named_children)
    return inner.type in _TRIVIAL_EXPRESSIONS


# ---- changed functions without tests --------------------------------------------------------------


_PYTHON_KINDS = ("except_clause", "default_parameter", "typed_default_parameter", "call", *_BLOCKS)
_JS_KINDS = ("debugger_statement", "call_expression", "catch_clause", *_BLOCKS)
for _lang in METRIC_SPECS:  # what check_source asks of each language, fetched in the first file's walk
    want_kinds(_lang, body_kinds(_lang) | COMMENT_TYPES)
    want_kinds(_lang, _PYTHON_KINDS if _lang == "python" else _JS_KINDS if _lang in JS_LANGS else ())
    want_kinds(_lang, ("catch_clause", *_BLOCKS) if _lang in ("go", "java") else ())


@dataclass(frozen=True)
class UntestedCandidate:
    """A changed function that may lack a test: what a hint about it needs (plain data, so it can travel
    from the process that parsed the file)."""

    path: str
    name: str
    qualname: str
    header: str
    header_line: int
    end_line: int  # of the hint when it names the function


def _untested_candidates(src: Source) -> Iterator[UntestedCandidate]:
    base = posixpath.basename(src.path)
    if base in _SCRIPT_FILES or base.startswith("__init__."):
        return
    for fn in src.functions:
        changed = src.first_in_scope(fn.own_lines)
        if changed is None or fn.length < 3 or fn.name.startswith("_") or fn.name in ("main", "<anonymous>"):
            continue
        if src.lang == "go" and not fn.name[:1].isupper():
            continue  # unexported Go functions are tested through exported ones
        end = fn.header_line if src.in_scope(fn.header_line) else max(changed, fn.header_line)
        yield UntestedCandidate(src.path, fn.name, fn.qualname, fn.header, fn.header_line, end)


def untested_findings(candidates: list[UntestedCandidate], index: TestIndex, limit: int) -> Iterator[Finding]:
    """One hint per function when its module's test file does not mention it; one per file when the
    module has no test file at all (a list of every function would only repeat that fact)."""
    by_file: dict[str, list[UntestedCandidate]] = {}
    for item in candidates:
        by_file.setdefault(item.path, []).append(item)
    emitted = 0
    for path, items in by_file.items():
        untested = [item for item in items if not index.touches(path, item.name)]
        if not untested:
            continue
        tests = index.test_files(path)
        if tests:
            for fn in untested:
                if emitted >= limit:
                    return
                emitted += 1
                yield _untested(fn, f"`{fn.qualname}` changed but `{tests[0]}` does not mention it", tests)
            continue
        if emitted >= limit:
            return
        emitted += 1
        names = [f"`{f.qualname}`" for f in untested]
        listed = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        message = f"{listed} changed but no test file for this module was found"
        yield _untested(untested[0], message, (), per_file=len(names) > 1)


def _untested(fn: UntestedCandidate, what: str, tests: Iterable[str], per_file: bool = False) -> Finding:
    return Finding(
        rule=f"{NAME}/untested-change",
        analyzer=NAME,
        severity=Severity.INFO,
        confidence=Confidence.MEDIUM,
        message=f"{what}; consider adding a test (a property test may be suggested).",
        path=fn.path,
        start_line=fn.header_line,
        end_line=max(fn.header_line, fn.end_line),
        title="Changed code has no test touching it" if per_file else "Changed function has no test touching it",
        symbol=None if per_file else fn.qualname,
        code="" if per_file else fn.header.strip(),
        extra={"scope": "symbol", "test_files": tuple(tests)},
    )
