"""The security analyzer: rule packs (tree-sitter queries) gated by intra-function taint, on changed lines."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from tree_sitter import Node, Tree

from analyzers.base import AnalyzerContext, Confidence, Finding, Fix
from analyzers.dataflow import SPECS, Flow, Level, Value, join
from analyzers.diff import FileStatus
from analyzers.filtering import in_scope, lines_in_scope
from analyzers.languages import NodeIndex, detect_language, get_language, new_parser
from analyzers.rulepack import CompiledPack, Condition, Context, Rule, RuleMatch, pack_for, render
from analyzers.secrets import redact
from analyzers.templates import is_template, template_findings

log = logging.getLogger(__name__)

ANALYZER = "security"
MAX_BYTES = 2_000_000
_CONFIDENCE = {"low": Confidence.LOW, "medium": Confidence.MEDIUM, "high": Confidence.HIGH}
_SYMBOL_TYPES = re.compile(r"function|method|class|module$|constructor|singleton|impl_item|interface")


@dataclass(frozen=True)
class Verdict:
    confidence: Confidence
    value: Value | None = None


class SecurityAnalyzer:
    """Security rules from analyzers/rules/<lang>.yml, each match judged by where its data comes from."""

    name = ANALYZER
    cpu_bound = True  # pure computation: the pipeline runs it in turn with the others like it

    def analyze(self, ctx: AnalyzerContext) -> list[Finding]:
        findings: list[Finding] = []
        for changed in ctx.changed_files():
            if changed.status in (FileStatus.REMOVED, FileStatus.BINARY):
                continue
            lines = lines_in_scope(ctx.changeset, changed.path, ctx.mode)
            if lines is not None and not lines:
                continue
            try:
                if is_template(changed.path):
                    text = ctx.read_file(changed.path)
                    found = template_findings(changed.path, text, lines) if text is not None else []
                else:
                    found = self._file(ctx, changed.path, lines)
            except Exception:  # one unreadable file must not end the review of the others
                log.exception("security analysis of %s failed", changed.path)
                continue
            findings.extend(f for f in found if in_scope(f, ctx.changeset, ctx.mode))
        return findings

    def _file(self, ctx: AnalyzerContext, path: str, lines: frozenset[int] | None) -> list[Finding]:
        fs = ctx.syntax.get(path) if ctx.syntax is not None else None
        nodes: NodeIndex | None = None
        if fs is not None and fs.tree is not None and fs.language is not None:
            source, tree, language, nodes = fs.source, fs.tree, fs.language, fs.nodes
        else:
            text = ctx.read_file(path)
            if text is None:
                return []
            detected = detect_language(path, text)
            source = text.encode("utf-8", "surrogatepass")
            parsed = _parse(detected, source)
            if parsed is None or detected is None:
                return []
            tree, language = parsed, detected

        def symbol_at(line: int, node: Node) -> str | None:
            if ctx.syntax is not None:
                sym = ctx.syntax.innermost(path, line)
                if sym is not None:
                    return sym.qualname
            return qualname(node, source)

        return scan_tree(path, source, tree, language, lines=lines, symbol_at=symbol_at, nodes=nodes)


def scan_source(path: str, text: str, language: str | None = None) -> list[Finding]:
    """Whole-file scan (local runs, benchmarks): every finding in `text`, no diff filter."""
    language = language or detect_language(path, text)
    source = text.encode("utf-8", "surrogatepass")
    tree = _parse(language, source)
    if tree is None or language is None:
        return []
    return scan_tree(path, source, tree, language, lines=None)


def scan_tree(
    path: str,
    source: bytes,
    tree: Tree,
    language: str,
    *,
    lines: frozenset[int] | None = None,
    symbol_at: Callable[[int, Node], str | None] | None = None,
    nodes: NodeIndex | None = None,
    prefilter: bool = True,
) -> list[Finding]:
    """Findings of the language's rule pack in `tree`; `nodes`: the tree's shared node index, if it has one.

    `prefilter`: leave out the rule patterns the file's text rules out (False runs every pattern; the
    findings are the same, which the tests check)."""
    compiled = pack_for(language)
    spec = SPECS.get(language)
    if compiled is None or compiled.query is None or spec is None or len(source) > MAX_BYTES:
        return []
    flow = Flow(spec, source, get_language(language), nodes or NodeIndex(tree.root_node, language))
    ranges = _byte_ranges(source, lines) if lines is not None else None
    out: list[Finding] = []
    seen: Counter[tuple[str, str | None, str]] = Counter()
    reported: set[tuple[str, int, int]] = set()
    text = _FileText(source)
    for match in compiled.run(tree, ranges, text=source if prefilter else None):
        report = match.node(match.rule.report)
        where = (match.rule.id, report.start_byte, report.end_byte) if report is not None else None
        if where is None or where in reported:
            continue  # several patterns of one rule may match one node: the first that fires wins
        finding = _judge(match, compiled, flow, path, source, symbol_at, text)
        if finding is None:
            continue
        reported.add(where)
        key = (finding.rule, finding.symbol, finding.code)
        if seen[key]:
            finding = _with_occurrence(finding, seen[key])
        seen[key] += 1
        out.append(finding)
    out.sort(key=lambda f: (f.start_line, f.rule))
    return out


_BRANCHES = frozenset({"if_statement", "elif_clause", "if_expression", "conditional_expression", "ternary_expression"})


def _inside_opt_out(node: Node, regex: str, flow: Flow) -> bool:
    """Is `node` in a branch whose condition matches `regex` (a caller's explicit choice, like `if not verify`)?"""
    parent = node.parent
    while parent is not None:
        if parent.type in _BRANCHES:
            condition = parent.child_by_field_name("condition")
            if condition is not None and re.search(regex, flow.text(condition)):
                return True
        parent = parent.parent
    return False


def _judge(
    match: RuleMatch,
    compiled: CompiledPack,
    flow: Flow,
    path: str,
    source: bytes,
    symbol_at: Callable[[int, Node], str | None] | None,
    text: _FileText | None = None,
) -> Finding | None:
    rule = match.rule
    report = match.node(rule.report)
    if report is None:
        return None
    if rule.exclude_paths and re.search(rule.exclude_paths, path):
        return None
    possible = rule.context is None or text is None or text.may_match(rule.context)
    if not possible and rule.context is not None and rule.context.otherwise == "skip" and rule.guard is None:
        return None  # what the context test below would decide, without the pure checks before it
    if not _conditions(rule.when, rule.unless, match, report, flow):
        return None
    if rule.guard is not None and _guarded(rule, match, report, flow, source):
        return None
    confidence = rule.confidence
    if rule.context is not None:
        scope = flow.enclosing_function(report) if rule.context.scope == "function" else None
        if scope is not None and scope.parent is not None and scope.parent.type == "decorated_definition":
            scope = scope.parent  # decorators (e.g. @app.route) belong to the function's context
        scope_text = flow.text(scope) if scope is not None else source.decode("utf-8", "replace")
        if not possible or not rule.context.pattern.search(scope_text):
            if rule.context.otherwise == "skip":
                return None
            confidence = Confidence.LOW
    verdict = _taint(rule, match, compiled, flow)
    if verdict is None:
        return None
    if rule.taint is not None:
        confidence = verdict.confidence if rule.context is None else min(confidence, verdict.confidence)
    if rule.opt_out is not None and _inside_opt_out(report, rule.opt_out, flow):
        confidence = Confidence.LOW
    value = verdict.value
    values = {name: _short(flow.text(nodes[0])) for name, nodes in match.captures.items() if nodes}
    values["origin"] = _origin(value)
    values["rule"] = rule.id
    start_line = report.start_point[0] + 1
    end_line = report.end_point[0] + 1
    if report.end_point[1] == 0 and end_line > start_line:
        end_line -= 1
    symbol = symbol_at(start_line, report) if symbol_at is not None else qualname(report, source)
    return Finding(
        rule=f"{ANALYZER}/{rule.id}",
        analyzer=ANALYZER,
        severity=rule.severity,
        confidence=confidence,
        title=rule.title,
        message=redact(render(rule.message, values)),
        path=path,
        start_line=start_line,
        end_line=end_line,
        cwe=rule.cwe,
        fix=_fix(rule, match, flow, source, report),
        symbol=symbol,
        code=redact(flow.text(report)),
        references=rule.references,
    )


# a regex with none of these matches in a part of a text only where it matches in the text itself
_POSITION_DEPENDENT = re.compile(r"[\^$]|\\[AbBZzG]|\(\?(?!:|[aiLmsux]+\))")


class _FileText:
    """A file's text, decoded once, to rule out a context regex for every match in the file at once."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        self._text: str | None = None
        self._decoded = False
        self._hits: dict[str, bool] = {}

    def may_match(self, context: Context) -> bool:
        """False only when `context` matches nowhere in the file, so in no function of it either: the regex
        has no anchor, boundary or lookaround, and the file is valid UTF-8 (a node's text is then exactly a
        slice of the file's). True when that cannot be told."""
        hit = self._hits.get(context.regex)
        if hit is None:
            hit = True
            if not _POSITION_DEPENDENT.search(context.regex):
                text = self._decode()
                hit = text is None or context.pattern.search(text) is not None
            self._hits[context.regex] = hit
        return hit

    def _decode(self) -> str | None:
        if not self._decoded:
            self._decoded = True
            try:
                self._text = self.source.decode("utf-8")
            except UnicodeDecodeError:
                self._text = None
        return self._text


def _conditions(
    when: Iterable[Condition], unless: Iterable[Condition], match: RuleMatch, report: Node, flow: Flow
) -> bool:
    for cond in when:
        node = match.node(cond.capture) if cond.capture else report
        if node is None or not cond.pattern.search(flow.text(node)):
            return False
    for cond in unless:
        node = match.node(cond.capture) if cond.capture else report
        if node is not None and cond.pattern.search(flow.text(node)):
            return False
    return True


def _guarded(rule: Rule, match: RuleMatch, report: Node, flow: Flow, source: bytes) -> bool:
    """A guard (the rule's regex) earlier in the function that tests a name feeding the sink's data."""
    assert rule.guard is not None
    func = flow.enclosing_function(report)
    start = func.start_byte if func is not None else 0
    before = source[start : report.start_byte].decode("utf-8", "replace")
    hits = list(re.finditer(rule.guard, before))
    if not hits:
        return False
    target = match.node(rule.taint.capture) if rule.taint is not None else None
    feeding = flow.feeding_names(target or report)
    for hit in hits:
        test_line = hit.group(0).split("\n", 1)[0]
        if feeding & set(re.findall(r"[A-Za-z_$][A-Za-z0-9_$]*", test_line)):
            return True
    return False


def _taint(rule: Rule, match: RuleMatch, compiled: CompiledPack, flow: Flow) -> Verdict | None:
    """None: no finding. Otherwise the confidence that the data reaching the sink is attacker-controlled."""
    spec = rule.taint
    if spec is None:
        return Verdict(rule.confidence)
    nodes = match.captures.get(spec.capture)
    if not nodes:
        return None
    sanitizers = compiled.sanitizer_pattern(rule)
    value = join(*(flow.evaluate(n, sanitizers) for n in nodes))
    if value.level <= Level.SANITIZED:
        return None
    needs_build = spec.require == "built" and not value.built
    if value.level is Level.SOURCE:
        # "built" sinks take raw input only when the argument *is* the input read (execute(request.args["q"]))
        if needs_build and not any(flow.spec.sources.search(flow.text(n)) for n in nodes):
            return None
        return Verdict(Confidence.HIGH, value)
    if value.level is Level.PARAM:
        if spec.param == "skip" or needs_build:
            return None
        return Verdict(_CONFIDENCE[spec.param], value)
    if spec.unknown == "skip" or needs_build:
        return None
    return Verdict(_CONFIDENCE[spec.unknown], value)


def _fix(rule: Rule, match: RuleMatch, flow: Flow, source: bytes, report: Node) -> Fix | None:
    spec = rule.fix
    if spec is None:
        return None
    target = match.node(spec.capture)
    if target is None or not _conditions(spec.when, spec.unless, match, report, flow):
        return None
    if spec.literal is not None:
        lit = match.node(spec.literal)
        if lit is None or flow.evaluate(lit).level > Level.SANITIZED:
            return None
    if not (report.start_byte <= target.start_byte and target.end_byte <= report.end_byte):
        return None
    values = {name: flow.text(nodes[0]) for name, nodes in match.captures.items() if nodes}
    replacement = render(spec.replacement, values)
    line_start = source.rfind(b"\n", 0, report.start_byte) + 1
    line_end = source.find(b"\n", report.end_byte)
    if line_end == -1:
        line_end = len(source)
    before = source[line_start : target.start_byte]
    after = source[target.end_byte : line_end]
    new_text = (before + replacement.encode("utf-8") + after).decode("utf-8", "replace")
    start_line = report.start_point[0] + 1
    end_line = start_line + source.count(b"\n", line_start, line_end)
    return Fix(start_line, end_line, new_text)


def qualname(node: Node, source: bytes) -> str | None:
    """Dotted names of the functions/classes around `node` (fallback when no syntax map is available)."""
    names: list[str] = []
    cur = node.parent
    while cur is not None:
        if _SYMBOL_TYPES.search(cur.type):
            name = cur.child_by_field_name("name")
            if name is not None:
                names.append(source[name.start_byte : name.end_byte].decode("utf-8", "replace"))
        cur = cur.parent
    return ".".join(reversed(names)) or None


def _parse(language: str | None, source: bytes) -> Tree | None:
    if language is None or pack_for(language) is None or len(source) > MAX_BYTES:
        return None
    parser = new_parser(language)
    return parser.parse(source) if parser is not None else None


def _byte_ranges(source: bytes, lines: frozenset[int]) -> list[tuple[int, int]]:
    """Byte ranges covering the given 1-based lines, contiguous lines merged."""
    if not lines:
        return []
    total = source.count(b"\n") + (0 if source.endswith(b"\n") else 1)
    if len(lines) >= total and min(lines) == 1:
        return [(0, len(source))]  # a new file: every line is in scope
    starts = [0]
    pos = source.find(b"\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = source.find(b"\n", pos + 1)
    ranges: list[tuple[int, int]] = []
    for line in sorted(lines):
        if line < 1 or line > len(starts):
            continue
        begin = starts[line - 1]
        end = starts[line] if line < len(starts) else len(source)
        if ranges and ranges[-1][1] >= begin:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((begin, end))
    return ranges


def _origin(value: Value | None) -> str:
    if value is None or value.origin is None:
        return "a non-constant value"
    if value.level is Level.SOURCE:
        return f"untrusted input (`{value.origin}`)"
    if value.level is Level.PARAM:
        return value.origin
    return "a non-constant value"


def _short(text: str, limit: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _with_occurrence(finding: Finding, occurrence: int) -> Finding:
    return replace(finding, occurrence=occurrence)
