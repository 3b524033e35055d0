"""A large change shared with analysis worker processes: the review is the one a single process gives."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzers import process_role, shards
from analyzers.base import AnalyzerContext, Finding
from analyzers.diff import ChangeSet
from analyzers.quality import QualityAnalyzer
from analyzers.secrets import SecretsAnalyzer
from analyzers.security import SecurityAnalyzer
from analyzers.syntax import build_syntax_map
from app.pipeline import ReviewInput, run_review

BLOCKS = [
    'def handler_{n}(request, db):\n    name = request.args.get("name")\n'
    '    rows = db.execute("SELECT * FROM t WHERE o = \'" + name + "\'")\n    return list(rows)\n',
    "def helper_{n}(values, factor=2):\n    total = 0\n    for v in values:\n        if v > 0:\n"
    "            total += v * factor\n    return total\n",
    'def risky_{n}(request):\n    import os\n    os.system("ping " + request.form["t"])\n    return "ok"\n',
    "def tidy_{n}(items=[]):\n    try:\n        items.append(1)\n    except:\n        pass\n    return items\n",
    'API_KEY_{n} = "AKIA4QW7RT2Y9PLM{n:04d}"\n',
]


def _module(index: int, lines: int) -> str:
    out = [f'"""Module {index}."""', ""]
    n = index * 100
    while sum(block.count("\n") + 1 for block in out) < lines:
        n += 1
        out.append(BLOCKS[n % len(BLOCKS)].format(n=n))
    return "\n".join(out) + "\n"


def _change() -> dict[str, str]:
    files = {f"pkg/mod_{i:02d}.py": _module(i, 90) for i in range(24)}
    files["pkg/mod_20.py"] += "def broken(:\n    pass\n"  # a parse error in a worker's group
    files["tests/test_mod_21.py"] = "from pkg.mod_21 import helper_2102\n\n\ndef test_it():\n    helper_2102([1])\n"
    files["web/app.js"] = "function show(req) {\n  document.body.innerHTML = req.query.html;\n}\n"
    return files


def _diff(sources: dict[str, str]) -> str:
    parts = []
    for path, text in sources.items():
        body = text.splitlines()
        parts.append(f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(body)} @@\n")
        parts.append("".join(f"+{line}\n" for line in body))
    return "".join(parts)


SOURCES = _change()
CHANGESET = ChangeSet.from_unified_diff(_diff(SOURCES))
ANALYZERS = (SecurityAnalyzer(), SecretsAnalyzer(), QualityAnalyzer())


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(shards.ENV, "1")
    assert shards.POOL.wait_ready(), "the analysis worker process did not start"
    yield
    shards.POOL.shutdown()


def _settings(name: str) -> dict[str, object]:
    return {"max_untested_hints": 4} if name == "quality" else {}


def _run(split: shards.Split | None) -> tuple[list[list[Finding]], list[Finding], frozenset[str]]:
    syntax = build_syntax_map(CHANGESET, SOURCES.get, paths=split.local if split is not None else None)
    pairs = [(a, AnalyzerContext(CHANGESET, SOURCES.get, syntax, _settings(a.name), "added")) for a in ANALYZERS]
    outcomes, elsewhere, remote = shards.analyze_in_turn(pairs, split)
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
    return [list(o.findings or []) for o in outcomes], elsewhere, remote


def _serial() -> list[list[Finding]]:
    found, _, _ = _run(None)
    return found


def test_small_changes_and_a_pool_that_is_off_stay_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(shards.ENV, "0")
    assert shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added") is None
    monkeypatch.setenv(shards.ENV, "auto")  # a one-off review (not serve/worker) starts no processes
    assert shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added") is None
    small = ChangeSet(CHANGESET.files[:2])
    monkeypatch.setenv(shards.ENV, "1")
    assert shards.plan(small, SOURCES.get, ANALYZERS, _settings, "added") is None


def test_an_analyzer_that_cannot_travel_keeps_the_change_in_one_process(workers: None) -> None:
    class Custom:
        name = "custom"
        cpu_bound = True

        def analyze(self, ctx: AnalyzerContext) -> list[Finding]:
            return []

    assert shards.plan(CHANGESET, SOURCES.get, [*ANALYZERS, Custom()], _settings, "added") is None  # type: ignore[list-item]


def test_workers_find_exactly_what_one_process_finds_in_the_same_order(workers: None) -> None:
    expected = _serial()
    split = shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added")
    assert split is not None
    assert split.remote
    assert "pkg/mod_20.py" in split.remote[-1]  # the parse error is a worker's to report
    found, elsewhere, remote = _run(split)
    assert remote == frozenset(p for group in split.remote for p in group)
    assert found == expected
    assert [f.path for f in elsewhere] == ["pkg/mod_20.py"]
    assert elsewhere[0].rule == "syntax/parse-error"
    hints = [f for f in found[2] if f.rule == "quality/untested-change"]
    assert len(hints) == 4  # the policy's limit holds over every group together
    assert any(f.rule.startswith("secrets/") and f.path in remote for f in found[1])


def test_a_worker_that_dies_costs_time_not_findings(workers: None) -> None:
    expected = _serial()
    split = shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added")
    assert split is not None
    for worker in split.workers:  # kill -9 the worker before it can answer
        assert worker is not None
        os.kill(worker.process.pid, signal.SIGKILL)
    found, elsewhere, remote = _run(split)
    assert found == expected
    assert remote == frozenset()  # every file was analyzed here after all
    assert elsewhere == []
    assert shards.POOL.wait_ready()  # a new worker took the dead one's place
    again = shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added")
    assert again is not None
    again.abandon()


def test_the_pipeline_gives_the_same_review_with_workers(workers: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with_workers = asyncio.run(run_review(ReviewInput(CHANGESET, SOURCES.get)))
    monkeypatch.setenv(shards.ENV, "0")
    alone = asyncio.run(run_review(ReviewInput(CHANGESET, SOURCES.get)))
    assert with_workers.findings == alone.findings
    assert with_workers.failed_analyzers == alone.failed_analyzers == ()
    assert any(f.rule == "syntax/parse-error" for f in alone.findings)


def test_a_change_travels_as_plain_data() -> None:
    group = CHANGESET.files[:3]
    assert pickle.loads(pickle.dumps(ChangeSet(group))) == ChangeSet(group)
    assert pickle.loads(pickle.dumps(group[0].hunks[0])).added == group[0].hunks[0].added


@given(
    st.lists(st.integers(0, 50_000), min_size=1, max_size=60),
    st.integers(1, 7),
)
def test_groups_keep_the_change_order_and_cover_every_file_once(weights: list[int], workers: int) -> None:
    paths = [f"f{i}" for i in range(len(weights))]
    groups = shards._partition(paths, weights, workers)
    assert [p for g in groups for p in g] == paths  # contiguous, in order, each file once
    assert all(groups)
    assert len(groups) <= workers + 1
    if len(weights) > workers and min(weights) > 0 and max(weights) <= 2 * min(weights):
        assert len(groups) == workers + 1  # files of similar size: every worker gets a group


def test_two_reviews_at_once_share_one_worker_and_both_are_complete(workers: None) -> None:
    expected = _serial()
    first = shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added")
    second = shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added")
    assert first is not None
    assert second is None  # the one worker is busy with the first review: the second stays here
    results: dict[str, list[list[Finding]]] = {}

    def review(name: str, split: shards.Split | None) -> None:
        results[name] = _run(split)[0]

    threads = [threading.Thread(target=review, args=a) for a in (("first", first), ("second", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {"first": expected, "second": expected}
    assert shards.POOL._busy == set()  # checked back in
    third = shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added")
    assert third is not None  # free again for the next review
    third.abandon()


def test_auto_starts_workers_in_a_long_running_process_without_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(shards.ENV, "auto")
    monkeypatch.setattr(process_role, "_long_running", True)  # as `serve` and `worker` mark themselves
    if shards.POOL.workers() == 0:
        pytest.skip("one CPU: auto keeps no worker process")
    try:
        first = shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added")
        assert first is None  # starting the worker costs more than this change: it is analyzed here
        assert shards.POOL.wait_ready()
        later = shards.plan(CHANGESET, SOURCES.get, ANALYZERS, _settings, "added")
        assert later is not None  # the next large change uses the worker
        found, _, remote = _run(later)
        assert remote
        assert found == _serial()
    finally:
        shards.POOL.shutdown()


def test_a_worker_process_masks_secrets_in_its_log_lines() -> None:
    import io
    import logging

    from analyzers.workerpool import worker_log_handler

    stream = io.StringIO()
    logger = logging.getLogger("diffwise.test.worker")
    logger.propagate = False
    logger.addHandler(worker_log_handler(stream))
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    try:
        logger.warning("could not analyze %s", f"TOKEN = {token!r}")
        try:
            raise ValueError(token)
        except ValueError:
            logger.exception("crashed")
        logger.info("not shown: below warning")
    finally:
        logger.handlers.clear()
    text = stream.getvalue()
    assert "could not analyze" in text
    assert "crashed" in text
    assert "ValueError" in text
    assert token not in text
    assert "not shown" not in text
