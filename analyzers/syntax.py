"""The syntax map: head-version tree-sitter parses, symbols, enclosing scopes and changed symbols per file."""

from __future__ import annotations

import bisect
import dataclasses
import inspect
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from tree_sitter import Node, Tree

from analyzers.base import Confidence, Finding, Severity
from analyzers.diff import ChangedFile, ChangeSet, FileStatus, LineKind
from analyzers.languages import NodeIndex, detect_language, new_parser, want_kinds

log = logging.getLogger(__name__)

SymbolKind = Literal["class", "function", "method"]
ParamKind = Literal["positional_only", "positional", "var_positional", "keyword_only", "var_keyword"]
ChangeKind = Literal["added", "modified"]

# Files larger than this are not parsed (line-level analysis only), keeping memory bounded per file.
MAX_PARSE_BYTES = 2_000_000
# Source bytes whose trees the map keeps (about 20-35x in memory): bounds a 3,000-file PR's footprint.
TREE_BUDGET_BYTES = 24_000_000
MAX_ISSUES_PER_FILE = 20
MAX_SIGNATURE_CHARS = 500


@dataclass(frozen=True)
class Param:
    """One parameter as written (Python's self/cls included; Go receivers and Rust's self are not)."""

    name: str
    annotation: str | None = None
    default: str | None = None
    kind: ParamKind = "positional"


@dataclass(frozen=True)
class Symbol:
    """A named class, function or method of the head version.

    Qualified names are dotted chains of enclosing named symbols: ``Cls.method``, ``outer.inner``,
    ``Cls.method.helper``. Anonymous functions (lambdas, callbacks, closures) are not symbols; a line
    inside one belongs to the nearest named symbol around it. Methods declared outside their type (Go
    receivers, C++ ``Type::name``, Rust ``impl Type``) get the type as their parent qualname. Namespaces
    and packages are not part of qualnames; Ruby modules are (they nest like classes).
    """

    kind: SymbolKind
    name: str
    qualname: str
    start_line: int  # 1-based, new file, decorators/attributes included
    end_line: int
    signature: str  # the header text, without the body and its opening ":" or "{"
    params: tuple[Param, ...] = ()
    decorators: tuple[str, ...] = ()  # without the leading "@" / brackets
    docstring: str | None = None
    parent: str | None = None  # the parent symbol's qualname

    def contains(self, line: int) -> bool:
        return self.start_line <= line <= self.end_line


@dataclass(frozen=True)
class SyntaxIssue:
    line: int  # 1-based
    column: int  # 1-based
    message: str
    end_line: int = 0  # last line the erroneous region covers (0: same as line)


@dataclass(frozen=True)
class ChangedSymbol:
    """A symbol the change touches: an added line in its span, or lines removed between two of its lines.

    "added" when the file is new, or the symbol's first line is added, at least half its span is added
    and nothing was removed inside it; otherwise "modified". The enclosing symbols of a touched symbol
    are touched too, so a change in ``Cls.method.helper`` lists all three.
    """

    path: str
    symbol: Symbol
    change: ChangeKind


@dataclass(frozen=True)
class FileSyntax:
    path: str
    language: str | None
    source: bytes
    tree: Tree | None  # None: no grammar (or too large) → line-level analysis only
    symbols: tuple[Symbol, ...] = ()  # ordered by start line, parents before children
    errors: tuple[SyntaxIssue, ...] = ()
    parent_index: tuple[int, ...] = field(default=(), repr=False, compare=False)  # -1 for top level
    # the tree's nodes by kind, one walk shared by the analyzers (None with no tree)
    nodes: NodeIndex | None = field(default=None, repr=False, compare=False)

    @cached_property
    def _innermost(self) -> list[int]:
        """For each line (index = line number), the index of the innermost symbol, or -1."""
        line_count = self.source.count(b"\n") + 2
        paint = [-1] * (line_count + 1)
        for i, sym in enumerate(self.symbols):  # parents come first, children overwrite them
            end = min(sym.end_line, line_count)
            paint[sym.start_line : end + 1] = [i] * (end - sym.start_line + 1)
        return paint

    def innermost_index(self, line: int) -> int:
        paint = self._innermost
        return paint[line] if 0 <= line < len(paint) else -1

    def enclosing(self, line: int) -> tuple[Symbol, ...]:
        chain: list[Symbol] = []
        i = self.innermost_index(line)
        while i >= 0:
            chain.append(self.symbols[i])
            i = self.parent_index[i]
        return tuple(reversed(chain))

    def innermost(self, line: int) -> Symbol | None:
        i = self.innermost_index(line)
        return self.symbols[i] if i >= 0 else None

    @cached_property
    def lines(self) -> list[str]:
        return split_lines(self.source.decode("utf-8", "replace"))

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 1 <= line <= len(self.lines) else ""


