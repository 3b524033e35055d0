"""A large change analyzed by more than one process.

The built-in analyzers are pure computation, and tree-sitter holds the GIL while it parses and matches, so
threads cannot share their work. A long-running diffwise (the App's `serve` and `worker`) therefore keeps a
few analysis processes: a change of at least MIN_LINES changed lines is cut into groups of whole files in the
change's order, this process analyzes the first group while each worker process parses and analyzes another,
and the findings are merged back in the order one process would have produced them.

What crosses a process boundary is plain data: the group's part of the change, its files' text, the analyzer
names and settings, and findings back. Anything that needs the whole change or reads the repository (the
"no test touches it" hint reads test files) runs here, on the workers' plain-data candidates. A worker that
fails, dies or runs out of time costs nothing but time: its files are analyzed here instead.

How many worker processes there are, and how they are kept: analyzers.workerpool
(DIFFWISE_ANALYSIS_WORKERS).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from analyzers.base import Analyzer, AnalyzerContext, Finding
from analyzers.diff import ChangeSet, FileStatus
from analyzers.process_role import mark_long_running
from analyzers.workerpool import ENV, POOL, Worker

log = logging.getLogger(__name__)

__all__ = ["ENV", "POOL", "Split", "analyze_in_turn", "mark_long_running", "plan", "run_shard"]
SHARDABLE = frozenset({"security", "secrets", "quality"})  # per-file analyzers a worker process can run
MIN_LINES = 1500  # below this a change is analyzed in one process: the hand-off would cost more than it saves
MIN_FILES = 4
MAX_GROUPS = 8  # this process's group and at most seven workers'
WAIT_SECONDS = 120.0  # a worker's group not done by then is analyzed here


@dataclass
class Split:
    """Which changed files this process analyzes (`local`) and which went to worker processes (`remote`)."""

    local: frozenset[str]
    remote: tuple[tuple[str, ...], ...]  # one group of files per job, in the change's order
    workers: list[Worker | None] = field(default_factory=list)  # each group's (None: it stays here)

    def abandon(self) -> None:
        """Give up the answers not collected yet (the review stopped early): those workers are replaced."""
        for i, worker in enumerate(self.workers):
            if worker is not None:
                POOL.discard(worker)
                self.workers[i] = None


@dataclass(frozen=True)
class ShardJob:
    changeset: ChangeSet  # the group's files only
    texts: dict[str, str]
    analyzers: tuple[tuple[str, dict[str, Any]], ...]  # name and settings, in the pipeline's order
    mode: str


@dataclass
class ShardOutcome:
    name: str
    findings: list[Finding] = field(default_factory=list)
    pending: list[Any] = field(default_factory=list)  # what the analyzer's `resolve` finishes here
    error: str | None = None


@dataclass
class ShardResult:
    outcomes: list[ShardOutcome]
    syntax_findings: list[Finding]


@dataclass
class Outcome:
    """What one analyzer found over the whole change, or what stopped it."""

    findings: list[Finding] | None = None
    error: BaseException | None = None


# ---- the worker side --------------------------------------------------------------------------------


def run_shard(job: ShardJob) -> ShardResult:
    """Parse and analyze one group of files (in a worker process; plain data in, plain data out)."""
    from analyzers.registry import load_analyzer
    from analyzers.syntax import build_syntax_map, syntax_findings

    read = job.texts.get
    syntax = build_syntax_map(job.changeset, read)
    outcomes: list[ShardOutcome] = []
    for name, settings in job.analyzers:
        outcome = ShardOutcome(name)
        try:
            analyzer = load_analyzer(name)
            if analyzer is None:
                raise RuntimeError(f"analyzer {name} is not available in the worker process")
            ctx = AnalyzerContext(job.changeset, read, syntax, settings, job.mode)  # type: ignore[arg-type]
            outcome.findings, outcome.pending = _collect(analyzer, ctx)
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcomes.append(outcome)
    return ShardResult(outcomes, syntax_findings(syntax, job.changeset))


def _collect(analyzer: Analyzer, ctx: AnalyzerContext) -> tuple[list[Finding], list[Any]]:
    collect = getattr(analyzer, "collect", None)
    if callable(collect):
        findings, pending = collect(ctx)
        return list(findings), list(pending)
    return list(analyzer.analyze(ctx)), []


# ---- this process's side ----------------------------------------------------------------------------


def plan(
    changeset: ChangeSet,
    read: Any,
    analyzers: Sequence[Analyzer],
    settings: Callable[[str], Mapping[str, Any]],
    mode: str,
) -> Split | None:
    """Share a large change's analysis between this process and the worker processes, and start the
    workers' part now: they parse and analyze while this process parses its own files (None: don't)."""
    shared = [a for a in analyzers if getattr(a, "cpu_bound", False) is True]
    if not shared or any(a.name not in SHARDABLE for a in shared):
        return None
    files = [f for f in changeset.files if f.status is not FileStatus.REMOVED and not f.is_binary]
    if len(files) < MIN_FILES or sum(f.additions + f.deletions for f in files) < MIN_LINES:
        return None
    named = tuple((a.name, dict(settings(a.name))) for a in shared)
    workers = POOL.checkout(MAX_GROUPS - 1)
    if not workers:
        return None
    weights = []
    for f in files:
        text = read(f.path)
        weights.append(len(text) if isinstance(text, str) else 0)
    groups = _partition([f.path for f in files], weights, len(workers))
    for unused in workers[len(groups) - 1 :]:
        POOL.checkin(unused)
    workers = workers[: len(groups) - 1]
    if not workers:
        return None
    handed: list[Worker | None] = list(workers)
    rest = {f.path for f in changeset.files} - {f.path for f in files}  # removed, binary: nothing to parse
    split = Split(frozenset(groups[0]) | rest, tuple(tuple(g) for g in groups[1:]), handed)
    for i, (group, worker) in enumerate(zip(split.remote, workers, strict=True)):
        try:  # written by this thread: the worker starts now, while this process parses its own files
            worker.send(run_shard, _job(changeset, group, read, named, mode))
        except Exception:  # a dead worker, unpicklable settings: these files are analyzed here
            log.warning("could not hand %d files to an analysis worker; analyzing them here", len(group))
            POOL.discard(worker)
            split.workers[i] = None
    return split


def _partition(paths: list[str], weights: list[int], workers: int) -> list[list[str]]:
    """Contiguous groups of about equal weight (the change's order is kept: findings merge back in it), the
    first for this process. Equal shares finish together: the hand-off (pickling both ways, ~3 ms for half of
    a 5,000-line change) about equals this process's merging (measured on 2 CPUs: giving this process 1.15
    or 0.9 of a worker's share was slower)."""
    total = sum(weights) or 1
    bounds = [total * (k + 1) / (workers + 1) for k in range(workers)]  # where group k+1 starts
    groups: list[list[str]] = [[]]
    acc = 0
    for path, weight in zip(paths, weights, strict=True):
        while len(groups) <= workers and groups[-1] and acc + weight / 2 > bounds[len(groups) - 1]:
            groups.append([])
        groups[-1].append(path)
        acc += weight
    return [g for g in groups if g]


def analyze_in_turn(
    pairs: Sequence[tuple[Analyzer, AnalyzerContext]], split: Split | None
) -> tuple[list[Outcome], list[Finding], frozenset[str]]:
    """Run the analyzers one after another in this thread, over the split's local files when the workers
    took the others, then merge in the workers' results.

    Returns each analyzer's outcome (in `pairs` order), the syntax findings of the files the workers parsed,
    and those files (this process has not parsed them: their syntax findings are already in the list).
    """
    if split is None or not pairs:
        return [_run_here(a, ctx) for a, ctx in pairs], [], frozenset()
    local = [_collect_here(a, replace(ctx, paths=split.local)) for a, ctx in pairs]
    parts: list[list[tuple[list[Finding], list[Any]] | BaseException]] = [[x] for x in local]
    syntax: list[Finding] = []
    remote_paths: set[str] = set()
    for i, group in enumerate(split.remote):
        result = _answer(split, i)
        if result is None:  # analyzed here instead: the lazy syntax map parses these files now
            for i, (a, ctx) in enumerate(pairs):
                parts[i].append(_collect_here(a, replace(ctx, paths=frozenset(group))))
            continue
        remote_paths.update(group)
        syntax.extend(result.syntax_findings)
        for i, outcome in enumerate(result.outcomes):
            if outcome.error is not None:
                parts[i].append(RuntimeError(outcome.error))
            else:
                parts[i].append((outcome.findings, outcome.pending))
    return [_merge(a, ctx, p) for (a, ctx), p in zip(pairs, parts, strict=True)], syntax, frozenset(remote_paths)


def _job(
    changeset: ChangeSet,
    group: tuple[str, ...],
    read: Any,
    settings: tuple[tuple[str, dict[str, Any]], ...],
    mode: str,
) -> ShardJob:
    wanted = set(group)
    files = tuple(f for f in changeset.files if f.path in wanted)
    texts = {}
    for path in group:
        text = read(path)
        if isinstance(text, str):
            texts[path] = text
    return ShardJob(ChangeSet(files), texts, settings, mode)


def _answer(split: Split, index: int) -> ShardResult | None:
    """Group `index`'s result from its worker, or None (then it is analyzed here)."""
    worker = split.workers[index]
    if worker is None:
        return None
    split.workers[index] = None
    try:
        result = worker.receive(WAIT_SECONDS)
    except TimeoutError:
        log.warning("an analysis worker took over %.0f s; analyzing its files here", WAIT_SECONDS)
    except Exception as exc:
        log.warning("an analysis worker failed (%s); analyzing its files here", exc)
    else:
        POOL.checkin(worker)
        return result if isinstance(result, ShardResult) else None
    POOL.discard(worker)
    return None


def _run_here(analyzer: Analyzer, ctx: AnalyzerContext) -> Outcome:
    try:
        return Outcome(findings=analyzer.analyze(ctx))
    except BaseException as exc:  # reported as asyncio.gather(return_exceptions=True) reports a thread's
        return Outcome(error=exc)


def _collect_here(analyzer: Analyzer, ctx: AnalyzerContext) -> tuple[list[Finding], list[Any]] | BaseException:
    try:
        return _collect(analyzer, ctx)
    except BaseException as exc:
        return exc


def _merge(
    analyzer: Analyzer, ctx: AnalyzerContext, parts: list[tuple[list[Finding], list[Any]] | BaseException]
) -> Outcome:
    """One analyzer's findings over every group, in the change's order, as one process would list them."""
    for part in parts:
        if isinstance(part, BaseException):
            return Outcome(error=part)  # one process would have stopped at the same error
    findings = [f for part in parts if not isinstance(part, BaseException) for f in part[0]]
    resolve = getattr(analyzer, "resolve", None)
    if callable(resolve):
        try:
            findings.extend(resolve(ctx, [part[1] for part in parts if not isinstance(part, BaseException)]))
        except BaseException as exc:
            return Outcome(error=exc)
    return Outcome(findings=findings)
