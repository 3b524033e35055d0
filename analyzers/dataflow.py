"""Cheap intra-function taint: where a sink's argument comes from (literal, sanitised, unknown, parameter, input).

Not a full data-flow analysis: one function at a time, assignments in source order, a branch-aware
"last assignment wins" rule, propagation through calls, operators and container mutation. It answers one
question per sink argument, fast enough to run on every match of every rule.
"""

from __future__ import annotations

import ast
import bisect
import re
from dataclasses import dataclass, field
from enum import IntEnum

from tree_sitter import Language, Node, Query, QueryCursor

from analyzers.base import LazyPattern, Pattern
from analyzers.languages import NodeIndex, want_kinds


class Level(IntEnum):
    LITERAL = 0  # a constant: not attacker-controlled
    SANITIZED = 1  # passed through a sanitiser for this kind of sink
    UNKNOWN = 2  # a non-literal of unknown origin
    PARAM = 3  # a parameter of the enclosing function
    SOURCE = 4  # request data, input(), environment, argv


@dataclass(frozen=True)
class Value:
    level: Level
    built: bool = False  # assembled by concatenation/formatting/interpolation from a non-literal part
    origin: str | None = None  # the source text or "parameter `x`", for messages

    @property
    def tainted(self) -> bool:
        return self.level >= Level.PARAM

    @property
    def constant(self) -> bool:
        return self.level <= Level.SANITIZED


LITERAL = Value(Level.LITERAL)
UNKNOWN = Value(Level.UNKNOWN)


def join(*values: Value | None) -> Value:
    """The most dangerous of the values; `built` and `origin` follow the winner (built also accumulates)."""
    present = [v for v in values if v is not None]
    if not present:
        return LITERAL
    top = max(present, key=lambda v: v.level)
    built = any(v.built for v in present if v.level > Level.SANITIZED)
    return Value(top.level, built and top.level > Level.SANITIZED, top.origin)


@dataclass(frozen=True)
class LanguageSpec:
    """Node types and patterns that let the generic evaluator read one language."""

    functions: frozenset[str]
    param_fields: tuple[str, ...]
    identifiers: frozenset[str]
    literals: frozenset[str]
    strings: frozenset[str]  # string nodes that may hold interpolations
    interpolations: frozenset[str]
    assignments: dict[str, tuple[str, str, bool]]  # node type -> (lhs field, rhs field, augmented)
    calls: dict[str, tuple[str, str]]  # node type -> (callee field, arguments field)
    members: dict[str, str]  # node type -> field of the object (attribute/member/selector/subscript)
    name_fields: frozenset[str]  # fields naming things (method/property names), never values
    binaries: frozenset[str]
    build_operators: frozenset[str]  # binary operators that build strings
    sources: Pattern
    sanitizers: Pattern  # sink-independent sanitisers (numeric casts, ...)
    builders: Pattern  # calls that build strings from their arguments (format, join, sprintf)
    mutators: frozenset[str] = frozenset(
        {"append", "extend", "insert", "add", "update", "setdefault", "push", "unshift", "put", "putAll",
         "appendleft", "concat", "write", "Add", "Set", "WriteString", "addAll", "set"}
    )  # fmt: skip
    branches: frozenset[str] = frozenset()
    constant_name: re.Pattern[str] = field(default_factory=lambda: re.compile(r"^\$?[A-Z][A-Z0-9_]{1,}$"))
    variable_prefix: str = ""


def _rx(*parts: str) -> LazyPattern:
    """One alternation, compiled on first use: a run compiles only the languages it reads."""
    return LazyPattern("|".join(f"(?:{p})" for p in parts))


_COMMON_BRANCHES = frozenset(
    {"if_statement", "elif_clause", "else_clause", "for_statement", "while_statement", "try_statement",
     "except_clause", "catch_clause", "case_clause", "switch_case", "conditional_expression", "match_statement",
     "for_in_statement", "expression_case", "default_case", "type_switch_statement", "expression_switch_statement",
     "switch_statement", "switch_block_statement_group", "enhanced_for_statement", "do_statement", "if",
     "unless", "elsif", "else", "when", "case", "while", "until", "for", "begin", "rescue", "ternary_expression",
     "ternary", "if_modifier", "unless_modifier", "foreach_statement", "else_if_clause", "switch_default",
     "finally_clause"}
)  # fmt: skip

PYTHON = LanguageSpec(
    functions=frozenset({"function_definition", "lambda"}),
    param_fields=("parameters",),
    identifiers=frozenset({"identifier"}),
    literals=frozenset({"integer", "float", "true", "false", "none", "ellipsis"}),
    strings=frozenset({"string", "concatenated_string"}),
    interpolations=frozenset({"interpolation"}),
    assignments={
        "assignment": ("left", "right", False),
        "augmented_assignment": ("left", "right", True),
        "for_statement": ("left", "right", True),
        "named_expression": ("name", "value", False),
        "for_in_clause": ("left", "right", True),
    },
    calls={"call": ("function", "arguments")},
    members={"attribute": "object", "subscript": "value"},
    name_fields=frozenset({"attribute", "name"}),
    binaries=frozenset({"binary_operator"}),
    build_operators=frozenset({"+", "%"}),
    sources=_rx(
        r"^(?:self\.)?request\.(?:args|form|values|cookies|headers|files|json|data|get_json|get_data|GET|POST|"
        r"COOKIES|META|FILES|body|query_params|path_params|stream|query_string|full_path|url|path|environ|"
        r"view_args|params|match_info|query|content|text|read|POST\.get|GET\.get)\b",
        r"^(?:builtins\.)?(?:raw_)?input\(",
        r"^os\.environ\b",
        r"^os\.getenv\(",
        r"^sys\.argv\b",
        r"^sys\.stdin\b",
        r"^flask\.request\.",
    ),
    sanitizers=_rx(
        r"^(?:int|float|bool|len|abs|round|ord|hash|id|uuid\.UUID|uuid\.uuid4|decimal\.Decimal|Decimal|complex)\(",
    ),
    builders=_rx(r"\.format$", r"\.format_map$", r"\.join$", r"^(?:str\.)?format$", r"\.replace$", r"^str$"),
    branches=_COMMON_BRANCHES,
)