@dataclass(frozen=True)
class SyntaxMap:
    files: Mapping[str, FileSyntax]
    changeset: ChangeSet = field(default_factory=ChangeSet)
    _changed: dict[str, tuple[ChangedSymbol, ...]] = field(default_factory=dict, repr=False, compare=False)

    def get(self, path: str) -> FileSyntax | None:
        return self.files.get(path)

    def enclosing(self, path: str, line: int) -> tuple[Symbol, ...]:
        fs = self.files.get(path)
        return fs.enclosing(line) if fs is not None else ()

    def innermost(self, path: str, line: int) -> Symbol | None:
        fs = self.files.get(path)
        return fs.innermost(line) if fs is not None else None

    def changed_symbols(self, path: str | None = None) -> list[ChangedSymbol]:
        paths = [path] if path is not None else list(self.files)
        out: list[ChangedSymbol] = []
        for p in paths:
            found = self._changed.get(p)
            if found is None:
                fs = self.files.get(p)
                changed = self.changeset.get(p)
                found = tuple(_changed_symbols(fs, changed)) if fs is not None and changed is not None else ()
                self._changed[p] = found  # several analyzers ask; compute once per file
            out.extend(found)
        return out


def split_lines(text: str) -> list[str]:
    """Lines as git and tree-sitter count them: split on "\\n" only (not form feeds or U+2028), CR dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


# ---- building ---------------------------------------------------------------------------------------


def build_syntax_map(
    changeset: ChangeSet,
    read_file: Callable[[str], str | None],
    *,
    tree_budget_bytes: int = TREE_BUDGET_BYTES,
    paths: Iterable[str] | None = None,
) -> SyntaxMap:
    """Parse the head version of every changed file once (removed files and unreadable ones are left out).

    Trees are kept for the analyzers until the files parsed so far hold `tree_budget_bytes` of source
    (a tree costs about 20-35 bytes per source byte); later files keep their symbols and errors but not
    their tree (tree None), so analyzers that need one parse it themselves, one file at a time.

    With `paths`, only those files are parsed now; the others are parsed when first asked for (another
    process analyzes them, and only a later stage that wants their symbols pays for parsing them here).
    """
    files = _Files(changeset, read_file, tree_budget_bytes)
    wanted = set(paths) if paths is not None else None
    for changed in changeset.files:
        if wanted is None or changed.path in wanted:
            files.get(changed.path)
    return SyntaxMap(files, changeset)


class _Files(Mapping[str, FileSyntax]):
    """The syntax of a change's files, in the change's order, each parsed on first access (under a lock:
    the stages that ask run in threads)."""

    def __init__(self, changeset: ChangeSet, read_file: Callable[[str], str | None], budget: int) -> None:
        self._changed = {f.path: f for f in changeset.files if f.status is not FileStatus.REMOVED and not f.is_binary}
        self._read = read_file
        self._budget = budget
        self._kept = 0
        self._done: dict[str, FileSyntax | None] = {}
        self._lock = threading.Lock()

    def __getitem__(self, path: str) -> FileSyntax:
        fs = self._done.get(path) if path in self._done else self._load(path)
        if fs is None:
            raise KeyError(path)
        return fs

    def __iter__(self) -> Iterator[str]:
        return (p for p in self._changed if self.get(p) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _load(self, path: str) -> FileSyntax | None:
        with self._lock:
            if path in self._done:
                return self._done[path]
            fs = self._parse(path) if path in self._changed else None
            self._done[path] = fs
            return fs

    def _parse(self, path: str) -> FileSyntax | None:
        text = self._read(path)
        if text is None:
            return None
        try:
            fs = parse_file(path, text)
        except Exception:  # degrade, don't fail: one odd file costs its symbols, not the review
            log.exception("syntax map of %s failed; line-level analysis only", path)
            fs = FileSyntax(path, None, text.encode("utf-8", "replace"), None)
        if fs.tree is not None:
            self._kept += len(fs.source)
            if self._kept > self._budget:
                if self._kept - len(fs.source) <= self._budget:
                    log.info("syntax map: over the tree budget of %d bytes; later files keep no tree", self._budget)
                fs = dataclasses.replace(fs, tree=None, nodes=None)
        return fs


_noted: set[str] = set()


def parse_file(path: str, text: str, language: str | None = None) -> FileSyntax:
    """Parse one file's text into a FileSyntax (tree None when the language has no grammar here)."""
    lang = language or detect_language(path, text[:4000])
    source = text.encode("utf-8", "replace")
    if lang is None:
        return FileSyntax(path, None, source, None)
    parser = new_parser(lang)
    if parser is None:
        if lang not in _noted:
            _noted.add(lang)
            log.info("no tree-sitter grammar for %s (%s); line-level analysis only", lang, path)
        return FileSyntax(path, lang, source, None)
    if len(source) > MAX_PARSE_BYTES:
        log.info("%s is %d bytes; not parsed, line-level analysis only", path, len(source))
        return FileSyntax(path, lang, source, None)
    tree = parser.parse(source)
    if tree.root_node.has_error and lang == "c" and language is None and path.endswith(".h"):
        # a header is C or C++; the sniff in detect_language can miss C++, so let the cleaner parse win
        cpp = new_parser("cpp")
        cpp_tree = cpp.parse(source) if cpp is not None else None
        if cpp_tree is not None and len(_syntax_issues(cpp_tree)) < len(_syntax_issues(tree)):
            lang, tree = "cpp", cpp_tree
    spec = _SPECS.get(lang)  # no spec (YAML, ...): a tree but no symbols
    nodes = NodeIndex(tree.root_node, lang)
    symbols, parents = _Extractor(lang, spec, source).run(nodes) if spec is not None else ((), ())
    errors = _syntax_issues(tree) if tree.root_node.has_error else ()
    if errors and lang == "javascript":
        # Flow- or TypeScript-annotated .js is valid to its authors' toolchain: not a parse error to report
        tsx = new_parser("tsx")
        if tsx is not None and not tsx.parse(source).root_node.has_error:
            errors = ()
    return FileSyntax(path, lang, source, tree, symbols, errors, parents, nodes)


