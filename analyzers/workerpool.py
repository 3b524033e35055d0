"""The analysis worker processes a long-running diffwise keeps for large changes (see analyzers.shards).

Each worker is a process started from a forkserver (never a fork of this threaded process) that loads the
analyzers once, then answers one job at a time over its own pipe. A job is pickled and written by the
thread that wants it done, so the worker starts at once; there is no helper thread to wait for the GIL
while this process parses its own share. A worker is checked out for one job and back in after its
answer; one that dies, answers garbage or runs out of time is killed and replaced, and its files are
analyzed in this process instead.

DIFFWISE_ANALYSIS_WORKERS: `auto` (the default: long-running processes keep up to two, one fewer than the
CPUs they may run on, started on the first large change; a one-off `diffwise review` keeps none, since
starting them costs more than it saves), `0` (never), or a number (that many, in every process, waited for
on first use).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from analyzers.process_role import is_long_running

log = logging.getLogger(__name__)

ENV = "DIFFWISE_ANALYSIS_WORKERS"
START_SECONDS = 60.0  # a worker not ready by then (loading grammars, compiling rule packs) is given up
READY = b"ready"


def worker_log_handler(stream: Any = None) -> logging.Handler:
    """How a worker process logs: warnings and up, to the stderr it shares with its owner, with every token
    shape analyzers.secrets knows masked (a worker sees only the PR's files, never the App's own secrets)."""
    from analyzers.secrets import redact

    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg, record.args = redact(record.getMessage()), None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            return True

    handler = logging.StreamHandler(stream)
    handler.addFilter(Redact())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s (analysis worker): %(message)s"))
    handler.setLevel(logging.WARNING)
    return handler


def _serve(conn: Connection) -> None:
    """A worker process: warm up, say so, then answer jobs (pickled callables and arguments) in turn."""
    from analyzers.rulepack import pack_for

    root = logging.getLogger()
    root.handlers[:] = [worker_log_handler()]
    root.setLevel(logging.WARNING)

    for language in ("python", "javascript", "typescript"):  # most changes: compiled once, not per job
        pack_for(language)
    conn.send_bytes(READY)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # this process's owner went away
        try:
            func, arg = pickle.loads(data)
            answer: tuple[bool, Any] = (True, func(arg))
        except BaseException as exc:  # the job failed, not the worker
            answer = (False, f"{type(exc).__name__}: {exc}")
        conn.send_bytes(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))


class Worker:
    """One worker process and this end of its pipe."""

    def __init__(self, context: Any) -> None:
        here, there = context.Pipe()
        self.conn: Connection = here
        self.process = context.Process(target=_serve, args=(there,), daemon=True, name="diffwise-analysis")
        self.process.start()
        there.close()
        self.ready = False
        self.dead = False
        self.started = time.monotonic()

    def poll_ready(self, timeout: float = 0.0) -> bool:
        """Has the worker said it is ready (waiting up to `timeout` for it)? Dead: never."""
        if self.ready or self.dead:
            return self.ready
        try:
            if self.conn.poll(timeout):
                self.ready = self.conn.recv_bytes() == READY
                self.dead = not self.ready
        except (EOFError, OSError):
            self.dead = True
        return self.ready

    def ready_within(self, seconds: float) -> bool:
        """Has the worker said it is ready, waiting until `seconds` after its start at the most?"""
        return self.poll_ready(max(0.0, seconds - (time.monotonic() - self.started)))

    def send(self, func: Any, arg: Any) -> None:
        self.conn.send_bytes(pickle.dumps((func, arg), protocol=pickle.HIGHEST_PROTOCOL))

    def receive(self, timeout: float) -> Any:
        """The job's result; raises TimeoutError, or RuntimeError when the job failed or the worker died."""
        if not self.conn.poll(timeout):
            raise TimeoutError(f"no answer from the analysis worker in {timeout:.0f}s")
        try:
            ok, value = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise RuntimeError(f"the analysis worker process died ({self.process.exitcode})") from exc
        if not ok:
            raise RuntimeError(value)
        return value

    def kill(self) -> None:
        try:
            self.conn.close()
        finally:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=5)


class Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[Worker] = []  # started, maybe not ready yet
        self._busy: set[Worker] = set()

    def workers(self) -> int:
        """How many worker processes are wanted now (DIFFWISE_ANALYSIS_WORKERS)."""
        raw = _setting()
        if raw == "auto":
            return max(0, min(_cpus() - 1, 2)) if is_long_running() else 0
        try:
            return max(0, min(int(raw), 16))
        except ValueError:
            log.warning("%s=%r is not auto or a number: analysis stays in one process", ENV, raw)
            return 0

    def checkout(self, most: int) -> list[Worker]:
        """Up to `most` ready workers for one job each, none if none is ready. Missing workers are started;
        `auto` does not wait for them (the next large change uses them), an explicit number does."""
        wanted = self.workers()
        if wanted <= 0 or most <= 0:
            return []
        wait = START_SECONDS if _setting() != "auto" else 0.0
        taken: list[Worker] = []
        with self._lock:  # one thread at a time reads a starting worker's pipe
            self._fill(wanted)
            for worker in list(self._idle):
                if len(taken) >= most:
                    break
                if worker.ready_within(wait):
                    self._idle.remove(worker)
                    self._busy.add(worker)
                    taken.append(worker)
                elif worker.dead or time.monotonic() - worker.started > START_SECONDS:
                    log.warning("an analysis worker process did not start; analyzing in this process")
                    self._idle.remove(worker)
                    _kill_later(worker)
        return taken

    def checkin(self, worker: Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if len(self._idle) + len(self._busy) < self.workers():
                self._idle.append(worker)
                return
        _kill_later(worker)  # fewer workers wanted now

    def discard(self, worker: Worker) -> None:
        """A worker that died, failed or hung: killed; a new one starts with the next large change."""
        with self._lock:
            self._busy.discard(worker)
            if worker in self._idle:
                self._idle.remove(worker)
        _kill_later(worker)

    def wait_ready(self, timeout: float = START_SECONDS) -> bool:
        """Start the wanted workers and wait until every one takes work (benchmarks, tests)."""
        wanted = self.workers()
        if wanted <= 0:
            return False
        with self._lock:
            self._fill(wanted)
            return all(w.ready_within(timeout) for w in self._idle)

    def shutdown(self) -> None:
        with self._lock:
            workers = [*self._idle, *self._busy]
            self._idle, self._busy = [], set()
        for worker in workers:
            worker.kill()

    def _fill(self, wanted: int) -> None:
        """Start workers until `wanted` exist (called with the lock held)."""
        while len(self._idle) + len(self._busy) < wanted:
            self._idle.append(self._start())

    def _start(self) -> Worker:
        context = multiprocessing.get_context("forkserver")  # never fork this threaded process
        context.set_forkserver_preload(["analyzers.shards"])  # the forkserver imports once for all workers
        return Worker(context)


def _setting() -> str:
    return os.environ.get(ENV, "auto").strip().lower() or "auto"


def _kill_later(worker: Worker) -> None:
    threading.Thread(target=worker.kill, name="diffwise-analysis-reaper", daemon=True).start()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


POOL = Pool()