JAVASCRIPT = LanguageSpec(
    functions=frozenset(
        {
            "function_declaration",
            "function_expression",
            "arrow_function",
            "method_definition",
            "function",
            "generator_function_declaration",
            "generator_function",
        }
    ),
    param_fields=("parameters", "parameter"),
    identifiers=frozenset({"identifier", "shorthand_property_identifier_pattern"}),
    literals=frozenset({"number", "true", "false", "null", "undefined", "regex"}),
    strings=frozenset({"string", "template_string"}),
    interpolations=frozenset({"template_substitution"}),
    assignments={
        "variable_declarator": ("name", "value", False),
        "assignment_expression": ("left", "right", False),
        "augmented_assignment_expression": ("left", "right", True),
        "for_in_statement": ("left", "right", True),
    },
    calls={"call_expression": ("function", "arguments"), "new_expression": ("constructor", "arguments")},
    members={"member_expression": "object", "subscript_expression": "object"},
    name_fields=frozenset({"property", "key"}),
    binaries=frozenset({"binary_expression"}),
    build_operators=frozenset({"+"}),
    sources=_rx(
        r"^(?:req|request)\.(?:query|body|params|headers|cookies|signedCookies|url|originalUrl|path|hostname|"
        r"get|header|param|files|file)\b",
        r"^ctx\.(?:query|params|request\.(?:body|query)|headers|cookies|req\.)",
        r"^(?:window\.|document\.)?location\.(?:search|hash|href|pathname)\b",
        r"^document\.(?:URL|documentURI|referrer|cookie|baseURI)\b",
        r"^process\.argv\b",
        r"^process\.env\b",
        r"^(?:event|e|msg|message)\.data\b",
        r"^new URLSearchParams\(",
        r"^(?:this\.)?\$route\.(?:query|params)\b",
        r"^useSearchParams\(",
        r"^(?:this\.)?props\.location\b",
    ),
    sanitizers=_rx(
        r"^(?:Number|parseInt|parseFloat|Boolean|Math\.\w+|encodeURIComponent|encodeURI|escape)\(",
        r"^(?:DOMPurify|purify)\.sanitize\(",
    ),
    builders=_rx(r"\.join$", r"\.concat$", r"\.replace$", r"^String$", r"\.format$", r"^util\.format$"),
    branches=_COMMON_BRANCHES,
)

GO = LanguageSpec(
    functions=frozenset({"function_declaration", "method_declaration", "func_literal"}),
    param_fields=("parameters",),
    identifiers=frozenset({"identifier"}),
    literals=frozenset(
        {
            "int_literal",
            "float_literal",
            "imaginary_literal",
            "rune_literal",
            "true",
            "false",
            "nil",
            "interpreted_string_literal",
            "raw_string_literal",
        }
    ),
    strings=frozenset(),
    interpolations=frozenset(),
    assignments={
        "short_var_declaration": ("left", "right", False),
        "assignment_statement": ("left", "right", False),
        "var_spec": ("name", "value", False),
        "const_spec": ("name", "value", False),
        "range_clause": ("left", "right", True),
    },
    calls={"call_expression": ("function", "arguments")},
    members={"selector_expression": "operand", "index_expression": "operand"},
    name_fields=frozenset({"field"}),
    binaries=frozenset({"binary_expression"}),
    build_operators=frozenset({"+"}),
    sources=_rx(
        r"^\w+\.URL\.(?:Query\(\)|RawQuery|Path)",
        r"^\w+\.(?:FormValue|PostFormValue|Query|Param|PostForm|DefaultQuery|GetHeader|Cookie|Params\.ByName)\(",
        r"^\w+\.(?:Form|PostForm|Header|Body|Host|RequestURI)\b",
        r"^mux\.Vars\(",
        r"^os\.Args\b",
        r"^os\.Getenv\(",
        r"^os\.LookupEnv\(",
    ),
    sanitizers=_rx(r"^strconv\.(?:Atoi|ParseInt|ParseFloat|ParseBool|ParseUint)\(", r"^filepath\.Base\("),
    builders=_rx(r"^fmt\.Sprintf$", r"^strings\.Join$", r"^strings\.Replace(?:All)?$", r"^fmt\.Sprint(?:ln)?$"),
    branches=_COMMON_BRANCHES,
)