# ---- per-language knowledge -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    classes: frozenset[str]  # node types that define a class-like scope
    functions: frozenset[str]  # node types that define a named function
    named_values: frozenset[str] = frozenset()  # `name = <function>` shapes (JS/TS)
    function_values: frozenset[str] = frozenset()
    methods: frozenset[str] = frozenset()  # always methods (receiver outside the type)


_JS_CLASSES = frozenset({"class_declaration", "class", "abstract_class_declaration"})
_JS_FUNCS = frozenset({"function_declaration", "generator_function_declaration", "method_definition"})
_JS_NAMED = frozenset({"variable_declarator", "pair", "field_definition", "public_field_definition"})
_JS_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})

_SPECS: dict[str, _Spec] = {
    "python": _Spec(frozenset({"class_definition"}), frozenset({"function_definition"})),
    "javascript": _Spec(_JS_CLASSES, _JS_FUNCS, _JS_NAMED | {"assignment_expression"}, _JS_VALUES),
    "typescript": _Spec(
        _JS_CLASSES | {"interface_declaration"}, _JS_FUNCS, _JS_NAMED | {"assignment_expression"}, _JS_VALUES
    ),
    "tsx": _Spec(_JS_CLASSES | {"interface_declaration"}, _JS_FUNCS, _JS_NAMED | {"assignment_expression"}, _JS_VALUES),
    "go": _Spec(
        frozenset({"type_spec"}), frozenset({"function_declaration"}), methods=frozenset({"method_declaration"})
    ),
    "java": _Spec(
        frozenset(
            {
                "class_declaration",
                "interface_declaration",
                "enum_declaration",
                "record_declaration",
                "annotation_type_declaration",
            }
        ),
        frozenset({"method_declaration", "constructor_declaration", "compact_constructor_declaration"}),
    ),
    "rust": _Spec(
        frozenset({"struct_item", "enum_item", "trait_item", "impl_item", "union_item", "mod_item"}),
        frozenset({"function_item"}),
    ),
    "ruby": _Spec(frozenset({"class", "module", "singleton_class"}), frozenset({"method", "singleton_method"})),
    "csharp": _Spec(
        frozenset(
            {
                "class_declaration",
                "struct_declaration",
                "interface_declaration",
                "record_declaration",
                "enum_declaration",
            }
        ),
        frozenset(
            {
                "method_declaration",
                "constructor_declaration",
                "destructor_declaration",
                "local_function_statement",
                "operator_declaration",
            }
        ),
    ),
    "php": _Spec(
        frozenset({"class_declaration", "interface_declaration", "trait_declaration", "enum_declaration"}),
        frozenset({"function_definition", "method_declaration"}),
    ),
    "c": _Spec(frozenset({"struct_specifier", "union_specifier"}), frozenset({"function_definition"})),
    "cpp": _Spec(
        frozenset({"class_specifier", "struct_specifier", "union_specifier"}), frozenset({"function_definition"})
    ),
    "kotlin": _Spec(
        frozenset({"class_declaration", "object_declaration", "companion_object"}),
        frozenset({"function_declaration", "secondary_constructor"}),
    ),
    "bash": _Spec(frozenset(), frozenset({"function_definition"})),
    "swift": _Spec(
        frozenset({"class_declaration", "protocol_declaration"}),
        frozenset({"function_declaration", "init_declaration", "protocol_function_declaration"}),
    ),
    "scala": _Spec(
        frozenset({"class_definition", "object_definition", "trait_definition", "enum_definition"}),
        frozenset({"function_definition"}),
    ),
    # Terraform/HCL: blocks are the scopes (`resource "aws_s3_bucket" "logs"` → aws_s3_bucket.logs)
    "hcl": _Spec(frozenset({"block"}), frozenset()),
    # YAML: keys holding a nested block are the scopes (a workflow's jobs.build.steps)
    "yaml": _Spec(frozenset({"block_mapping_pair"}), frozenset()),
}

