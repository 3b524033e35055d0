"""`python -m tests.hardening.worker`: `diffwise worker` with the job timings shrunk (lease, backoff, debounce).

The process is the production worker (settings from the environment, logging, `JobQueue.run_worker`); only
the JobPolicy knobs differ, read as JSON from HARDENING_JOB_POLICY, so a killed job's lease runs out in
seconds instead of a minute.
"""

from __future__ import annotations

import json
import os

from app.jobs import JobPolicy, JobQueue
from app.server import load_settings


def main() -> int:
    settings = load_settings()
    if settings is None:
        return 2
    knobs = json.loads(os.environ.get("HARDENING_JOB_POLICY") or "{}")
    queue = JobQueue(settings, policy=JobPolicy(**knobs))
    try:
        queue.run_worker()
    finally:
        queue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