JAVA = LanguageSpec(
    functions=frozenset({"method_declaration", "constructor_declaration", "lambda_expression"}),
    param_fields=("parameters",),
    identifiers=frozenset({"identifier"}),
    literals=frozenset(
        {
            "decimal_integer_literal",
            "hex_integer_literal",
            "decimal_floating_point_literal",
            "true",
            "false",
            "null_literal",
            "character_literal",
            "string_literal",
            "class_literal",
            "octal_integer_literal",
            "binary_integer_literal",
        }
    ),
    strings=frozenset(),
    interpolations=frozenset(),
    assignments={
        "variable_declarator": ("name", "value", False),
        "assignment_expression": ("left", "right", False),
        "enhanced_for_statement": ("name", "value", True),
    },
    calls={"method_invocation": ("name", "arguments"), "object_creation_expression": ("type", "arguments")},
    members={"field_access": "object", "array_access": "array"},
    name_fields=frozenset({"field", "name", "type"}),
    binaries=frozenset({"binary_expression"}),
    build_operators=frozenset({"+"}),
    sources=_rx(
        r"\.getParameter(?:Values|Map|Names)?\(",
        r"\.(?:getHeader|getHeaders|getQueryString|getCookies|getInputStream|getReader|getRequestURI|getPathInfo)\(",
        r"^System\.getenv\(",
        r"^System\.getProperty\(",
        r"^args\b",
    ),
    sanitizers=_rx(
        r"^(?:Integer|Long|Double|Float|Short|Boolean)\.(?:parseInt|parseLong|parseDouble|valueOf|parseBoolean)\(",
        r"^(?:ESAPI\.encoder\(\)|Encode|StringEscapeUtils|HtmlUtils)\.",
    ),
    builders=_rx(r"^format$", r"^join$", r"^concat$", r"^append$", r"^replace$", r"^formatted$"),
    branches=_COMMON_BRANCHES,
)

RUBY = LanguageSpec(
    functions=frozenset({"method", "singleton_method", "lambda", "block", "do_block"}),
    param_fields=("parameters",),
    identifiers=frozenset({"identifier"}),
    literals=frozenset({"integer", "float", "true", "false", "nil", "simple_symbol", "rational", "complex"}),
    strings=frozenset({"string", "subshell", "heredoc_body"}),
    interpolations=frozenset({"interpolation"}),
    assignments={
        "assignment": ("left", "right", False),
        "operator_assignment": ("left", "right", True),
    },
    calls={"call": ("method", "arguments")},
    members={"element_reference": "object"},
    name_fields=frozenset({"method"}),
    binaries=frozenset({"binary"}),
    build_operators=frozenset({"+", "<<", "%"}),
    sources=_rx(
        r"^params\b",
        r"^request\.(?:params|query_string|body|headers|cookies|env|url|path|raw_post|query_parameters)\b",
        r"^cookies\b",
        r"^ENV\b",
        r"^ARGV\b",
        r"^(?:\$stdin\.|STDIN\.)?gets\b",
    ),
    sanitizers=_rx(r"\.to_i\b", r"\.to_f\b", r"^Integer\(", r"^Float\(", r"^Shellwords\.escape\(", r"\.shellescape\b"),
    builders=_rx(r"^format$", r"^sprintf$", r"^join$", r"^gsub$", r"^sub$"),
    branches=_COMMON_BRANCHES,
)

PHP = LanguageSpec(
    functions=frozenset({"function_definition", "method_declaration", "anonymous_function", "arrow_function"}),
    param_fields=("parameters",),
    identifiers=frozenset({"variable_name"}),
    literals=frozenset({"integer", "float", "boolean", "null", "string", "nowdoc"}),
    strings=frozenset({"encapsed_string", "heredoc"}),
    interpolations=frozenset(
        {"variable_name", "subscript_expression", "member_access_expression", "dynamic_variable_name"}
    ),
    assignments={
        "assignment_expression": ("left", "right", False),
        "augmented_assignment_expression": ("left", "right", True),
    },
    calls={
        "function_call_expression": ("function", "arguments"),
        "member_call_expression": ("name", "arguments"),
        "scoped_call_expression": ("name", "arguments"),
        "object_creation_expression": ("", "arguments"),
    },
    members={"member_access_expression": "object", "subscript_expression": ""},
    name_fields=frozenset({"name"}),
    binaries=frozenset({"binary_expression"}),
    build_operators=frozenset({"."}),
    sources=_rx(
        r"^\$_(?:GET|POST|REQUEST|COOKIE|SERVER|FILES|ENV)\b",
        r"^\$request->(?:input|get|query|post|all|cookie|header)\(",
        r"^getenv\(",
        r"^\$argv\b",
        r"^file_get_contents\(['\"]php://input",
        r"^filter_input\(",
    ),
    sanitizers=_rx(r"^(?:intval|floatval|boolval|\(int\)|\(float\)|abs|count)\(", r"^\((?:int|float|bool)\)"),
    builders=_rx(r"^sprintf$", r"^implode$", r"^str_replace$", r"^vsprintf$"),
    branches=_COMMON_BRANCHES,
    variable_prefix="$",
)

SPECS: dict[str, LanguageSpec] = {
    "python": PYTHON,
    "javascript": JAVASCRIPT,
    "typescript": JAVASCRIPT,
    "tsx": JAVASCRIPT,
    "go": GO,
    "java": JAVA,
    "ruby": RUBY,
    "php": PHP,
}


@dataclass(frozen=True)
class _Assign:
    start: int  # byte where the assignment statement starts
    rhs: Node | None  # None: a container mutation whose values are `extra`
    augmented: bool
    branches: tuple[int, ...]  # ids of the branch nodes around it (inside its function)
    extra: tuple[Node, ...] = ()


