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

DIFFWISE_ANALYSIS_WORKERS: `auto` (the default: long-running processes use up to two worker processes, one
fewer than the CPUs they may run on; a one-off `diffwise review` uses none, since starting them costs more
than it saves), `0` (never), or a number (that many, in every process, started on first use).
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from analyzers.base import Analyzer, AnalyzerContext, Finding
from analyzers.diff import ChangeSet, FileStatus

log = logging.getLogger(__name__)

ENV = "DIFFWISE_ANALYSIS_WORKERS"
SHARDABLE = frozenset({"security", "secrets", "quality"})  # per-file analyzers a worker process can run
MIN_LINES = 1500  # below this a change is analyzed in one process: the hand-off would cost more than it saves
MIN_FILES = 4
WAIT_SECONDS = 120.0  # a worker's group not done by then is analyzed here


@dataclass(frozen=True)
class Split:
    """Which changed files this process analyzes (`local`) and which went to worker processes (`remote`)."""

    local: frozenset[str]
    remote: tuple[tuple[str, ...], ...]  # one group of files per job, in the change's order
    jobs: tuple[Future[ShardResult] | None, ...] = ()  # each group's job (None: it could not be handed over)
    executor: ProcessPoolExecutor | None = field(default=None, compare=False)


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


def _warm_worker() -> None:
    """Compile the rule packs of the languages most changes are in once per worker, not per first job."""
    from analyzers.rulepack import pack_for

    for language in ("python", "javascript", "typescript"):
        pack_for(language)


def _ready() -> bool:
    return True


# ---- the pool ---------------------------------------------------------------------------------------


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._warm: Future[Any] | None = None
        self._size = 0
        self.long_running = False

    def workers(self) -> int:
        raw = os.environ.get(ENV, "auto").strip().lower() or "auto"
        if raw == "auto":
            if not self.long_running:
                return 0
            return max(0, min(_cpus() - 1, 2))
        try:
            return max(0, min(int(raw), 16))
        except ValueError:
            log.warning("%s=%r is not auto or a number: analysis stays in one process", ENV, raw)
            return 0

    @property
    def size(self) -> int:
        return self._size

    def get(self) -> ProcessPoolExecutor | None:
        """The pool when it can take work now, else None. `auto` starts a wanted pool without waiting for
        it (the next large change uses it: starting costs more than analyzing one change); an explicit
        number of workers waits for them, since that user asked for them."""
        size = self.workers()
        if size <= 0:
            return None
        with self._lock:
            if self._executor is None or self._size != size:
                self._start(size)
            warm, executor = self._warm, self._executor
        assert warm is not None
        if not warm.done() and os.environ.get(ENV, "auto").strip().lower() in ("", "auto"):
            return None
        try:
            warm.result(timeout=WAIT_SECONDS)
        except Exception:
            log.warning("analysis worker processes did not start; analyzing in this process")
            self.discard(executor)
            return None
        return executor

    def _start(self, size: int) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        context = multiprocessing.get_context("forkserver")  # never fork a threaded process
        context.set_forkserver_preload(["analyzers.shards"])
        self._executor = ProcessPoolExecutor(max_workers=size, mp_context=context, initializer=_warm_worker)
        self._size = size
        futures = [self._executor.submit(_ready) for _ in range(size)]
        self._warm = _all_of(futures)

    def wait_ready(self, timeout: float = WAIT_SECONDS) -> bool:
        """Start the pool if it is wanted and wait until it takes work (benchmarks, tests)."""
        if self.workers() <= 0:
            return False
        with self._lock:
            if self._executor is None:
                self._start(self.workers())
            warm = self._warm
        try:
            if warm is not None:
                warm.result(timeout=timeout)
        except Exception:
            return False
        return True

    def discard(self, executor: ProcessPoolExecutor | None) -> None:
        """Drop a broken pool; the next large change starts a new one."""
        with self._lock:
            if executor is not None and executor is self._executor:
                self._executor, self._warm, self._size = None, None, 0
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor, self._warm, self._size = self._executor, None, None, 0
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _all_of(futures: Sequence[Future[Any]]) -> Future[Any]:
    done: Future[Any] = Future()
    left = [len(futures)]
    lock = threading.Lock()

    def one(f: Future[Any]) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if f.exception() is not None and not done.done():
            done.set_exception(f.exception())  # type: ignore[arg-type]
        elif last and not done.done():
            done.set_result(None)

    for f in futures:
        f.add_done_callback(one)
    return done


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


POOL = _Pool()


def long_running() -> None:
    """Say this process serves many reviews (`serve`, `worker`): `auto` then uses worker processes."""
    POOL.long_running = True


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
    executor = POOL.get()
    if executor is None:
        return None
    weights = []
    for f in files:
        text = read(f.path)
        weights.append(len(text) if isinstance(text, str) else 0)
    groups = _partition([f.path for f in files], weights, POOL.size)
    if len(groups) < 2:
        return None
    named = tuple((a.name, dict(settings(a.name))) for a in shared)
    jobs: list[Future[ShardResult] | None] = []
    for group in groups[1:]:
        try:
            jobs.append(executor.submit(run_shard, _job(changeset, tuple(group), read, named, mode)))
        except Exception:  # a pool shut down meanwhile: these files are analyzed here
            log.warning("could not hand %d files to an analysis worker; analyzing them here", len(group))
            jobs.append(None)
    return Split(frozenset(groups[0]), tuple(tuple(g) for g in groups[1:]), tuple(jobs), executor)


# this process's group is this much larger than a worker's: a worker's share also pays for the hand-off
# (its part of the change and its findings are pickled both ways)
LOCAL_SHARE = 1.15


def _partition(paths: list[str], weights: list[int], workers: int) -> list[list[str]]:
    """Contiguous groups (the change's order is kept: findings merge back in it), the first for this
    process, about LOCAL_SHARE times a worker's, the others about equal."""
    total = sum(weights) or 1
    local = min(0.9, LOCAL_SHARE / (workers + 1)) * total
    bounds = [local + (total - local) * k / workers for k in range(workers)]  # where group k+1 starts
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
    if split is None or split.executor is None or not pairs:
        return [_run_here(a, ctx) for a, ctx in pairs], [], frozenset()
    local = [_collect_here(a, replace(ctx, paths=split.local)) for a, ctx in pairs]
    parts: list[list[tuple[list[Finding], list[Any]] | BaseException]] = [[x] for x in local]
    syntax: list[Finding] = []
    remote_paths: set[str] = set()
    for group, future in zip(split.remote, split.jobs, strict=True):
        result = _wait(future, split.executor)
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


def _wait(future: Future[ShardResult] | None, executor: ProcessPoolExecutor) -> ShardResult | None:
    if future is None:
        return None
    try:
        return future.result(timeout=WAIT_SECONDS)
    except concurrent.futures.TimeoutError:
        log.warning("an analysis worker took over %.0f s; analyzing its files here", WAIT_SECONDS)
        future.cancel()
    except concurrent.futures.process.BrokenProcessPool:
        log.warning("an analysis worker process died; analyzing its files here and starting a new pool")
        POOL.discard(executor)
    except Exception:
        log.exception("an analysis worker failed; analyzing its files here")
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
