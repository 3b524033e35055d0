"""Functions in a tree-sitter tree with their size metrics: complexity, length, parameters, nesting depth."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from tree_sitter import Node, Query, QueryCursor

from analyzers.languages import get_language


@dataclass(frozen=True)
class LangSpec:
    functions: frozenset[str]  # always a function boundary
    anonymous: frozenset[str]  # a boundary only when bound to a name (`const f = () => ...`)
    classes: frozenset[str]
    decisions: frozenset[str]  # each adds one to the cyclomatic complexity
    logical: frozenset[str]  # binary nodes that count when their operator is short-circuiting
    nesting: frozenset[str]  # control structures that add one level of nesting
    param_nodes: frozenset[str] = frozenset()  # parameter node types counted (empty: every named child)
    case_default_prefix: str = ""  # a decision node whose text starts with this is a default branch
    decisions_in: frozenset[tuple[str, str]] = frozenset()  # (node type, parent type) pairs that also count


_JS_FUNCTIONS = frozenset(
    {"function_declaration", "generator_function_declaration", "method_definition", "function_signature"}
)
_JS = LangSpec(
    functions=_JS_FUNCTIONS,
    anonymous=frozenset({"arrow_function", "function_expression", "function", "generator_function"}),
    classes=frozenset({"class_declaration", "class", "abstract_class_declaration", "interface_declaration"}),
    decisions=frozenset(
        {
            "if_statement",
            "for_statement",
            "for_in_statement",
            "while_statement",
            "do_statement",
            "catch_clause",
            "ternary_expression",
            "switch_case",
        }
    ),
    logical=frozenset({"binary_expression"}),
    nesting=frozenset(
        {"if_statement", "for_statement", "for_in_statement", "while_statement", "do_statement", "try_statement"}
        | {"switch_statement"}
    ),
)

SPECS: dict[str, LangSpec] = {
    "python": LangSpec(
        functions=frozenset({"function_definition"}),
        anonymous=frozenset(),
        classes=frozenset({"class_definition"}),
        # counted as PyCQA mccabe (ruff C901) counts, so the numbers match what Python teams already see:
        # statements branch; boolean operators, conditional expressions and comprehensions do not
        decisions=frozenset(
            {"if_statement", "elif_clause", "for_statement", "while_statement", "except_clause", "case_clause"}
        ),
        logical=frozenset(),
        decisions_in=frozenset({("else_clause", "try_statement")}),
        nesting=frozenset(
            {"if_statement", "for_statement", "while_statement", "try_statement", "with_statement", "match_statement"}
        ),
    ),
    "javascript": _JS,
    "typescript": _JS,
    "tsx": _JS,
    "go": LangSpec(
        functions=frozenset({"function_declaration", "method_declaration"}),
        anonymous=frozenset({"func_literal"}),
        classes=frozenset(),
        decisions=frozenset({"if_statement", "for_statement", "expression_case", "type_case", "communication_case"}),
        logical=frozenset({"binary_expression"}),
        nesting=frozenset(
            {
                "if_statement",
                "for_statement",
                "expression_switch_statement",
                "type_switch_statement",
                "select_statement",
            }
        ),
        param_nodes=frozenset({"parameter_declaration", "variadic_parameter_declaration"}),
    ),
    "java": LangSpec(
        functions=frozenset({"method_declaration", "constructor_declaration", "compact_constructor_declaration"}),
        anonymous=frozenset({"lambda_expression"}),
        classes=frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}),
        decisions=frozenset(
            {
                "if_statement",
                "for_statement",
                "enhanced_for_statement",
                "while_statement",
                "do_statement",
                "catch_clause",
                "ternary_expression",
                "switch_label",
            }
        ),
        logical=frozenset({"binary_expression"}),
        nesting=frozenset(
            {
                "if_statement",
                "for_statement",
                "enhanced_for_statement",
                "while_statement",
                "do_statement",
                "try_statement",
                "try_with_resources_statement",
                "switch_expression",
            }
        ),
        param_nodes=frozenset({"formal_parameter", "spread_parameter"}),
        case_default_prefix="default",
    ),
}

_SHORT_CIRCUIT = frozenset({"&&", "||", "??", "and", "or"})
_NOT_PARAMS = frozenset({"comment", "keyword_separator", "positional_separator", "receiver_parameter", "(", ")", ","})


def supported(lang: str | None) -> bool:
    return lang in SPECS


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    qualname: str
    start_line: int  # 1-based, the definition itself (decorators excluded)
    end_line: int
    header_line: int  # the line carrying the name
    params: int  # parameter count (Python's self/cls of a method excluded)
    complexity: int
    nesting: int  # deepest nesting of control structures inside the body
    nesting_line: int  # where that depth is reached
    own_lines: frozenset[int]  # lines of this function minus those of nested named functions
    header: str  # the header line's text, stripped (a stable fingerprint anchor)
    node: Node = field(compare=False, hash=False, repr=False)
    doc_lines: int = 0  # lines of the docstring (Python): documentation is not length to split up

    @property
    def length(self) -> int:
        return self.end_line - self.start_line + 1 - self.doc_lines


LineFilter = Callable[[int, int], bool]


def functions(
    root: Node, lang: str, source: bytes, within: LineFilter | None = None, *, body: list[Node] | None = None
) -> list[FunctionInfo]:
    """Every named function of the tree, ordered by position.

    `within(start, end)` keeps only functions whose lines it accepts (the changed lines), so a review
    measures the functions it touched, not the whole file. The functions are found by a tree-sitter query
    (the walk runs in C), not by visiting every node in Python. `body`, when given, is what that query
    returns: every node of the `body_kinds(lang)` types under `root`, in document order.
    """
    spec = SPECS.get(lang)
    if spec is None:
        return []
    lines: list[str] | None = None
    out: list[FunctionInfo] = []
    if body is None:
        body = nodes_of_types(root, lang, _body_kinds(spec))  # one pass in C serves every function's metrics
    starts = [n.start_byte for n in body]
    boundary_kinds = spec.functions | spec.anonymous
    for node in body:
        if node.type not in boundary_kinds:
            continue
        if within is not None and not within(node.start_point.row + 1, node.end_point.row + 1):
            continue  # an ancestor's range holds the node's, so the ancestors pass whenever the node does
        if not is_boundary(node, spec):
            continue
        if lines is None:
            lines = source.decode("utf-8", "replace").split("\n")
        scope, in_class = _context(node, lang, spec)
        name = function_name(node, lang) or "<anonymous>"
        prefix = scope + _receiver(node, lang)
        inside = body[bisect.bisect_left(starts, node.start_byte) : bisect.bisect_left(starts, node.end_byte)]
        out.append(_measure(node, lang, spec, name, ".".join((*prefix, name)), in_class, lines, inside))
    out.sort(key=lambda f: (f.start_line, -f.end_line))
    return out


_CLASS_BODY = frozenset({"block", "class_body", "decorated_definition"})


def _context(node: Node, lang: str, spec: LangSpec) -> tuple[tuple[str, ...], bool]:
    """(enclosing names, outermost first; whether the node is a class member) from its ancestors."""
    names: list[str] = []
    in_class: bool | None = None
    parent = node.parent
    while parent is not None:
        if is_boundary(parent, spec):
            if in_class is None:
                in_class = False
            names.append(function_name(parent, lang) or "<anonymous>")
            names.extend(reversed(_receiver(parent, lang)))
        elif parent.type in spec.classes:
            if in_class is None:
                in_class = True
            names.append(_field_text(parent, "name") or "<class>")
        elif in_class is None and parent.type not in _CLASS_BODY:
            in_class = False
        parent = parent.parent
    return tuple(reversed(names)), bool(in_class)


_queries: dict[tuple[str, frozenset[str]], Query | None] = {}


def _kinds_query(lang: str, types: frozenset[str]) -> Query | None:
    """One compiled query capturing every named node of these types (cached per language and type set)."""
    key = (lang, types)
    if key in _queries:
        return _queries[key]
    language = get_language(lang)
    query: Query | None = None
    if language is not None:
        known = sorted(t for t in types if language.id_for_node_kind(t, True))
        if known:
            try:
                query = Query(language, "[" + " ".join(f"({t})" for t in known) + "] @n")
            except Exception:  # a kind the grammar lists but a query cannot name: fall back to walking
                query = None
    _queries[key] = query
    return query


def nodes_of_types(root: Node, lang: str, types: Collection[str]) -> list[Node]:
    """Named nodes of these types under `root` (itself included), in document order, found in C."""
    wanted = frozenset(types)
    if not wanted:
        return []
    query = _kinds_query(lang, wanted)
    if query is None:
        return [n for n in iter_nodes(root) if n.type in wanted]
    found = QueryCursor(query).captures(root).get("n", [])
    found.sort(key=lambda n: (n.start_byte, -n.end_byte))
    return found


def is_boundary(node: Node, spec: LangSpec) -> bool:
    if node.type in spec.functions:
        return True
    return node.type in spec.anonymous and _bound_name(node) is not None


def function_name(node: Node, lang: str) -> str | None:
    name = _field_text(node, "name")
    if name is not None:
        return name
    return _bound_name(node)


def _bound_name(node: Node) -> str | None:
    parent = node.parent
    if parent is None:
        return None
    if parent.type == "variable_declarator" and parent.child_by_field_name("value") == node:
        return _field_text(parent, "name")
    if parent.type in ("pair", "public_field_definition", "field_definition"):
        key = parent.child_by_field_name("key") or parent.child_by_field_name("name")
        return _text(key) if key is not None else None
    if parent.type == "assignment_expression" and parent.child_by_field_name("right") == node:
        left = parent.child_by_field_name("left")
        if left is not None:
            return _text(left).rsplit(".", 1)[-1]
    return None


def _receiver(node: Node, lang: str) -> tuple[str, ...]:
    if lang != "go" or node.type != "method_declaration":
        return ()
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return ()
    for decl in receiver.named_children:
        kind = decl.child_by_field_name("type")
        if kind is not None:
            return (_text(kind).lstrip("*").split("[", 1)[0],)
    return ()


def _field_text(node: Node, name: str) -> str | None:
    child = node.child_by_field_name(name)
    return _text(child) if child is not None else None


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _measure(
    node: Node,
    lang: str,
    spec: LangSpec,
    name: str,
    qualname: str,
    in_class: bool,
    lines: list[str],
    inside: list[Node],
) -> FunctionInfo:
    name_node = node.child_by_field_name("name")
    header_row = (name_node or node).start_point.row
    complexity, depth, depth_row, nested = _walk_body(node, spec, inside)
    start_row, end_row = node.start_point.row, node.end_point.row
    own = set(range(start_row + 1, end_row + 2))
    for inner in nested:
        own.difference_update(range(inner.start_point.row + 1, inner.end_point.row + 2))
    header = lines[header_row].strip() if header_row < len(lines) else name
    return FunctionInfo(
        name=name,
        qualname=qualname,
        start_line=start_row + 1,
        end_line=end_row + 1,
        header_line=header_row + 1,
        params=count_params(node, lang, spec, in_class),
        complexity=complexity,
        nesting=depth,
        nesting_line=depth_row + 1,
        own_lines=frozenset(own),
        header=header,
        node=node,
        doc_lines=_docstring_lines(node) if lang == "python" else 0,
    )


def _docstring_lines(func: Node) -> int:
    """How many lines a Python function's docstring takes (0 without one)."""
    body = func.child_by_field_name("body")
    first = body.named_children[0] if body is not None and body.named_children else None
    if first is None or first.type != "expression_statement" or not first.named_children:
        return 0
    if first.named_children[0].type not in ("string", "concatenated_string"):
        return 0
    return first.end_point.row - first.start_point.row + 1