for _lang, _spec in _SPECS.items():
    want_kinds(_lang, _spec.classes | _spec.functions | _spec.named_values | _spec.methods)

_DECORATOR_TYPES = frozenset(
    {"decorator", "annotation", "marker_annotation", "attribute_list", "attribute_item", "attribute"}
)
_MODIFIER_TYPES = frozenset({"modifiers", "modifier"})
_BODY_TYPES = frozenset(
    {
        "block",
        "class_body",
        "statement_block",
        "compound_statement",
        "declaration_list",
        "field_declaration_list",
        "function_body",
        "body_statement",
        "constructor_body",
        "enum_body",
        "interface_body",
        "enum_class_body",
        "body",
    }
)
_NAME_TYPES = frozenset(
    {
        "identifier",
        "field_identifier",
        "property_identifier",
        "type_identifier",
        "simple_identifier",
        "constant",
        "name",
        "word",
        "private_property_identifier",
        "destructor_name",
        "operator_name",
        "qualified_identifier",
        "scope_resolution",
    }
)
_VAR_POSITIONAL = frozenset(
    {
        "list_splat_pattern",
        "rest_pattern",
        "rest_parameter",
        "spread_parameter",
        "variadic_parameter",
        "variadic_parameter_declaration",
        "splat_parameter",
        "variadic_declarator",
    }
)
_VAR_KEYWORD = frozenset({"dictionary_splat_pattern", "hash_splat_parameter"})
_PARAM_SKIP = frozenset({"comment", "block_comment", "line_comment", "self_parameter", "receiver_parameter"})
_COMMENT_PREFIXES = ("#", "//", "/*", "*")


def _text(node: Node | None) -> str:
    if node is None:
        return ""
    data = node.text
    return data.decode("utf-8", "replace") if data is not None else ""


def _end_line(node: Node) -> int:
    row, col = node.end_point
    if col == 0 and row > node.start_point[0]:
        return row  # the node ends with a newline: its last line is the previous one
    return row + 1


