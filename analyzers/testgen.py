"""Hypothesis test synthesis for changed Python functions: targets, ranking, rendering, validation, delivery text."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal, Protocol

from analyzers.base import FileReader, Finding
from analyzers.diff import ChangedFile, ChangeSet, FileStatus
from analyzers.properties import HELPERS, STRENGTH, PropertyTest, family_tests, plan_call
from analyzers.sideeffects import io_call
from analyzers.strategies import MODULE_ALIAS, FunctionInfo, ModuleInfo, parse_module
from analyzers.testcheck import check_test_module

TESTS_MARKER = "<!-- diffwise:tests -->"
COMMENT_LIMIT = 65_536
_SKIP_DECORATORS = re.compile(r"(^|\.)(property|cached_property|setter|getter|deleter|abstractmethod|overload)$")


@dataclass(frozen=True)
class TestTarget:
    __test__ = False  # not a pytest test class

    path: str
    function: str  # qualname, e.g. "Cls.method"
    line: int = 0  # the function's first line (decorators included) in the head version
    end_line: int = 0


@dataclass(frozen=True)
class SuggestedTest:
    path: str  # where the test file would go
    content: str  # a complete pytest module
    targets: tuple[TestTarget, ...]
    properties: tuple[str, ...]  # families, e.g. ("no-crash", "roundtrip")
    module: str = ""  # dotted module under test
    import_root: str = ""  # directory to put on sys.path ("" = repository root, "src" for src layouts)
    mutation_lines: tuple[int, ...] = ()  # changed head lines of a modified function: verification mutates them

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "content": self.content,
            "targets": [{"path": t.path, "function": t.function} for t in self.targets],
        }


@dataclass(frozen=True)
class TestSuggestions:
    __test__ = False  # not a pytest test class

    tests: tuple[SuggestedTest, ...] = ()
    notes: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()  # falsified properties, when verification ran


class TestWriter(Protocol):
    """The seam for LLM synthesis (owned elsewhere): improve or add tests given the deterministic draft.

    Whatever it returns is validated like the deterministic tests; invalid files are dropped with a note.
    """

    def __call__(self, target: TestTarget, function_source: str, draft: SuggestedTest) -> SuggestedTest | None: ...


class Verifier(Protocol):
    """The seam for sandboxed verification (analyzers.sandbox.verify_suggestions has this shape)."""

    def __call__(self, suggestions: TestSuggestions) -> TestSuggestions: ...


@dataclass(frozen=True)
class TestRequest:
    __test__ = False  # not a pytest test class

    changeset: ChangeSet
    read_head: FileReader
    read_base: FileReader | None = None
    syntax: Any = None  # analyzers.syntax map: changed_symbols(path) -> [ChangedSymbol(path, symbol, change)]
    max_functions: int = 5
    max_examples: int = 50
    findings: tuple[Finding, ...] = ()
    writer: TestWriter | None = None  # optional LLM hook
    verifier: Verifier | None = None  # opt-in (tests.verify): runs PR code in a sandbox
    only: tuple[TestTarget, ...] = ()  # `/diffwise tests path::function`: restrict to these


@dataclass(frozen=True)
class Candidate:
    path: str
    module: str
    import_root: str
    info: FunctionInfo
    module_info: ModuleInfo
    change: Literal["added", "modified"]
    base_source: str | None
    risk: float
    reasons: tuple[str, ...] = field(default=(), compare=False)
    changed_lines: tuple[int, ...] = ()  # added head lines inside the function


# ---- repository layout ------------------------------------------------------------------------------


def module_path(path: str, exists: Callable[[str], bool]) -> tuple[str, str] | None:
    """(import root, dotted module) of a .py file from the repo layout: packages with __init__.py, src/ layouts."""
    pure = PurePosixPath(path)
    if pure.suffix != ".py":
        return None
    dirs = list(pure.parent.parts) if str(pure.parent) != "." else []
    i = len(dirs)
    while i > 0 and exists("/".join([*dirs[:i], "__init__.py"])):
        i -= 1
    root, package = dirs[:i], dirs[i:]
    parts = [*package] + ([] if pure.stem == "__init__" else [pure.stem])
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return "/".join(root), ".".join(parts)


def is_test_path(path: str) -> bool:
    pure = PurePosixPath(path)
    name = pure.name
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or any(p in ("tests", "test", "testing") for p in pure.parts[:-1])
    )


def suggested_test_path(module: str, qualname: str) -> str:
    function = re.sub(r"\W", "_", qualname).lower()
    return f"tests/test_diffwise_{module.replace('.', '_')}_{function}.py"


def default_run_command(tests: Sequence[SuggestedTest]) -> str:
    roots = sorted({t.import_root for t in tests if t.import_root})
    prefix = f"PYTHONPATH={':'.join(roots)} " if roots else ""
    return f"{prefix}python -m pytest {' '.join(t.path for t in tests)}".strip()


# ---- targets ------------------------------------------------------------------------------------------


def _spans_hit(module: ModuleInfo, lines: Iterable[int]) -> set[str]:
    wanted = set(lines)
    return {q for q, f in module.functions.items() if any(f.start_line <= n <= f.end_line for n in wanted)}


def _changed_qualnames(
    changed: ChangedFile, head: ModuleInfo, base: ModuleInfo | None, syntax: Any
) -> dict[str, Literal["added", "modified"]]:
    out: dict[str, Literal["added", "modified"]] = {}
    symbols = None
    if syntax is not None and hasattr(syntax, "changed_symbols"):
        try:
            symbols = list(syntax.changed_symbols(changed.path))
        except Exception:  # the syntax map is a help, not a requirement
            symbols = None
    if symbols:
        for sym in symbols:
            name = getattr(sym, "symbol", None)
            qual = getattr(name, "qualname", name)
            if isinstance(qual, str) and qual in head.functions:
                out[qual] = "added" if getattr(sym, "change", "modified") == "added" else "modified"
        return out
    hit = _spans_hit(head, changed.added_lines)
    if base is not None:
        hit |= {q for q in _spans_hit(base, changed.removed_lines) if q in head.functions}
    for qual in hit:
        out[qual] = "modified" if base is not None and qual in base.functions else "added"
    return out


def untestable_reason(info: FunctionInfo) -> str | None:
    """Why a function is not a useful target, or None when it is."""
    if info.name.startswith("_") or (info.class_name or "").startswith("_"):
        return "private"
    if info.name.startswith("test") or (info.class_name or "").startswith("Test"):
        return "a test itself"
    if any(_SKIP_DECORATORS.search(d) for d in info.decorators):
        return "property, abstract or overload"
    if info.method_kind == "method" and not info.params and info.complexity <= 1:
        return "trivial accessor"
    reached = io_call(info.source)
    if reached is not None:
        return f"it calls `{reached.lstrip('.')}` (network, processes, files or sleep): not for a property test"
    return None


def _has_existing_test(read: FileReader, path: str, module: str, name: str) -> bool:
    stem = PurePosixPath(path).stem
    parent = str(PurePosixPath(path).parent)
    candidates = [
        f"tests/test_{stem}.py",
        f"test_{stem}.py",
        f"tests/test_{module.replace('.', '_')}.py",
        f"{parent}/tests/test_{stem}.py",
        f"{parent}/test_{stem}.py",
        f"tests/{'/'.join(module.split('.')[:-1])}/test_{stem}.py",
    ]
    for candidate in dict.fromkeys(candidates):
        text = _safe_read(read, candidate)
        if text and re.search(rf"\b{re.escape(name)}\b", text):
            return True
    return False


def _safe_read(read: FileReader | None, path: str) -> str | None:
    if read is None:
        return None
    try:
        return read(path)
    except Exception:  # a reader failing on one path must not stop synthesis
        return None


def find_candidates(request: TestRequest) -> tuple[list[Candidate], list[str]]:
    notes: list[str] = []
    out: list[Candidate] = []
    only = {(t.path, t.function) for t in request.only}
    for changed in request.changeset.files:
        if not changed.path.endswith(".py") or changed.status is FileStatus.REMOVED or is_test_path(changed.path):
            continue
        text = _safe_read(request.read_head, changed.path)
        if text is None:
            continue
        try:
            head = parse_module(text)
        except (SyntaxError, ValueError, RecursionError):
            notes.append(f"{changed.path}: not parsed (syntax error); no tests suggested")
            continue
        layout = module_path(changed.path, lambda p: _safe_read(request.read_head, p) is not None)
        if layout is None:
            notes.append(f"{changed.path}: not importable as a module; no tests suggested")
            continue
        root, module = layout
        base: ModuleInfo | None = None
        if changed.status is not FileStatus.ADDED:
            base_text = _safe_read(request.read_base, changed.old_path or changed.path)
            if base_text is not None:
                try:
                    base = parse_module(base_text)
                except (SyntaxError, ValueError, RecursionError):
                    base = None
        for qual, change in sorted(_changed_qualnames(changed, head, base, request.syntax).items()):
            info = head.functions[qual]
            if only and (changed.path, qual) not in only:
                continue
            why = untestable_reason(info)
            if why is not None:
                continue
            base_info = base.functions.get(qual) if base is not None else None
            risk, reasons = _risk(info, changed.path, request, module, base_info is None)
            out.append(
                Candidate(
                    changed.path,
                    module,
                    root,
                    info,
                    head,
                    change,
                    base_info.source if base_info is not None else None,
                    risk,
                    reasons,
                    tuple(sorted(n for n in changed.added_lines if info.start_line <= n <= info.end_line)),
                )
            )
    out.sort(key=lambda c: (-c.risk, c.path, c.info.start_line))
    return out, notes


def _risk(
    info: FunctionInfo, path: str, request: TestRequest, module: str, is_new: bool
) -> tuple[float, tuple[str, ...]]:
    reasons: list[str] = [f"complexity {info.complexity}"]
    risk = float(min(info.complexity, 15))
    hits = sum(1 for f in request.findings if f.path == path and info.start_line <= f.line <= info.end_line)
    if hits:
        risk += 3 * hits
        reasons.append(f"{hits} finding(s)")
    if not _has_existing_test(request.read_head, path, module, info.name):
        risk += 2
        reasons.append("no existing test")
    if not is_new:
        risk += 1  # a changed function has callers relying on its old behaviour
    return risk, tuple(reasons)


# ---- rendering -----------------------------------------------------------------------------------------


def render_module(candidate: Candidate, tests: Sequence[PropertyTest], preamble: Sequence[str]) -> str:
    families = ", ".join(dict.fromkeys(t.family for t in tests))
    target = f"{candidate.module}.{candidate.info.qualname}"
    code = "\n".join(t.code for t in tests) + "".join(preamble)
    helpers = set().union(*(t.helpers for t in tests)) if tests else set()
    std: list[str] = []
    if "_same" in helpers:
        std.append("import math")
    if "asyncio.run(" in code:
        std.append("import asyncio")
    if "itertools." in code:
        std.append("import itertools")
    hyp = ["given", "settings", "strategies as st"]
    if "assume(" in code:
        hyp.insert(0, "assume")
    parts = [
        f'"""Property tests for {target}, suggested by diffwise: {families}."""\n\n',
        "\n".join(sorted(std)) + ("\n\n" if std else ""),
        f"from hypothesis import {', '.join(hyp)}\n\n",
        f"import {candidate.module} as {MODULE_ALIAS}\n",
    ]
    for name in ("_same", "_outcome", "_refused", "_load_base"):
        if name in helpers:
            parts.append("\n\n" + HELPERS[name])
    for block in preamble:
        parts.append("\n\n" + block)
    for test in tests:
        parts.append("\n\n" + test.code)
    return "".join(parts)


def build_suggestion(candidate: Candidate, max_examples: int, taken: set[str]) -> SuggestedTest | None:
    info = candidate.info
    tests, preamble = family_tests(candidate.info, candidate.module_info, max_examples, candidate.base_source)
    tests = [t for t in tests if t.name not in taken]
    if not tests:
        return None
    taken.update(t.name for t in tests)
    tests.sort(key=lambda t: -STRENGTH[t.family])
    content = render_module(candidate, tests, preamble)
    return SuggestedTest(
        path=suggested_test_path(candidate.module, candidate.info.qualname),
        content=content,
        targets=(TestTarget(candidate.path, info.qualname, info.start_line, info.end_line),),
        properties=tuple(dict.fromkeys(t.family for t in tests)),
        module=candidate.module,
        import_root=candidate.import_root,
        mutation_lines=candidate.changed_lines if candidate.base_source is not None else (),
    )


def module_names_reader(candidates: Sequence[Candidate]) -> Callable[[str], frozenset[str] | None]:
    known: dict[str, ModuleInfo] = {c.module: c.module_info for c in candidates}

    def names(dotted: str) -> frozenset[str] | None:
        info = known.get(dotted)
        if info is None:
            return None
        return info.bound_names | frozenset(info.functions)

    return names


def synthesize_tests(request: TestRequest) -> TestSuggestions:
    """Suggested property tests for the changed functions of a change set; only tests that pass validation."""
    candidates, notes = find_candidates(request)
    names = module_names_reader(candidates)
    drafts: list[tuple[Candidate, SuggestedTest]] = []
    taken: set[str] = set()
    skipped = 0
    for candidate in candidates:
        if len(drafts) >= max(request.max_functions, 0):
            skipped += 1
            continue
        if plan_call(candidate.info, candidate.module_info, optional=False) is None:
            notes.append(f"{candidate.path}::{candidate.info.qualname}: no strategy for its parameters (annotate them)")
            continue
        try:
            suggestion = build_suggestion(candidate, request.max_examples, taken)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:  # one odd function must not stop the rest
            notes.append(f"{candidate.path}::{candidate.info.qualname}: no tests ({type(exc).__name__})")
            continue
        if suggestion is None:
            continue
        if request.writer is None:
            problems = check_test_module(suggestion.content, module_names=names)
            if problems:
                notes.append(f"{suggestion.path}: dropped, failed validation: {'; '.join(problems)}")
                continue
        drafts.append((candidate, suggestion))
    improved = [d for _, d in drafts] if request.writer is None else _with_writer(request.writer, drafts, notes)
    chosen: list[SuggestedTest] = []
    for suggestion in improved:
        problems = check_test_module(suggestion.content, module_names=names)
        if problems:
            notes.append(f"{suggestion.path}: dropped, failed validation: {'; '.join(problems)}")
            continue
        chosen.append(suggestion)
    if skipped:
        notes.append(f"{skipped} more changed function(s) not covered (tests.max_functions={request.max_functions})")
    result = TestSuggestions(tuple(chosen), tuple(notes))
    if request.verifier is not None and chosen:
        result = request.verifier(result)
    return result


def _with_writer(
    writer: TestWriter, drafts: Sequence[tuple[Candidate, SuggestedTest]], notes: list[str]
) -> list[SuggestedTest]:
    """Each draft, or the writer's better module for it when that one validates. A writer with `write_many`
    (the LLM writer) gets every target at once and runs its calls concurrently; results keep the drafts' order."""
    jobs = [(draft.targets[0], candidate.info.source, draft) for candidate, draft in drafts]
    batch = getattr(writer, "write_many", None)
    outcomes: list[SuggestedTest | BaseException | None]
    if callable(batch):
        try:
            outcomes = list(batch(jobs))
        except Exception as exc:  # the LLM is optional: keep the deterministic drafts
            outcomes = [exc] * len(jobs)
    else:
        outcomes = []
        for job in jobs:
            try:
                outcomes.append(writer(*job))
            except Exception as exc:
                outcomes.append(exc)
    out: list[SuggestedTest] = []
    for (candidate, draft), better in zip(drafts, outcomes, strict=True):
        if isinstance(better, BaseException):
            notes.append(f"{draft.path}: LLM test writer failed ({type(better).__name__}); deterministic tests kept")
            out.append(draft)
        elif better is None:
            out.append(draft)
        elif check_test_module(better.content, module_names=module_names_reader([candidate])):
            notes.append(f"{draft.path}: LLM tests failed validation; deterministic tests kept")
            out.append(draft)
        else:
            out.append(better)
    return out


