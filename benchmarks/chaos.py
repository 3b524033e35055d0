"""Chaos: kill -9 of the worker at random points across many PR reviews; every PR reviewed once, nothing duplicated.

Run: `python -m benchmarks.chaos [--prs 100] [--kills 25] [--seed 2026]`.

A real `diffwise serve --no-worker` takes one signed `pull_request.opened` delivery per PR (seeded in the fake
GitHub), then a real worker process (`tests.hardening.worker`: `diffwise worker` with a 2 s job lease) is
started and SIGKILLed `--kills` times at random moments (0.3-4 s after its start), restarted after the lease
runs out, and finally left to finish. Prints a markdown section: kills, jobs the restarted worker had to take
back, reviews per PR, duplicate finding markers and comments, wall time.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from app.jobs import JobQueue
from app.settings import Settings
from tests.hardening.conftest import (
    TERMINAL,
    bot_text,
    finding_markers,
    opened_body,
    post,
    process_stack,
    review_numbers,
    seed_pulls,
    wait_until,
)

REVIEWS_POST = r"/pulls/\d+/reviews$"
MARKERS = ("<!-- diffwise:summary -->", "<!-- diffwise:tests -->")


LEASE = 2.0
WORKER_JOBS = {"lease": LEASE, "debounce": 0.0, "poll": 0.1, "poll_max_delay": 0.2, "backoff_base": 0.5}


# ---- kill -9 of the worker at random points -------------------------------------------------------------


def run_kill_chaos(workdir: Path, n: int, kills: int, seed: int) -> dict[str, Any]:
    """n PRs reviewed by a worker process that is SIGKILLed `kills` times at random moments; returns the figures."""
    rng = random.Random(seed)
    with process_stack(workdir, LOG_LEVEL="info") as (fake, procs):
        url = procs.serve("web")
        repo, pulls = seed_pulls(fake, n)
        deliveries = [post(url, "pull_request", opened_body(repo, p))[0] for p in pulls]
        queue = JobQueue(Settings.for_tests(state_dir=workdir / "state"))
        env = {"HARDENING_JOB_POLICY": json.dumps(WORKER_JOBS)}

        def finished() -> int:
            return sum(queue.ledger.state(d) in TERMINAL for d in deliveries)

        started = time.monotonic()
        try:
            for _ in range(kills):
                procs.start("worker", module="tests.hardening.worker", env=env)
                # after the imports (~1-2 s) reviews run a few hundred ms each: spread the kills over both
                time.sleep(rng.uniform(0.3, 4.0))
                procs.kill9("worker")
                if finished() == n:
                    break
                time.sleep(LEASE + 0.3)  # the killed job's lease runs out; the next start reclaims it
            procs.start("worker", module="tests.hardening.worker", env=env)
            wait_until(lambda: finished() == n, 30 + 2 * n, f"{n} reviews", lambda: procs.check_alive("worker"))
            time.sleep(0.5)  # anything that would run twice has had time to
            states = Counter(queue.ledger.state(d) for d in deliveries)
        finally:
            queue.close()
        elapsed = time.monotonic() - started
        markers = {p.number: finding_markers(repo, p.number) for p in pulls}
        duplicates = {
            (p.number, marker): count
            for p in pulls
            for marker in MARKERS
            if (count := sum(marker in c["body"] for c in repo.issue_comments if c["issue_number"] == p.number)) > 1
        }
        return {
            "duplicate_comments": duplicates,
            "fake": fake,
            "repo": repo,
            "pulls": pulls,
            "states": states,
            "markers": markers,
            "kills": procs.runs["worker"] - 1,
            "elapsed": elapsed,
            "reclaimed": procs.log("worker").count("whose worker stopped before finishing"),
        }


def report(result: dict[str, Any], n: int, kills: int, seed: int) -> str:
    repo, pulls = result["repo"], result["pulls"]
    per_pr = Counter(review_numbers(repo))
    duplicate_markers = sum(len(m) - len(set(m)) for m in result["markers"].values())
    summaries = sum("<!-- diffwise:summary -->" in bot_text(repo, p.number) for p in pulls)
    ok = (
        result["states"] == Counter({"done": n})
        and all(per_pr[p.number] == 1 for p in pulls)
        and duplicate_markers == 0
        and not result["duplicate_comments"]
    )
    lines = [
        "## Chaos: kill -9 of the worker during reviews",
        "",
        f"{n} PRs, one `pull_request.opened` each, reviewed by a worker process SIGKILLed up to {kills} times "
        f"at random moments (seed {seed}); 2 s job lease.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| worker kills | {result['kills']} |",
        f"| jobs taken back from a killed worker (reclaim log lines) | {result['reclaimed']} |",
        f"| deliveries done / other | {result['states']['done']} / {n - result['states']['done']} |",
        f"| PRs with exactly one review | {sum(per_pr[p.number] == 1 for p in pulls)} of {n} |",
        f"| PRs with a summary | {summaries} of {n} |",
        f"| reviews posted (POST /reviews) | {result['fake'].count('POST', REVIEWS_POST)} |",
        f"| duplicate finding markers | {duplicate_markers} |",
        f"| duplicated summary/tests comments | {sum(result['duplicate_comments'].values())} |",
        f"| wall time | {result['elapsed']:.0f} s |",
        "",
        "- every PR ended with exactly one review and no duplicate" if ok else "- FAILED: see the table",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--prs", type=int, default=100)
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="diffwise-chaos-"))
    try:
        result = run_kill_chaos(workdir, n=args.prs, kills=args.kills, seed=args.seed)
        text = report(result, args.prs, args.kills, args.seed)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(text)
    if "FAILED" in text:
        print(text, file=sys.stderr)  # `python -m benchmarks` shows stderr when a benchmark fails
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