class Flow:
    """Taint evaluation over one parsed file; create one per file and reuse it for every sink."""

    def __init__(
        self, spec: LanguageSpec, source: bytes, language: Language | None = None, nodes: NodeIndex | None = None
    ) -> None:
        self.spec = spec
        self.source = source
        self.language = language
        self.nodes = nodes  # the tree's shared node index (the syntax map's), so the file is not walked again
        self._file_nodes: list[Node] | None = None
        self._file_starts: list[int] = []
        self._scopes: dict[int, dict[str, list[_Assign]]] = {}
        self._params: dict[int, frozenset[str]] = {}
        self._memo: dict[tuple[int, str, int], Value] = {}
        self._active: set[tuple[int, str, int]] = set()

    # ---- public ---------------------------------------------------------------------------------------

    def evaluate(self, node: Node, sanitizers: re.Pattern[str] | None = None) -> Value:
        """Where the value of expression `node` comes from, in the function around it."""
        return self._eval(node, node.start_byte, sanitizers, 0)

    def feeding_names(self, node: Node, hops: int = 3) -> set[str]:
        """Names in `node` and, transitively, in what was assigned to them earlier in the function."""
        func = self.enclosing_function(node)
        index = self._assignments(func, node)
        params = self._parameters(func) if func is not None else frozenset()
        names = set(_NAME.findall(self.text(node)))
        frontier = set(names)
        for _ in range(hops):
            grown: set[str] = set()
            for name in frontier:
                for a in index.get(name, []):
                    if a.start < node.start_byte:
                        for rhs in (a.rhs, *a.extra):
                            if rhs is not None:
                                grown.update(_NAME.findall(self.text(rhs)))
            frontier = grown - names
            names |= grown
        return names - params - _STOP_NAMES

    def enclosing_function(self, node: Node) -> Node | None:
        cur = node.parent
        while cur is not None:
            if cur.type in self.spec.functions:
                return cur
            cur = cur.parent
        return None

    def text(self, node: Node | None) -> str:
        if node is None:
            return ""
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    # ---- evaluation -----------------------------------------------------------------------------------

    def _eval(self, node: Node, at: int, san: re.Pattern[str] | None, depth: int) -> Value:
        if depth > 40:
            return UNKNOWN
        spec = self.spec
        t = node.type
        if t in spec.literals:
            return LITERAL
        if t in spec.strings:
            parts = [c for c in _descendants(node, spec.interpolations, spec.strings) if c is not node]
            if not parts:
                return LITERAL
            v = join(*(self._eval(p if p.type in spec.identifiers else _expr(p), at, san, depth + 1) for p in parts))
            return Value(v.level, v.level > Level.SANITIZED, v.origin)
        if t in ("comment", "lambda", "arrow_function", "function_expression", "func_literal"):
            return LITERAL
        if t == "conditional_expression" and self.spec is PYTHON and len(node.named_children) == 3:
            then, cond, other = node.named_children
            decided = self._truth(cond, at)
            if decided is not None:
                return self._eval(then if decided else other, at, san, depth + 1)
        text = self.text(node)
        if spec.sources.search(text) and t not in spec.identifiers:
            return Value(Level.SOURCE, False, _short(text))
        if t in spec.identifiers:
            return self._lookup(node, text, at, san, depth)
        if t in spec.calls:
            return self._call(node, text, at, san, depth)
        if t in spec.members:
            scoped = self._lookup_text(node, text, at, san, depth)
            if scoped is not None:
                return scoped
            if spec is PYTHON and t == "subscript":
                element = self._list_element(node, at, san, depth)
                if element is not None:
                    return element
            obj_field = spec.members[t]
            obj = node.child_by_field_name(obj_field) if obj_field else node.named_children[0]
            if obj is None:
                return UNKNOWN
            index = node.child_by_field_name("subscript") or node.child_by_field_name("index")
            values = [self._base(obj, at, san, depth + 1)]
            if index is not None and index.type not in spec.literals and index.type not in spec.strings:
                values.append(self._eval(index, at, san, depth + 1))
            return join(*values)
        if t in spec.binaries:
            op = node.child_by_field_name("operator")
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            values = [self._eval(c, at, san, depth + 1) for c in (left, right) if c is not None]
            v = join(*values)
            op_text = self.text(op) if op is not None else ""
            built = op_text in spec.build_operators and v.level > Level.SANITIZED
            return Value(v.level, built or v.built, v.origin)
        children = [
            c
            for i, c in enumerate(node.children)
            if c.is_named and c.type != "comment" and node.field_name_for_child(i) not in spec.name_fields
        ]
        if not children:
            return LITERAL  # a named leaf that is no identifier: a keyword, a property name, string content
        return join(*(self._eval(c, at, san, depth + 1) for c in children))

    def _base(self, node: Node, at: int, san: re.Pattern[str] | None, depth: int) -> Value:
        """The object of a member access or call: an unassigned plain name there is a module, package or
        class (`os.path`, `strconv.Itoa`, `Runtime.getRuntime()`), not data."""
        if node.type in self.spec.identifiers:
            name = self.text(node)
            found = self._lookup_text(node, name, at, san, depth)
            if found is not None:
                return found
            if self.spec.sources.search(name):
                return Value(Level.SOURCE, False, name)
            return LITERAL
        return self._eval(node, at, san, depth)

    def _list_element(self, node: Node, at: int, san: re.Pattern[str] | None, depth: int) -> Value | None:
        """`xs[i]` for a list built in straight-line code from a literal, `append` and `pop`: the i-th element."""
        base = node.child_by_field_name("value")
        index_node = node.child_by_field_name("subscript")
        if base is None or index_node is None or base.type != "identifier":
            return None
        try:
            index = self._const(index_node, at, depth)
        except _NotConstant:
            return None
        if not isinstance(index, int) or isinstance(index, bool):
            return None
        name = self.text(base)
        func = self.enclosing_function(node)
        use_branches = set(self._branches(node, func))
        items: list[Node] | None = None
        for n in self._scope_nodes(func if func is not None else _root(node)):
            if n.start_byte >= at:
                break
            if n.type == "assignment":
                lhs = n.child_by_field_name("left")
                rhs = n.child_by_field_name("right")
                if lhs is None or self.text(lhs) != name:
                    continue
                if rhs is None or rhs.type != "list" or not set(self._branches(n, func)) <= use_branches:
                    return None
                items = list(rhs.named_children)
            elif n.type == "augmented_assignment" and self.text(n.child_by_field_name("left")) == name:
                return None
            elif n.type == "call":
                callee = n.child_by_field_name("function")
                if callee is None or callee.type != "attribute":
                    continue
                obj = callee.child_by_field_name("object")
                if obj is None or self.text(obj) != name:
                    continue
                method = self.text(callee.child_by_field_name("attribute"))
                args = n.child_by_field_name("arguments")
                values = [a for a in (args.named_children if args is not None else []) if a.type != "comment"]
                if items is None or not set(self._branches(n, func)) <= use_branches:
                    return None
                if method == "append" and len(values) == 1:
                    items.append(values[0])
                elif method == "pop" and len(values) <= 1:
                    try:
                        where = self._const(values[0], n.start_byte, depth) if values else -1
                    except _NotConstant:
                        return None
                    if not isinstance(where, int) or not -len(items) <= where < len(items):
                        return None
                    items.pop(where)
                elif method in self.spec.mutators or method in ("remove", "clear", "reverse", "sort"):
                    return None
        if items is None or not -len(items) <= index < len(items):
            return None
        return self._eval(items[index], at, san, depth + 1)

    def _call(self, node: Node, text: str, at: int, san: re.Pattern[str] | None, depth: int) -> Value:
        spec = self.spec
        callee_field, args_field = spec.calls[node.type]
        callee = node.child_by_field_name(callee_field) if callee_field else None
        args = node.child_by_field_name(args_field)
        callee_text = self.text(callee)
        if spec.sanitizers.search(text) or (san is not None and san.search(text)):
            return Value(Level.SANITIZED)
        receiver: Node | None = None
        if callee is not None and callee.type in spec.members:
            obj_field = spec.members[callee.type]
            receiver = callee.child_by_field_name(obj_field) if obj_field else None
        elif node.type in ("method_invocation", "member_call_expression", "call"):
            receiver = node.child_by_field_name("object") or node.child_by_field_name("receiver")
        values: list[Value] = []
        if receiver is not None:
            values.append(self._base(receiver, at, san, depth + 1))
        if args is not None:
            values.extend(self._eval(a, at, san, depth + 1) for a in args.named_children if a.type != "comment")
        if receiver is not None and receiver.type in spec.identifiers and callee is not None and args is not None:
            method = callee_text.rsplit(".", 1)[-1]
            if method == "get":
                keys = self._literal_keys(tuple(a for a in args.named_children if a.type != "comment"), at)
                if keys:
                    stored = self._lookup_text(node, _keyed(self.text(receiver), keys), at, san, depth)
                    if stored is not None:
                        return stored
        if not values:
            return UNKNOWN  # f() with no data in: an opaque value
        v = join(*values)
        name = callee_text.rsplit(".", 1)[-1] if node.type in ("method_invocation", "call") else callee_text
        built = bool(spec.builders.search(name) or spec.builders.search(callee_text)) and v.level > Level.SANITIZED
        return Value(v.level, v.built or built, v.origin)

    def _lookup(self, node: Node, name: str, at: int, san: re.Pattern[str] | None, depth: int) -> Value:
        found = self._lookup_text(node, name, at, san, depth)
        if found is not None:
            return found
        if self.spec.sources.search(name):
            return Value(Level.SOURCE, False, name)
        if self.spec.constant_name.match(name):
            return LITERAL
        if name in ("True", "False", "None", "true", "false", "nil", "null", "undefined", "self", "this"):
            return LITERAL
        return UNKNOWN

    def _lookup_text(self, node: Node, name: str, at: int, san: re.Pattern[str] | None, depth: int) -> Value | None:
        """The value of variable (or dotted path) `name` just before byte `at`, innermost scope first."""
        func = self.enclosing_function(node)
        while True:
            scope_id = func.id if func is not None else -1
            key = (scope_id, name, at)
            if key in self._memo:
                return self._memo[key]
            if key in self._active:
                return None
            self._active.add(key)
            try:
                value = self._in_scope(func, node, name, at, san, depth)
            finally:
                self._active.discard(key)
            if value is not None:
                self._memo[key] = value
                return value
            if func is None:
                return None
            func = self.enclosing_function(func)

    def _in_scope(
        self, func: Node | None, use: Node, name: str, at: int, san: re.Pattern[str] | None, depth: int
    ) -> Value | None:
        assigns = self._assignments(func, use).get(name, [])
        current: Value | None = None
        if func is not None and name in self._parameters(func):
            current = Value(Level.PARAM, False, f"parameter `{name}`")
        use_branches = set(self._branches(use, func))
        for a in assigns:
            if a.start >= at:
                break
            if a.rhs is None:  # a container/builder mutation: appending data builds the value
                v = join(*(self._eval(x, a.start, san, depth + 1) for x in a.extra))
                v = Value(v.level, v.level > Level.SANITIZED, v.origin)
            else:
                v = self._eval(a.rhs, a.start, san, depth + 1)
            if a.augmented or not set(a.branches) <= use_branches:
                current = join(current, v) if current is not None else v
            else:
                current = v
        return current

    # ---- scope indexes --------------------------------------------------------------------------------

    def _parameters(self, func: Node) -> frozenset[str]:
        cached = self._params.get(func.id)
        if cached is not None:
            return cached
        names: set[str] = set()
        for fname in self.spec.param_fields:
            params = func.child_by_field_name(fname)
            if params is not None:
                self._collect_names(params, names)
        result = frozenset(names - {"self", "cls", "this"})
        self._params[func.id] = result
        return result

    def _collect_names(self, node: Node, out: set[str]) -> None:
        if node.type in self.spec.identifiers:
            out.add(self.text(node))
            return
        for i, child in enumerate(node.children):
            fname = node.field_name_for_child(i)
            if fname in ("type", "value", "default_value", "default", "return_type", "decorator"):
                continue
            if child.type in ("type", "type_annotation", "type_identifier"):
                continue
            self._collect_names(child, out)

    def _assignments(self, func: Node | None, use: Node) -> dict[str, list[_Assign]]:
        key = func.id if func is not None else -1
        cached = self._scopes.get(key)
        if cached is not None:
            return cached
        scope_node = func if func is not None else _root(use)
        index: dict[str, list[_Assign]] = {}
        # published before the walk: constant folding inside the walk reads the assignments seen so far
        self._scopes[key] = index
        spec = self.spec
        skip_until = -1  # end of the nested function being skipped (nodes come in source order)
        gated: list[tuple[int, int, list[tuple[int, int]]]] = []  # (if/match span, its live parts)
        for n in self._scope_nodes(scope_node):
            if n.id == scope_node.id or n.start_byte < skip_until:
                continue
            if gated:
                gated = [g for g in gated if g[1] > n.start_byte]  # drop spans already passed
                if not _live(n, gated):
                    continue
            t = n.type
            if t in spec.functions:
                skip_until = n.end_byte
                continue
            if spec is PYTHON and t in ("if_statement", "match_statement"):
                live = self._live_parts(n) if t == "if_statement" else self._live_cases(n)
                gated.append((n.start_byte, n.end_byte, [(p.start_byte, p.end_byte) for p in live]))
                continue
            if t in spec.assignments:
                lhs_f, rhs_f, aug = spec.assignments[t]
                lhs = n.child_by_field_name(lhs_f)
                rhs = n.child_by_field_name(rhs_f)
                if lhs is not None:
                    for target, is_aug in self._targets(lhs):
                        index.setdefault(target, []).append(
                            _Assign(n.start_byte, rhs, aug or is_aug, self._branches(n, func))
                        )
            elif t in spec.calls:
                self._mutation(n, func, index)
        for entries in index.values():
            entries.sort(key=lambda a: a.start)
        return index

    def _scope_nodes(self, scope: Node) -> list[Node]:
        """Assignments, calls, functions and Python if/match nodes under `scope`, in source order."""
        if self._file_nodes is None and self.nodes is not None:  # the shared index, sliced per scope
            self._file_nodes = self.nodes.ordered(_scope_kinds(self.spec))
            self._file_starts = [n.start_byte for n in self._file_nodes]
        if self._file_nodes is None:
            query = _scope_query(self.language, self.spec) if self.language is not None else None
            if query is None:
                return _walk(scope)
            # one query over the whole file, then sliced per scope
            found = QueryCursor(query).captures(_root(scope)).get("n", [])
            self._file_nodes = sorted(found, key=lambda n: (n.start_byte, -n.end_byte))
            self._file_starts = [n.start_byte for n in self._file_nodes]
        lo = bisect.bisect_left(self._file_starts, scope.start_byte)
        hi = bisect.bisect_left(self._file_starts, scope.end_byte)
        return [n for n in self._file_nodes[lo:hi] if n.end_byte <= scope.end_byte]

    def _targets(self, lhs: Node) -> list[tuple[str, bool]]:
        """Names assigned by a left-hand side: plain names replace, subscripts/attributes of a name augment."""
        spec = self.spec
        if lhs.type in spec.identifiers:
            return [(self.text(lhs), False)]
        if lhs.type in spec.members:
            out = [(self.text(lhs), False)]
            base = lhs
            while base.type in spec.members:
                f = spec.members[base.type]
                nxt = base.child_by_field_name(f) if f else (base.named_children[0] if base.named_children else None)
                if nxt is None:
                    break
                base = nxt
            if base.type in spec.identifiers:
                out.append((self.text(base), True))
            return out
        targets: list[tuple[str, bool]] = []
        for child in lhs.named_children:
            targets.extend(self._targets(child))
        return targets

    def _mutation(self, call: Node, func: Node | None, index: dict[str, list[_Assign]]) -> None:
        """`xs.append(v)` / `sb.append(v)` / `m.put(k, v)` taint the receiver like an augmented assignment."""
        spec = self.spec
        callee_f, args_f = spec.calls[call.type]
        callee = call.child_by_field_name(callee_f) if callee_f else None
        args = call.child_by_field_name(args_f)
        if callee is None or args is None:
            return
        receiver: Node | None = None
        method = ""
        if callee.type in spec.members:  # the method name first: most calls mutate nothing
            prop = callee.child_by_field_name("attribute") or callee.child_by_field_name("property")
            prop = prop or callee.child_by_field_name("field")
            method = self.text(prop) if prop is not None else ""
            if method not in spec.mutators:
                return
            f = spec.members[callee.type]
            receiver = callee.child_by_field_name(f) if f else None
        else:
            method = self.text(callee)
            if method not in spec.mutators:
                return
            receiver = call.child_by_field_name("object") or call.child_by_field_name("receiver")
        if receiver is None:
            return
        while receiver.type in spec.calls or receiver.type in spec.members:  # sb.append(a).append(b)
            inner_callee_f = spec.calls.get(receiver.type, ("", ""))[0]
            nxt: Node | None
            if receiver.type in spec.calls:
                c = receiver.child_by_field_name(inner_callee_f) if inner_callee_f else None
                nxt = receiver.child_by_field_name("object") or receiver.child_by_field_name("receiver")
                if nxt is None and c is not None and c.type in spec.members:
                    f = spec.members[c.type]
                    nxt = c.child_by_field_name(f) if f else None
            else:
                f = spec.members[receiver.type]
                nxt = receiver.child_by_field_name(f) if f else None
            if nxt is None:
                return
            receiver = nxt
        if receiver.type not in spec.identifiers:
            return
        values = tuple(a for a in args.named_children if a.type != "comment")
        if method in ("set", "put") and len(values) >= 2:
            keys = self._literal_keys(values[:-1], call.start_byte)
            if keys is not None:  # conf.set("s", "k", v) / map.put("k", v): a keyed store, read back by get()
                index.setdefault(_keyed(self.text(receiver), keys), []).append(
                    _Assign(call.start_byte, values[-1], False, self._branches(call, func))
                )
                return
        index.setdefault(self.text(receiver), []).append(
            _Assign(call.start_byte, None, True, self._branches(call, func), values)
        )

    def _literal_keys(self, nodes: tuple[Node, ...], at: int) -> tuple[object, ...] | None:
        if self.spec not in (PYTHON, JAVASCRIPT, JAVA):
            return None
        try:
            keys = tuple(self._const(n, at, 0) for n in nodes)
        except _NotConstant:
            return None
        return keys if all(isinstance(k, str | int) for k in keys) else None

    # ---- constant conditions (Python) -------------------------------------------------------------------

    def _live_parts(self, if_node: Node) -> list[Node]:
        """The children of an `if` that can run: a branch behind a constant-false test is dropped."""
        parts: list[Node] = []
        clauses = [if_node, *(c for c in if_node.children if c.type in ("elif_clause", "else_clause"))]
        for clause in clauses:
            if clause.type == "else_clause":
                parts.append(clause)
                break
            decided = self._truth(clause.child_by_field_name("condition"), clause.start_byte)
            if decided is None:
                parts.extend(c for c in clause.children if c.type not in ("elif_clause", "else_clause"))
                continue
            if decided:
                body = clause.child_by_field_name("consequence")
                if body is not None:
                    parts.append(body)
                break
        return parts

    def _live_cases(self, match: Node) -> list[Node]:
        """The case that runs when the subject is a constant and the cases are literals; else all of them."""
        subject = match.child_by_field_name("subject")
        body = match.child_by_field_name("body")
        if subject is None or body is None:
            return list(match.children)
        try:
            value = self._const(subject, match.start_byte, 0)
        except _NotConstant:
            return list(match.children)
        for case in (c for c in body.named_children if c.type == "case_clause"):
            pattern = next((c for c in case.named_children if c.type == "case_pattern"), None)
            options = pattern.named_children if pattern is not None else []
            if options and options[0].type == "union_pattern":
                options = options[0].named_children
            if not options and pattern is not None and self.text(pattern).strip() == "_":
                return [case]
            try:
                literals = [self._const(o, match.start_byte, 0) for o in options]
            except _NotConstant:
                return list(match.children)  # a capture or class pattern: give up
            if any(v == value for v in literals):
                return [case]
        return []

    def _truth(self, cond: Node | None, at: int) -> bool | None:
        """The value of a condition built from literals and names bound once to literals, else None."""
        if cond is None:
            return None
        try:
            return bool(self._const(cond, at, 0))
        except _NotConstant:
            return None

    def _const(self, node: Node, at: int, depth: int) -> object:
        if depth > 20:
            raise _NotConstant
        t = node.type
        text = self.text(node)
        kids = node.named_children
        if t in ("integer", "float"):
            return ast.literal_eval(text)
        if t == "string" and not any(c.type == "interpolation" for c in kids):
            return ast.literal_eval(text)
        if t in ("true", "false", "none"):
            return {"true": True, "false": False, "none": None}[t]
        if t == "parenthesized_expression" and len(kids) == 1:
            return self._const(kids[0], at, depth + 1)
        if t == "identifier":
            return self._const_name(node, text, at, depth)
        if t == "not_operator" and len(kids) == 1:
            return not self._const(kids[0], at, depth + 1)
        if t == "unary_operator" and len(kids) == 1 and text.startswith("-"):
            return -self._number(self._const(kids[0], at, depth + 1))
        if t == "binary_operator" and len(kids) == 2:
            op = self.text(node.child_by_field_name("operator"))
            a, b = (self._const(k, at, depth + 1) for k in kids)
            return _binary(op, a, b)
        if t == "boolean_operator" and len(kids) == 2:
            op = self.text(node.child_by_field_name("operator"))
            a = self._const(kids[0], at, depth + 1)
            if (op == "and" and not a) or (op == "or" and a):
                return a
            return self._const(kids[1], at, depth + 1)
        if t == "comparison_operator" and len(kids) == 2:
            ops = [self.text(c) for c in node.children if not c.is_named]
            a, b = (self._const(k, at, depth + 1) for k in kids)
            return _compare(" ".join(ops), a, b)
        if t == "subscript" and len(kids) == 2:
            value, index = (self._const(k, at, depth + 1) for k in kids)
            if isinstance(value, str | tuple | list) and isinstance(index, int) and -len(value) <= index < len(value):
                return value[index]
        raise _NotConstant

    def _const_name(self, node: Node, name: str, at: int, depth: int) -> object:
        func = self.enclosing_function(node)
        if func is not None and name in self._parameters(func):
            raise _NotConstant
        assigns = [a for a in self._assignments(func, node).get(name, []) if a.start < at]
        if len(assigns) != 1 or assigns[0].augmented or assigns[0].rhs is None:
            raise _NotConstant
        return self._const(assigns[0].rhs, assigns[0].start, depth + 1)

    @staticmethod
    def _number(value: object) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _NotConstant
        return value

    def _branches(self, node: Node, func: Node | None) -> tuple[int, ...]:
        out: list[int] = []
        cur = node.parent
        while cur is not None and (func is None or cur.id != func.id):
            if cur.type in self.spec.branches:
                out.append(cur.id)
            cur = cur.parent
        return tuple(out)