class _Extractor:
    """Turns one parsed tree into Symbols, using the language's _Spec."""

    def __init__(self, lang: str, spec: _Spec, source: bytes) -> None:
        self.lang = lang
        self.spec = spec
        self.source = source

    def run(self, nodes: NodeIndex) -> tuple[tuple[Symbol, ...], tuple[int, ...]]:
        spec = self.spec
        captures = nodes.ordered(spec.classes | spec.functions | spec.named_values | spec.methods)
        by_id: dict[int, int] = {}
        symbols: list[Symbol] = []
        parents: list[int] = []
        for node in captures:
            kind = self._role(node)
            if kind is None:
                continue
            parent = self._parent_symbol(node, by_id)
            parent_sym = symbols[parent] if parent >= 0 else None
            sym = self._symbol(node, kind, parent_sym)
            if sym is None:
                continue
            by_id[node.id] = len(symbols)
            symbols.append(sym)
            parents.append(parent if sym.parent == (parent_sym.qualname if parent_sym else None) else -1)
        return tuple(symbols), tuple(parents)

    def _role(self, node: Node) -> Literal["class", "function"] | None:
        t = node.type
        if t in self.spec.named_values:
            value = self._function_value(node)
            return "function" if value is not None else None
        if t in self.spec.classes:
            if t == "type_spec":  # Go: only struct and interface types are scopes
                inner = node.child_by_field_name("type")
                return "class" if inner is not None and inner.type in ("struct_type", "interface_type") else None
            if t == "block_mapping_pair":
                value = node.child_by_field_name("value")
                return "class" if value is not None and value.type == "block_node" else None
            if self.lang in ("c", "cpp") and node.child_by_field_name("body") is None:
                return None  # `struct x *p`: a use, not a definition
            return "class"
        return "function"

    def _function_value(self, node: Node) -> Node | None:
        value = node.child_by_field_name("value") or node.child_by_field_name("right")
        return value if value is not None and value.type in self.spec.function_values else None

    def _parent_symbol(self, node: Node, by_id: dict[int, int]) -> int:
        cur = node.parent
        while cur is not None:
            found = by_id.get(cur.id)
            if found is not None:
                return found
            cur = cur.parent
        return -1

    # ---- one symbol ---------------------------------------------------------------------------------

    def _symbol(self, node: Node, role: str, parent: Symbol | None) -> Symbol | None:
        name, owner = self._name(node)
        if not name:
            return None
        func = self._function_value(node) if node.type in self.spec.named_values else node
        assert func is not None
        outer = node.parent if node.parent is not None and node.parent.type == "decorated_definition" else node
        decorators = self._decorators(node, outer)
        if role == "class":
            kind: SymbolKind = "class"
        elif owner is not None or node.type in self.spec.methods:
            kind = "method"
        elif parent is not None and parent.kind == "class" and self._directly_in(node, parent):
            kind = "method"
        else:
            kind = "function"
        parent_qual = owner if owner is not None else (parent.qualname if parent is not None else None)
        if owner is not None and parent is not None:
            parent_qual = f"{parent.qualname}.{owner}"
        qualname = f"{parent_qual}.{name}" if parent_qual else name
        return Symbol(
            kind=kind,
            name=name,
            qualname=qualname,
            start_line=outer.start_point[0] + 1,
            end_line=_end_line(outer),
            signature=self._signature(node, func, decorators),
            params=self._params(func) if role == "function" else (),
            decorators=tuple(_clean_decorator(_text(d)) for d in decorators),
            docstring=self._docstring(node, func, outer),
            parent=parent_qual,
        )

    def _directly_in(self, node: Node, parent: Symbol) -> bool:
        """True when no function lies between `node` and its class (so it is a method, not a local)."""
        cur = node.parent
        while cur is not None:
            if cur.type in self.spec.classes:
                return True
            if cur.type in self.spec.functions or cur.type in self.spec.function_values:
                return False
            cur = cur.parent
        return False

    def _name(self, node: Node) -> tuple[str, str | None]:
        """(name, owner type for out-of-line methods or None)."""
        t = node.type
        if t == "method_declaration" and self.lang == "go":
            return _text(node.child_by_field_name("name")), _go_receiver(node)
        if t == "impl_item":
            return _strip_generics(_text(node.child_by_field_name("type"))), None
        if t in ("pair", "field_definition", "public_field_definition"):
            key = node.child_by_field_name("key") or node.child_by_field_name("property")
            key = key or node.child_by_field_name("name")
            return _text(key).strip("'\"`"), None
        if t == "assignment_expression":
            left = node.child_by_field_name("left")
            if left is not None and left.type == "member_expression":
                return _text(left.child_by_field_name("property")), None
            return _text(left), None
        if t == "block" and self.lang == "hcl":
            return _hcl_block_name(node), None
        if t == "block_mapping_pair":
            return _text(node.child_by_field_name("key")).strip("'\""), None
        if t == "singleton_method":
            return _text(node.child_by_field_name("name")), None
        if t == "companion_object":
            return _text(node.child_by_field_name("name")) or "Companion", None
        name = node.child_by_field_name("name")
        if name is None:
            declarator = node.child_by_field_name("declarator")
            while declarator is not None and declarator.type not in _NAME_TYPES:
                declarator = declarator.child_by_field_name("declarator")
            name = declarator
        if name is None:
            name = next((c for c in node.named_children if c.type in _NAME_TYPES), None)
        text = _text(name)
        for sep in ("::", "."):
            if sep in text and name is not None and name.type in ("qualified_identifier", "scope_resolution"):
                owner, _, last = text.rpartition(sep)
                return last, _strip_generics(owner.replace("::", "."))
        return text, None

    def _decorators(self, node: Node, outer: Node) -> list[Node]:
        found: list[Node] = []
        if outer is not node:  # Python decorated_definition
            found.extend(c for c in outer.children if c.type == "decorator")
            return found
        if self.lang == "python":
            return found  # Python's decorators sit only in a decorated_definition, never in the definition
        for child in node.children:
            if child.type in _DECORATOR_TYPES:
                found.append(child)
            elif child.type in _MODIFIER_TYPES:
                found.extend(c for c in child.children if c.type in _DECORATOR_TYPES)
        if self.lang == "rust":
            prev = node.prev_named_sibling
            while prev is not None and prev.type in ("attribute_item", "line_comment", "block_comment"):
                if prev.type == "attribute_item":
                    found.insert(0, prev)
                prev = prev.prev_named_sibling
        return found

    def _body(self, func: Node) -> Node | None:
        body = func.child_by_field_name("body")
        if body is None:
            body = next((c for c in func.named_children if c.type in _BODY_TYPES), None)
        return body

    def _signature(self, node: Node, func: Node, decorators: list[Node]) -> str:
        start = node.start_byte
        for d in decorators:
            if d.start_byte >= node.start_byte:
                start = max(start, d.end_byte)
        body = self._body(func)
        end = body.start_byte if body is not None and body.start_byte > start else func.end_byte
        text = self.source[start:end].decode("utf-8", "replace").strip()
        if body is None or body.start_byte <= start:
            text = text.split("\n", 1)[0]
        lines = text.split("\n")
        while len(lines) > 1 and lines[-1].lstrip().startswith(_COMMENT_PREFIXES):
            lines.pop()  # a comment between the header and the body (Ruby) is not the signature
        text = "\n".join(lines)
        text = text.rstrip().rstrip("{:=").rstrip()
        if text.endswith("=>"):
            text = text[:-2].rstrip() + " =>"
        return text[:MAX_SIGNATURE_CHARS]

    # ---- parameters ---------------------------------------------------------------------------------

    def _params(self, func: Node) -> tuple[Param, ...]:
        plist = func.child_by_field_name("parameters") or func.child_by_field_name("parameter")
        if plist is None:
            declarator = func.child_by_field_name("declarator")
            while declarator is not None and plist is None:
                plist = declarator.child_by_field_name("parameters")
                declarator = declarator.child_by_field_name("declarator")
        if plist is None:
            plist = next((c for c in func.named_children if c.type == "function_value_parameters"), None)
        if plist is None and self.lang == "swift":
            return _swift_params(func)
        if plist is None:
            return ()
        if plist.type in ("identifier", "shorthand_property_identifier_pattern"):  # JS `x => ...`
            return (Param(_text(plist)),)
        if self.lang == "python":
            return _python_params(plist)
        out: list[Param] = []
        params_type: str | None = None
        for i, child in enumerate(plist.children):
            if not child.is_named or child.type in _PARAM_SKIP:
                continue
            list_field = plist.field_name_for_child(i)
            if list_field == "type":  # C#: `params T[] name` sits in the list itself
                params_type = _text(child)
                continue
            if list_field == "name":
                out.append(Param(_text(child), params_type, None, "var_positional"))
                continue
            prev = child.prev_sibling
            if out and prev is not None and prev.type == "=":  # Kotlin: the default follows the parameter
                out[-1] = Param(out[-1].name, out[-1].annotation, _text(child), out[-1].kind)
                continue
            out.extend(self._param(child))
        return tuple(p for p in out if not (p.name == "void" and p.annotation == "void"))  # C `f(void)`

    def _param(self, node: Node) -> list[Param]:
        t = node.type
        kind: ParamKind = "positional"
        if t in _VAR_POSITIONAL:
            kind = "var_positional"
        elif t in _VAR_KEYWORD:
            kind = "var_keyword"
        elif t == "keyword_parameter":
            kind = "keyword_only"
        fields: dict[str, list[Node]] = {}  # one pass over the children instead of a lookup per field
        for i, child in enumerate(node.children):
            name = node.field_name_for_child(i)
            if name is not None:
                fields.setdefault(name, []).append(child)

        def first(*names: str) -> Node | None:
            for name in names:
                if name in fields:
                    return fields[name][0]
            return None

        annotation = _text(first("type")).lstrip(":").strip() or None
        default = first("right") if t == "assignment_pattern" else first("value", "default_value")
        if self.lang == "csharp" and default is None:
            default = next((c for c in node.named_children if c.type.endswith("literal")), None)
            if any(_text(c) == "params" for c in node.children if c.type in _MODIFIER_TYPES | {"params"}):
                kind = "var_positional"
        if self.lang == "kotlin" and annotation is None:
            annotation = next((_text(c) for c in node.named_children if c.type.endswith("_type")), None)
        names = fields.get("name", [])
        if t == "spread_parameter":  # Java `String... names`
            declarator = next((c for c in node.named_children if c.type == "variable_declarator"), None)
            names = [n for n in (declarator.child_by_field_name("name") if declarator else None,) if n is not None]
            annotation = annotation or next(
                (_text(c) for c in node.named_children if c.type != "variable_declarator"), None
            )
        if not names:
            target = first("pattern", "declarator", "left")
            if target is None and t in _NAME_TYPES:
                target = node
            if target is None:
                target = next((c for c in node.named_children if c.type in _NAME_TYPES), None)
            pattern = target
            while target is not None and target.type not in _NAME_TYPES and target.named_child_count:
                if target.type in _VAR_POSITIONAL:
                    kind = "var_positional"
                inner = target.child_by_field_name("declarator") or target.child_by_field_name("name")
                target = inner or next((c for c in target.named_children if c.type in _NAME_TYPES), None)
            if target is None:  # a destructuring pattern: keep it as written
                target = pattern or node
            names = [target]
        default_text = _text(default).strip() or None
        return [Param(_text(n).lstrip("$"), annotation, default_text, kind) for n in names]

    # ---- documentation ------------------------------------------------------------------------------

    def _docstring(self, node: Node, func: Node, outer: Node) -> str | None:
        if self.lang == "python":
            body = func.child_by_field_name("body")
            first = body.named_child(0) if body is not None and body.named_child_count else None
            if first is not None and first.type == "expression_statement" and first.named_child_count:
                string = first.named_child(0)
                assert string is not None
                if string.type == "string":
                    content = "".join(_text(c) for c in string.named_children if c.type == "string_content")
                    return inspect.cleandoc(content) or None
            return None
        anchor = outer
        while anchor.parent is not None and anchor.parent.type in (
            "lexical_declaration",
            "variable_declaration",
            "export_statement",
            "expression_statement",
        ):
            anchor = anchor.parent
        comments: list[str] = []
        line = anchor.start_point[0]
        prev = anchor.prev_sibling
        while prev is not None and "comment" in prev.type and prev.end_point[0] >= line - 1:
            if _text(prev).startswith("#!"):
                break
            comments.insert(0, _text(prev))
            line = prev.start_point[0]
            prev = prev.prev_sibling
        if not comments and self.lang == "ruby" and node.type == "class":
            comments = [_text(c) for c in node.named_children if c.type == "comment"]
        return _clean_comment("\n".join(comments)) if comments else None