# ---- delivery text (the publisher posts it) --------------------------------------------------------------

_INTRO = (
    "diffwise suggests these Hypothesis property tests for the functions this pull request changes. "
    "Each one parses, imports only what exists in the repository and checks a property."
)


def render_tests_comment(suggestions: TestSuggestions, run_command: str | None = None) -> str:
    """The PR comment: one file per target and the command to run them; never over GitHub's 65,536 limit."""
    tests = suggestions.tests
    command = run_command or default_run_command(tests)
    head = [TESTS_MARKER, "### diffwise: suggested property tests", "", _INTRO, ""]
    if not tests:
        head.append("No tests to suggest for this change.")
    for finding in suggestions.findings:
        head.append(
            f"- :warning: **{finding.title or finding.rule}** `{finding.path}:{finding.line}`: {finding.message}"
        )
    run = ["", "Run them with:", "", "```sh", "pip install hypothesis pytest", command, "```"]
    run.append(
        "To keep a test, copy its file into this branch at the path shown, or reply `/diffwise tests commit` "
        "to have diffwise add them in one commit."
    )
    notes: list[str] = []
    if suggestions.notes:
        shown = [f"- {note[:300]}" for note in suggestions.notes[:10]]
        more = len(suggestions.notes) - len(shown)
        notes = ["", "<details><summary>Notes</summary>", "", *shown]
        notes += [f"- ... and {more} more"] if more > 0 else []
        notes.append("</details>")
    tail_text = "\n".join((run if tests else []) + notes)
    body = "\n".join(head)
    budget = COMMENT_LIMIT - len(body) - len(tail_text) - 200
    omitted = 0
    blocks: list[str] = []
    for test in tests:
        targets = ", ".join(f"`{t.path}::{t.function}`" for t in test.targets)
        fence = "````" if "```" in test.content else "```"
        block = (
            f"\n<details><summary><code>{test.path}</code> — {targets} ({', '.join(test.properties)})</summary>\n\n"
            f"{fence}python\n{test.content.rstrip()}\n{fence}\n</details>\n"
        )
        if len(block) > budget:
            omitted += 1
            continue
        budget -= len(block)
        blocks.append(block)
    text = body + "".join(blocks)
    if omitted:
        text += f"\n_{omitted} test file(s) omitted: the comment would exceed GitHub's size limit._\n"
    text += "\n" + tail_text + "\n"
    if len(text) > COMMENT_LIMIT:  # only reachable with a pathological command or findings list
        text = text[: COMMENT_LIMIT - 20] + "\n_(truncated)_\n"
    return text


def suggestions_json(suggestions: TestSuggestions) -> list[Mapping[str, Any]]:
    return [t.to_json() for t in suggestions.tests]