_scope_queries: dict[tuple[int, int], Query | None] = {}


def _scope_query(language: Language, spec: LanguageSpec) -> Query | None:
    """One query that finds every node the scope index needs (compiled once per language)."""
    key = (id(language), id(spec))
    if key in _scope_queries:
        return _scope_queries[key]
    kinds = []
    for kind in sorted(_scope_kinds(spec)):
        try:
            Query(language, f"({kind}) @n")
        except Exception:  # a node type this grammar version does not have
            continue
        kinds.append(f"({kind})")
    query = Query(language, "[" + " ".join(kinds) + "] @n") if kinds else None
    _scope_queries[key] = query
    return query


def _scope_kinds(spec: LanguageSpec) -> frozenset[str]:
    """The node kinds the scope index reads: assignments, calls, functions and Python's if/match."""
    kinds = frozenset({*spec.assignments, *spec.calls, *spec.functions})
    return (kinds | {"if_statement", "match_statement"}) if spec is PYTHON else kinds


for _lang, _spec in SPECS.items():
    want_kinds(_lang, _scope_kinds(_spec))


def _walk(scope: Node) -> list[Node]:
    out: list[Node] = []
    stack = [scope]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(n.children))
    return out


def _inside(node: Node, spans: list[tuple[int, int]]) -> bool:
    return any(a <= node.start_byte and node.end_byte <= b for a, b in spans)