def _python_params(plist: Node) -> tuple[Param, ...]:
    out: list[Param] = []
    keyword_only = False
    for child in plist.named_children:
        t = child.type
        if t == "positional_separator":
            out = [Param(p.name, p.annotation, p.default, "positional_only") for p in out]
            continue
        if t == "keyword_separator":
            keyword_only = True
            continue
        if t == "comment":
            continue
        kind: ParamKind = "keyword_only" if keyword_only else "positional"
        annotation = _text(child.child_by_field_name("type")) or None
        default = _text(child.child_by_field_name("value")) or None
        target = child.child_by_field_name("name") if t in ("default_parameter", "typed_default_parameter") else None
        if target is None:
            splat = t in ("identifier", "list_splat_pattern", "dictionary_splat_pattern")
            target = child if splat else next(iter(child.named_children), child)
        if target.type == "list_splat_pattern":
            kind, keyword_only = "var_positional", True
            target = next(iter(target.named_children), target)
        elif target.type == "dictionary_splat_pattern":
            kind = "var_keyword"
            target = next(iter(target.named_children), target)
        out.append(Param(_text(target), annotation, default, kind))
    return tuple(out)


def _swift_params(func: Node) -> tuple[Param, ...]:
    """Swift puts parameters (and their defaults) straight under the declaration."""
    out: list[Param] = []
    for i, child in enumerate(func.children):
        if child.type == "parameter":
            names = child.children_by_field_name("name")
            name = next((n for n in names if n.type == "simple_identifier"), None)
            annotation = next((_text(n) for n in names if n.type != "simple_identifier"), None)
            variadic = any(c.type == "..." for c in child.children)
            out.append(Param(_text(name), annotation, None, "var_positional" if variadic else "positional"))
        elif func.field_name_for_child(i) == "default_value" and out:
            out[-1] = Param(out[-1].name, out[-1].annotation, _text(child), out[-1].kind)
    return tuple(out)