def body_kinds(lang: str) -> frozenset[str]:
    """The node types `functions` reads: function boundaries and what counts for complexity and nesting."""
    spec = SPECS.get(lang)
    return _body_kinds(spec) if spec is not None else frozenset()


def _body_kinds(spec: LangSpec) -> frozenset[str]:
    return (
        spec.decisions
        | spec.logical
        | spec.nesting
        | spec.functions
        | spec.anonymous
        | frozenset(t for t, _ in spec.decisions_in)
    )


def _walk_body(func: Node, spec: LangSpec, inside: list[Node]) -> tuple[int, int, int, list[Node]]:
    """Complexity, deepest nesting and its row, and the nested named functions (measured on their own).

    `inside`: the nodes of the body kinds that start within the function, in document order.
    """
    complexity = 1
    deepest, deepest_row = 0, func.start_point.row
    nested: list[Node] = []
    skip = (-1, -1)  # byte range of the nested function being skipped
    open_levels: list[tuple[int, int]] = []  # byte ranges of the enclosing nesting structures
    func_end = func.end_byte
    for node in inside:
        start, end = node.start_byte, node.end_byte
        if end > func_end or node.id == func.id or (skip[0] <= start and end <= skip[1]):
            continue
        if is_boundary(node, spec):
            nested.append(node)
            skip = (start, end)
            continue
        if node.type in spec.decisions and not _is_default(node, spec):
            complexity += 1
        elif spec.decisions_in and node.parent is not None and (node.type, node.parent.type) in spec.decisions_in:
            complexity += 1
        elif node.type in spec.logical and _operator(node) in _SHORT_CIRCUIT:
            complexity += 1
        if node.type in spec.nesting and not _is_else_if(node):
            while open_levels and not (open_levels[-1][0] <= start and end <= open_levels[-1][1]):
                open_levels.pop()
            open_levels.append((start, end))
            depth = len(open_levels)
            if depth >= deepest:  # ties: the last in document order, as the right-to-left walk found it
                deepest, deepest_row = depth, node.start_point.row
    return complexity, deepest, deepest_row, nested