def _live(node: Node, gated: list[tuple[int, int, list[tuple[int, int]]]]) -> bool:
    """False when `node` sits in a branch that constant folding showed cannot run."""
    for a, b, live in gated:
        if a <= node.start_byte and node.end_byte <= b and not _inside(node, live):
            return False
    return True


def _keyed(receiver: str, keys: tuple[object, ...]) -> str:
    """The scope-index name of a keyed store: what `receiver.get(*keys)` reads back."""
    return f"{receiver}\x00get\x00{keys!r}"


_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_STOP_NAMES = frozenset(
    {"if", "not", "in", "and", "or", "is", "str", "len", "None", "True", "False", "self", "this", "return"}
)


class _NotConstant(Exception):
    """A condition whose value is not known without running the code."""


def _binary(op: str, a: object, b: object) -> object:
    if isinstance(a, bool) or isinstance(b, bool):
        raise _NotConstant
    if isinstance(a, int | float) and isinstance(b, int | float):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op in ("//", "%", "/") and b == 0:
            raise _NotConstant
        if op == "//":
            return a // b
        if op == "%":
            return a % b
        if op == "/":
            return a / b
    if isinstance(a, str) and isinstance(b, str) and op == "+":
        return a + b
    raise _NotConstant


def _compare(op: str, a: object, b: object) -> bool:
    try:
        if op == "in":
            return a in b  # type: ignore[operator]
        if op == "not in":
            return a not in b  # type: ignore[operator]
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op == "<":
            return a < b  # type: ignore[operator]
        if op == ">":
            return a > b  # type: ignore[operator]
        if op == "<=":
            return a <= b  # type: ignore[operator]
        if op == ">=":
            return a >= b  # type: ignore[operator]
    except TypeError:
        raise _NotConstant from None
    raise _NotConstant


def _root(node: Node) -> Node:
    cur = node
    while cur.parent is not None:
        cur = cur.parent
    return cur


def _descendants(node: Node, wanted: frozenset[str], strings: frozenset[str]) -> list[Node]:
    """Interpolation nodes directly inside a string (not inside nested strings of those interpolations)."""
    out: list[Node] = []
    stack = list(node.named_children)
    while stack:
        n = stack.pop()
        if n.type in wanted:
            out.append(n)
            continue
        if n.type in strings:
            continue
        stack.extend(n.named_children)
    return out


def _expr(interp: Node) -> Node:
    """The expression inside an interpolation node (`{x}`, `${x}`, `#{x}`)."""
    expr = interp.child_by_field_name("expression")
    if expr is not None:
        return expr
    named = [c for c in interp.named_children if c.type not in ("format_specifier", "type_conversion")]
    return named[0] if len(named) == 1 else interp


def _short(text: str, limit: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"