def _hcl_block_name(node: Node) -> str:
    """Terraform's address style: resource labels alone, other labelled blocks with their type."""
    parts = [_text(c).strip('"') for c in node.named_children if c.type in ("identifier", "string_lit")]
    if len(parts) > 1 and parts[0] == "resource":
        parts = parts[1:]
    return ".".join(p for p in parts if p)


def _go_receiver(node: Node) -> str | None:
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return None
    for param in receiver.named_children:
        text = _text(param.child_by_field_name("type")).lstrip("*")
        if text:
            return _strip_generics(text)
    return None


def _strip_generics(text: str) -> str:
    for opener in ("<", "["):
        if opener in text:
            text = text.split(opener, 1)[0]
    return text.strip()


def _clean_decorator(text: str) -> str:
    text = text.strip()
    if text.startswith("#[") and text.endswith("]"):
        return text[2:-1].strip()
    if text.startswith("#[") or (text.startswith("[") and text.endswith("]")):
        return text.lstrip("#").strip("[]").strip()
    return text.lstrip("@").strip()


def _clean_comment(text: str) -> str | None:
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        for prefix in ("/**", "/*", "///", "//!", "//", "#"):
            if line.startswith(prefix):
                line = line[len(prefix) :]
                break
        line = line.removesuffix("*/").strip()
        if line.startswith("*"):
            line = line[1:].strip()
        lines.append(line)
    cleaned = "\n".join(lines).strip()
    return cleaned or None


