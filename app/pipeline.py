"""ChangeSet + file readers + policy → Review: skip, parse, analyze ∥ LLM ∥ tests, filter, dedupe, rank."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from analyzers.base import Analyzer, AnalyzerContext, Confidence, FileReader, FilterMode, Finding, Severity
from analyzers.baseline import compare_with_base, merge_per_function
from analyzers.consolidate import demote_moved_code, merge_nearby
from analyzers.diff import ChangeSet, Skipped
from analyzers.filtering import in_scope as _filter_in_scope
from analyzers.registry import load_analyzer
from analyzers.shards import Split, analyze_in_turn
from analyzers.shards import plan as plan_split
from analyzers.testcode import demote_test_code

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000  # larger files are listed as skipped ("too large"), never half-read
MAX_FILE_CHANGED_LINES = 20_000


@dataclass(frozen=True)
class PullInfo:
    owner: str
    repo: str
    number: int
    title: str = ""
    body: str = ""
    base_sha: str = ""
    head_sha: str = ""
    author: str = ""


class LLMReviewer(Protocol):
    """What the pipeline needs from the LLM side (app.llm_review provides it)."""

    async def review(self, request: Any) -> Any: ...


@dataclass(frozen=True)
class ReviewInput:
    changeset: ChangeSet
    read_head: FileReader
    read_base: FileReader | None = None
    policy: Any = None  # app.policy.Policy; None → defaults
    pr: PullInfo | None = None
    llm: LLMReviewer | None = None
    mode: FilterMode | None = None  # None → the policy's analyzers.mode
    gitattributes: str | None = None
    analyzers: Sequence[Analyzer] | None = None  # None → the built-in analyzers the policy enables
    llm_paths: frozenset[str] | None = None  # incremental review: only these files go to the LLM
    checkout: Path | None = None  # a local checkout of the head, for opt-in test verification (tests.verify)


@dataclass(frozen=True)
class LLMSummary:
    used: bool
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    summary: str = ""
    prompt_version: str | None = None


@dataclass(frozen=True)
class Review:
    findings: tuple[Finding, ...] = ()
    tests: tuple[Any, ...] = ()  # analyzers.testgen.SuggestedTest
    skipped: tuple[Skipped, ...] = ()
    failed_analyzers: tuple[tuple[str, str], ...] = ()
    llm: LLMSummary = field(default_factory=lambda: LLMSummary(used=False))
    notes: tuple[str, ...] = ()
    reviewed_files: tuple[str, ...] = ()
    suppressed: int = 0  # findings dropped by policy (disabled rules, confidence) — counted, not silent
    timings: tuple[tuple[str, float], ...] = ()


def default_policy() -> Any:
    from app.policy import Policy

    return Policy.default()


def _section(policy: Any, name: str) -> Any:
    return getattr(policy, name, None)


def _enabled(obj: Any, default: bool = True) -> bool:
    return bool(getattr(obj, "enabled", default)) if obj is not None else default


def skip_reason(policy: Any, path: str) -> str | None:
    """Why the policy keeps `path` out of the review (paths.include/exclude, generated files), or None."""
    reason = policy.skip_reason(path)
    return str(reason) if reason else None


def select_files(inp: ReviewInput, policy: Any) -> tuple[ChangeSet, list[Skipped], list[str]]:
    """Apply path filters, generated/vendored detection and size limits; return what remains."""
    notes: list[str] = []
    skipped: list[Skipped] = []
    changeset = inp.changeset
    for f in changeset.files:
        reason = skip_reason(policy, f.path)
        if reason is not None:
            skipped.append(Skipped(f.path, reason))
        elif len(f.added_lines) + len(f.removed_lines) > MAX_FILE_CHANGED_LINES:
            skipped.append(Skipped(f.path, f"too large ({len(f.added_lines)} added lines)"))
    paths = _section(policy, "paths")
    if getattr(paths, "skip_generated", True):
        from analyzers.generated import classify_skips

        try:
            skipped.extend(classify_skips(changeset, inp.read_head, inp.gitattributes))
        except Exception as exc:  # a detector bug must not lose the review
            notes.append(f"generated-file detection failed: {exc}")
    unique: list[Skipped] = []
    seen: set[str] = set()
    for s in skipped:  # the first skip reason per path
        if s.path not in seen:
            seen.add(s.path)
            unique.append(s)
    return changeset.with_skipped(unique), [*inp.changeset.skipped, *unique], notes


class _BoundedReader:
    """Reads each head file once, refusing files over the size limit (they are reported as skipped)."""

    def __init__(self, reader: FileReader) -> None:
        self._reader = reader
        self._cache: dict[str, str | None] = {}
        self.too_large: set[str] = set()

    def __call__(self, path: str) -> str | None:
        if path in self._cache:
            return self._cache[path]
        try:
            text = self._reader(path)
        except Exception as exc:
            log.warning("reading %s failed: %s", path, exc)
            text = None
        if text is not None and len(text) > MAX_FILE_BYTES:
            self.too_large.add(path)
            text = None
        self._cache[path] = text
        return text


def analyzer_names(policy: Any) -> list[str]:
    section = _section(policy, "analyzers")
    names = []
    for name in ("security", "secrets", "quality", "external"):
        if _enabled(getattr(section, name, None) if section is not None else None):
            names.append(name)
    return names


def analyzer_settings(policy: Any, name: str) -> dict[str, Any]:
    helper = getattr(policy, "analyzer_settings", None)
    if callable(helper):
        try:
            return dict(helper(name))
        except Exception:
            return {}
    section = getattr(_section(policy, "analyzers"), name, None)
    if section is None:
        return {}
    dump = getattr(section, "model_dump", None)
    return dict(dump()) if callable(dump) else {}


def enabled_analyzers(policy: Any) -> tuple[list[Analyzer], list[str]]:
    found: list[Analyzer] = []
    notes: list[str] = []
    for name in analyzer_names(policy):
        analyzer = load_analyzer(name)
        if analyzer is None:
            notes.append(f"analyzer {name} is not available in this installation")
        else:
            found.append(analyzer)
    return found, notes


async def run_analyzers(
    analyzers: Sequence[Analyzer],
    changeset: ChangeSet,
    read: FileReader,
    syntax: Any,
    policy: Any,
    mode: FilterMode,
    read_base: FileReader | None,
    split: Split | None = None,
) -> tuple[list[Finding], list[tuple[str, str]]]:
    """Run the analyzers in worker threads; a crashing analyzer is reported, the others go on.

    Analyzers that only compute (`cpu_bound = True`: the built-in security, secrets and quality) share one
    thread and run in turn: under the GIL, threads of pure Python work only take turns anyway, and their
    switching costs 15-20% more than running them one after another. Every other analyzer (the external
    one waits on ruff/bandit processes) gets a thread of its own, so its waits overlap with that work.
    With a `split` (a large change, analysis worker processes running), the shared thread keeps some files
    and hands the others to those processes (analyzers.shards).
    """
    failed: list[tuple[str, str]] = []
    contexts = [
        (analyzer, AnalyzerContext(changeset, read, syntax, analyzer_settings(policy, analyzer.name), mode, read_base))
        for analyzer in analyzers
    ]
    shared = [i for i, (a, _) in enumerate(contexts) if getattr(a, "cpu_bound", False) is True]
    alone = [i for i in range(len(contexts)) if i not in shared]
    outcomes: list[list[Finding] | BaseException | None] = [None] * len(contexts)
    jobs: list[Awaitable[Any]] = [asyncio.to_thread(contexts[i][0].analyze, contexts[i][1]) for i in alone]
    if shared:
        jobs.append(asyncio.to_thread(analyze_in_turn, [contexts[i] for i in shared], split))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for i, result in zip(alone, results, strict=False):
        outcomes[i] = result
    elsewhere: list[Finding] = []  # syntax findings of the files worker processes parsed
    parsed_elsewhere: frozenset[str] = frozenset()
    if shared:
        if isinstance(results[-1], BaseException):  # the shared thread failed: so did what it had not run
            for i in shared:
                outcomes[i] = results[-1]
        else:
            turn, elsewhere, parsed_elsewhere = results[-1]
            for i, outcome in zip(shared, turn, strict=True):
                outcomes[i] = outcome.error if outcome.error is not None else outcome.findings
    findings: list[Finding] = []
    for (analyzer, _), outcome in zip(contexts, outcomes, strict=True):  # in the analyzers' order
        name = analyzer.name
        if isinstance(outcome, BaseException):
            log.exception("analyzer %s crashed", name, exc_info=outcome)
            failed.append((name, f"{type(outcome).__name__}: {outcome}"))
        elif outcome is None:  # a broken analyzer: say so, like a crash
            failed.append((name, "returned no findings list"))
        else:
            findings.extend(outcome)
    if syntax is not None:
        from analyzers.syntax import syntax_findings

        here = changeset
        if parsed_elsewhere:
            here = ChangeSet(tuple(f for f in changeset.files if f.path not in parsed_elsewhere), changeset.skipped)
        try:
            findings.extend(syntax_findings(syntax, here))
        except Exception as exc:
            failed.append(("syntax", f"{type(exc).__name__}: {exc}"))
        findings.extend(elsewhere)
    return findings, failed


def in_scope(finding: Finding, changeset: ChangeSet, mode: FilterMode) -> bool:
    """reviewdog-style filter (analyzers.filtering); LLM findings were already anchored inside the change."""
    if finding.source == "llm" and mode == "added":
        return changeset.get(finding.path) is not None
    return _filter_in_scope(finding, changeset, mode)


def apply_policy(findings: Sequence[Finding], policy: Any) -> tuple[list[Finding], int]:
    """Per-rule on/off and severity overrides, analyzer confidence floors; returns (kept, dropped count)."""
    kept: list[Finding] = []
    dropped = 0
    analyzers = _section(policy, "analyzers")
    rules = getattr(analyzers, "rules", {}) or {}
    security = getattr(analyzers, "security", None)
    floor = Confidence.parse(getattr(security, "min_confidence", "low") or "low")
    for f in findings:
        rule = rules.get(f.rule) if isinstance(rules, dict) else None
        if rule is not None and getattr(rule, "enabled", None) is False:
            dropped += 1
            continue
        if f.analyzer == "security" and f.confidence < floor:
            dropped += 1
            continue
        override = getattr(rule, "severity", None) if rule is not None else None
        if override:
            f = replace(f, severity=Severity.parse(override))
        kept.append(f)
    return kept, dropped


def dedupe_and_rank(findings: Sequence[Finding]) -> list[Finding]:
    """Same place + same rule once; identical code repeated in a symbol gets occurrence 1, 2, ...; rank."""
    by_place: dict[tuple[str, str, int, int], Finding] = {}
    for f in findings:
        key = (f.rule, f.path, f.start_line, f.end_line)
        best = by_place.get(key)
        if best is None or f.rank > best.rank:
            by_place[key] = f
    ordered = sorted(by_place.values(), key=lambda f: (f.path, f.start_line, f.rule))
    counts: dict[str, int] = defaultdict(int)
    unique: list[Finding] = []
    for f in ordered:
        base = replace(f, occurrence=0).id
        n = counts[base]
        counts[base] += 1
        unique.append(replace(f, occurrence=n) if n else f)
    return sorted(unique, key=lambda f: (-f.rank[0], -f.rank[1], f.path, f.start_line, f.rule))


async def run_review(inp: ReviewInput) -> Review:
    timings: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    policy = inp.policy if inp.policy is not None else default_policy()
    mode: FilterMode = inp.mode or getattr(_section(policy, "analyzers"), "mode", "added") or "added"
    changeset, skipped, notes = select_files(inp, policy)
    read = _BoundedReader(inp.read_head)
    for f in changeset.files:  # read each head file once up front: sizes decide what is skipped
        read(f.path)
    if read.too_large:
        skipped.extend(Skipped(p, f"too large (over {MAX_FILE_BYTES // 1000} KB)") for p in sorted(read.too_large))
        changeset = changeset.with_skipped(Skipped(p, "too large") for p in read.too_large)

    from analyzers.syntax import build_syntax_map

    if inp.analyzers is not None:
        analyzers: Sequence[Analyzer] = inp.analyzers
    else:
        analyzers, analyzer_notes = enabled_analyzers(policy)
        notes.extend(analyzer_notes)
    # a large change, analysis worker processes running: they parse and analyze some of the files (with the
    # built-in analyzers only: a worker loads its own from the registry, not the instances a caller passed)
    split = None
    if inp.analyzers is None:
        settings = partial(analyzer_settings, policy)
        split = await asyncio.to_thread(plan_split, changeset, read, analyzers, settings, mode)
    try:
        local = split.local if split is not None else None
        syntax = await asyncio.to_thread(build_syntax_map, changeset, read, paths=local)
        timings.append(("parse", time.perf_counter() - t0))

        t1 = time.perf_counter()
        findings, failed = await run_analyzers(analyzers, changeset, read, syntax, policy, mode, inp.read_base, split)
    finally:
        if split is not None:
            split.abandon()  # a review stopped early (cancelled, crashed) leaves no worker waiting to be read
    for analyzer in analyzers:  # e.g. "bandit not installed": said, never an error
        notes.extend(getattr(getattr(analyzer, "last_run", None), "notes", ()) or ())
    findings = [f for f in findings if f.path not in read.too_large and in_scope(f, changeset, mode)]
    findings = _drop_external_duplicates(findings)
    findings = demote_test_code(findings)  # before the policy: its confidence floor then hides them
    findings = demote_moved_code(findings, changeset, read)
    # Size limits the base version already broke are not this change's to fix (blocking base reads: a thread)
    findings, inherited = await asyncio.to_thread(compare_with_base, findings, changeset, inp.read_base, read_head=read)
    findings, suppressed = apply_policy(findings, policy)
    findings = merge_per_function(findings)  # after the policy: a disabled size rule is not folded back in
    findings = merge_nearby(findings)
    suppressed += inherited
    if inherited:
        notes.append(
            f"{inherited} size finding(s) left out: those functions were already over the limit before this "
            "change, which did not make them worse."
        )
    findings = dedupe_and_rank(findings)
    timings.append(("analyze", time.perf_counter() - t1))

    t2 = time.perf_counter()
    meter = _cost_meter(inp)  # the review and the test writer share the PR's LLM budget
    llm_task = _run_llm(inp, changeset, syntax, read, policy, findings, meter)
    tests_task = _run_tests(inp, changeset, syntax, read, policy, findings, meter)
    (llm_findings, llm_summary, llm_notes), (tests, test_notes, falsified) = await asyncio.gather(llm_task, tests_task)
    notes.extend(llm_notes)
    notes.extend(group_function_notes(test_notes))
    if falsified:
        findings = dedupe_and_rank([*findings, *falsified])
    if llm_findings:
        merged, extra_dropped = apply_policy([f for f in llm_findings if in_scope(f, changeset, mode)], policy)
        suppressed += extra_dropped
        findings = dedupe_and_rank([*findings, *merged])
    timings.append(("llm+tests", time.perf_counter() - t2))

    return Review(
        findings=tuple(findings),
        tests=tuple(tests),
        skipped=tuple(skipped),
        failed_analyzers=tuple(failed),
        llm=llm_summary,
        notes=tuple(notes),
        reviewed_files=tuple(f.path for f in changeset.files if f.path not in read.too_large),
        suppressed=suppressed,
        timings=tuple(timings),
    )


def _drop_external_duplicates(findings: list[Finding]) -> list[Finding]:
    external = [f for f in findings if f.analyzer == "external"]
    if not external:
        return findings
    ours = [f for f in findings if f.analyzer != "external"]
    try:
        from analyzers.external import drop_duplicates
    except ImportError:
        return findings
    return ours + list(drop_duplicates(external, ours))


_FUNCTION_NOTE = re.compile(r"^(?P<path>[^:\s]+)::(?P<function>[\w.<>]+): (?P<reason>.+)$")


def group_function_notes(notes: Sequence[str], shown: int = 3) -> list[str]:
    """One line per reason instead of one per function: "path::fn: reason" notes with the same reason merge."""
    order: list[tuple[str, str]] = []  # ("note", text) or ("reason", reason) at the reason's first place
    grouped: dict[str, list[str]] = {}
    for note in notes:
        match = _FUNCTION_NOTE.match(note)
        if match is None:
            order.append(("note", note))
            continue
        reason = match.group("reason")
        if reason not in grouped:
            grouped[reason] = []
            order.append(("reason", reason))
        grouped[reason].append(f"`{match.group('function')}` ({match.group('path')})")
    merged: list[str] = []
    for kind, text in order:
        names = grouped[text] if kind == "reason" else []
        if kind == "note":
            merged.append(text)
        elif len(names) == 1:
            merged.append(f"{names[0]}: {text}")
        else:
            more = f" and {len(names) - shown} more" if len(names) > shown else ""
            merged.append(f"{len(names)} functions, {', '.join(names[:shown])}{more}: {text}")
    return merged


def _cost_meter(inp: ReviewInput) -> Any:
    if inp.llm is None:
        return None
    from app.cost_meter import CostMeter

    return CostMeter(getattr(getattr(inp.llm, "budget", None), "max_cost_usd", None))


async def _run_llm(
    inp: ReviewInput,
    changeset: ChangeSet,
    syntax: Any,
    read: FileReader,
    policy: Any,
    prior: list[Finding],
    meter: Any = None,
) -> tuple[list[Finding], LLMSummary, list[str]]:
    if inp.llm is None:
        return [], LLMSummary(used=False), []
    if not _enabled(_section(policy, "llm")):
        return [], LLMSummary(used=False), ["LLM review disabled by policy"]
    if inp.llm_paths is not None:
        changeset = ChangeSet(tuple(f for f in changeset.files if f.path in inp.llm_paths), changeset.skipped)
        if not changeset.files:
            return [], LLMSummary(used=False), ["LLM review: no file changed since the last review"]
    try:
        from app.llm_review import LLMRequest

        pr = inp.pr
        instructions = getattr(policy, "instructions", "") or ""
        helper = getattr(policy, "instructions_for", None)
        path_instructions = {f.path: list(helper(f.path)) for f in changeset.files} if callable(helper) else {}
        request = LLMRequest(
            changeset=changeset,
            syntax=syntax,
            read_head=read,
            pr_title=pr.title if pr else "",
            pr_body=pr.body if pr else "",
            instructions=instructions,
            path_instructions=path_instructions,
            prior_findings=list(prior),
            repo=f"{pr.owner}/{pr.repo}" if pr else "",
            pr_number=pr.number if pr else None,
            head_sha=pr.head_sha if pr else "",
            meter=meter,
        )
        result = await inp.llm.review(request)
    except Exception as exc:  # degrade, don't fail: the analyzers' review still goes out
        log.warning("LLM review failed: %s", exc)
        return [], LLMSummary(used=False), [f"LLM review unavailable ({type(exc).__name__}); analyzers only"]
    usage = getattr(result, "usage", None)
    summary = LLMSummary(
        used=usage is not None and getattr(usage, "calls", 1) > 0,
        model=getattr(usage, "model", None),
        input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        cache_read_tokens=int(getattr(usage, "cache_read_tokens", 0) or 0),
        cache_write_tokens=int(getattr(usage, "cache_write_tokens", 0) or 0),
        cost_usd=float(getattr(usage, "cost_usd", 0.0) or 0.0),
        summary=str(getattr(result, "summary", "") or ""),
        prompt_version=getattr(result, "prompt_version", None),
    )
    notes = list(getattr(result, "notes", []) or [])
    not_sent = list(getattr(result, "not_sent", []) or [])
    if not_sent:
        notes.append(f"LLM budget: {len(not_sent)} file(s) not sent to the LLM: {', '.join(not_sent[:10])}")
    return list(getattr(result, "findings", []) or []), summary, notes


def _test_writer(inp: ReviewInput, changeset: ChangeSet, read: FileReader, policy: Any, meter: Any = None) -> Any:
    """The LLM test writer when the review has an LLM and the policy allows it (app.testgen_llm)."""
    if inp.llm is None or not _enabled(_section(policy, "llm")):
        return None
    try:
        from app.testgen_llm import LLMTestWriter
    except ImportError:
        return None
    pr = inp.pr
    return LLMTestWriter.from_reviewer(
        inp.llm,
        policy,
        changeset=changeset,
        read_head=read,
        repo=f"{pr.owner}/{pr.repo}" if pr else "",
        pr_number=pr.number if pr else None,
        head_sha=pr.head_sha if pr else "",
        meter=meter,
    )


async def _run_tests(
    inp: ReviewInput,
    changeset: ChangeSet,
    syntax: Any,
    read: FileReader,
    policy: Any,
    findings: list[Finding],
    meter: Any = None,
) -> tuple[list[Any], list[str], list[Finding]]:
    section = _section(policy, "tests")
    if not _enabled(section):
        return [], [], []
    try:
        from analyzers.testgen import TestRequest, synthesize_tests
    except ImportError:
        return [], [], []
    request = TestRequest(
        changeset=changeset,
        read_head=read,
        read_base=inp.read_base,
        syntax=syntax,
        max_functions=int(getattr(section, "max_functions", 5) or 5),
        max_examples=int(getattr(section, "max_examples", 50) or 50),
        findings=tuple(findings),
        verifier=_verifier(inp, section),
        writer=_test_writer(inp, changeset, read, policy, meter),
    )
    try:
        result = await asyncio.to_thread(synthesize_tests, request)
    except Exception as exc:
        log.exception("test synthesis failed")
        return [], [f"test synthesis failed: {type(exc).__name__}: {exc}"], []
    # A suggested test that fails on the head in the sandbox is a bug with a reproducer: it comes back as a finding.
    falsified = list(getattr(result, "findings", ()) or ())
    return list(result.tests), list(getattr(result, "notes", ()) or ()), falsified


def _verifier(inp: ReviewInput, section: Any) -> Any:
    if inp.checkout is None or not bool(getattr(section, "verify", False)):
        return None
    from analyzers.sandbox import make_verifier

    return make_verifier(inp.checkout)