def _is_default(node: Node, spec: LangSpec) -> bool:
    return bool(spec.case_default_prefix) and _text(node).lstrip().startswith(spec.case_default_prefix)


def _is_else_if(node: Node) -> bool:
    """`else if` continues a chain rather than nesting a new level."""
    parent = node.parent
    if node.type != "if_statement" or parent is None:
        return False
    if parent.type == "else_clause":
        return True
    return parent.type == "if_statement" and parent.child_by_field_name("alternative") == node


def _operator(node: Node) -> str:
    op = node.child_by_field_name("operator")
    return op.type if op is not None else ""


def count_params(node: Node, lang: str, spec: LangSpec, in_class: bool) -> int:
    params = node.child_by_field_name("parameters") or node.child_by_field_name("parameter")
    if params is None:
        return 0
    if params.type in ("identifier", "simple_identifier"):  # `x => ...`
        return 1
    items = [c for c in params.named_children if c.type not in _NOT_PARAMS]
    if spec.param_nodes:
        items = [c for c in items if c.type in spec.param_nodes]
    if lang == "go":
        return sum(max(1, sum(1 for c in p.named_children if c.type == "identifier")) for p in items)
    if lang == "python" and in_class and items and _text(items[0]) in ("self", "cls"):
        if not _is_staticmethod(node):
            items = items[1:]
    return len(items)


def _is_staticmethod(node: Node) -> bool:
    parent = node.parent
    if parent is None or parent.type != "decorated_definition":
        return False
    return any(_text(d).strip() == "@staticmethod" for d in parent.named_children if d.type == "decorator")


def iter_nodes(root: Node, within: LineFilter | None = None) -> Iterator[Node]:
    """Every named node, pre-order; with `within`, only those in subtrees whose lines it accepts."""
    stack = [root]
    while stack:
        node = stack.pop()
        if within is not None and not within(node.start_point.row + 1, node.end_point.row + 1):
            continue
        yield node
        stack.extend(reversed(node.named_children))