# ---- syntax errors ----------------------------------------------------------------------------------


def _syntax_issues(tree: Tree) -> tuple[SyntaxIssue, ...]:
    issues: list[SyntaxIssue] = []
    stack = [tree.root_node]
    while stack and len(issues) < MAX_ISSUES_PER_FILE:
        node = stack.pop()
        if node.is_missing:
            row, col = node.start_point
            issues.append(SyntaxIssue(row + 1, col + 1, f"missing {node.type!r}", row + 1))
            continue
        if node.is_error:
            row, col = node.start_point
            first = next((c for c in node.children if not c.is_missing), None)
            snippet = _text(first).split("\n", 1)[0][:40] if first is not None else ""
            message = f"unexpected {snippet!r}" if snippet else "syntax error"
            issues.append(SyntaxIssue(row + 1, col + 1, message, _end_line(node)))
        stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    issues.sort(key=lambda i: (i.line, i.column))
    return tuple(issues)


_TEMPLATE_MARK = re.compile(rb"(?<!\$)\{\{|\{%")  # GitHub's ${{ }} expressions are plain YAML strings


def _templated(fs: FileSyntax) -> bool:
    """Helm/Jinja templates are not YAML until rendered: their "errors" are not the author's."""
    return fs.language == "yaml" and _TEMPLATE_MARK.search(fs.source) is not None


def syntax_findings(syntax_map: SyntaxMap, changeset: ChangeSet) -> list[Finding]:
    """A finding per syntax error that the change's added lines touch (the PR breaks parsing)."""
    findings: list[Finding] = []
    for changed in changeset.files:
        fs = syntax_map.get(changed.path)
        if fs is None or not fs.errors or _templated(fs):
            continue
        added = sorted(changed.added_lines)
        seen: set[int] = set()
        for issue in fs.errors:
            end = max(issue.end_line, issue.line)
            i = bisect.bisect_left(added, issue.line)
            if i >= len(added) or added[i] > end:
                continue
            line = added[i]
            if line in seen:
                continue
            seen.add(line)
            sym = fs.innermost(line)
            where = f"line {issue.line}, column {issue.column}"
            findings.append(
                Finding(
                    rule="syntax/parse-error",
                    analyzer="syntax",
                    severity=Severity.MEDIUM,
                    confidence=Confidence.MEDIUM,
                    title="Syntax error",
                    message=f"This version does not parse as {fs.language}: {issue.message} ({where}).",
                    path=changed.path,
                    start_line=line,
                    end_line=line,
                    symbol=sym.qualname if sym is not None else None,
                    code=fs.line_text(line),
                )
            )
            if len(seen) >= 3:
                break
    return findings


# ---- changed symbols --------------------------------------------------------------------------------


def _removal_points(changed: ChangedFile) -> tuple[list[int], set[int]]:
    """Where runs of removed lines sat: the new-file line just before each run (sorted), and those of
    runs whose text was indented (a body line removed right before the symbol's last line)."""
    befores: list[int] = []
    indented_befores: set[int] = set()
    for hunk in changed.hunks:
        prev_new = hunk.new_start - 1
        run_indented: bool | None = None
        for ln in (*hunk.lines, None):
            if ln is not None and ln.kind is LineKind.REMOVED:
                indented = ln.text[:1] in (" ", "\t")
                run_indented = indented if run_indented is None else (run_indented or indented)
                continue
            if run_indented is not None:
                befores.append(prev_new)
                if run_indented:
                    indented_befores.add(prev_new)
                run_indented = None
            if ln is not None and ln.new is not None:
                prev_new = ln.new
    befores.sort()
    return befores, indented_befores


def _changed_symbols(fs: FileSyntax, changed: ChangedFile) -> Iterable[ChangedSymbol]:
    if not fs.symbols:
        return []
    added = sorted(changed.added_lines)
    added_set = changed.added_lines
    befores, indented_befores = _removal_points(changed)
    out: list[ChangedSymbol] = []
    for sym in fs.symbols:
        start, end = sym.start_line, sym.end_line
        touched_added = bisect.bisect_right(added, end) - bisect.bisect_left(added, start)
        # a removal between two of the symbol's lines is inside it (the line after it is before+1)
        removed_inside = bisect.bisect_left(befores, end) > bisect.bisect_left(befores, start)
        removed_at_end = end in indented_befores and end > start
        if not (touched_added or removed_inside or removed_at_end):
            continue
        is_new = changed.status is FileStatus.ADDED or (
            start in added_set and touched_added * 2 >= end - start + 1 and not removed_inside
        )
        out.append(ChangedSymbol(fs.path, sym, "added" if is_new else "modified"))
    return out
