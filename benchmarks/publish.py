"""Publishing figures: GitHub API calls per review (50-file PR) and a 20-PR placement replay (0 rejected)."""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

from analyzers.base import Confidence, Finding, Severity
from analyzers.diff import ChangeSet
from app.github import GitHubApp
from app.pipeline import Review
from app.publish import Publisher, PublishOptions, PublishTarget
from app.settings import Settings
from tests.fakes.github import FakeGitHub, generate_app_keys

KEYS = generate_app_keys()


def _file(rng: random.Random, n: int) -> str:
    return "".join(f"line_{i} = {rng.randint(0, 999)}\n" for i in range(n))


def _edit(rng: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(lines))
        op = rng.random()
        if op < 0.4:
            lines[i] = f"changed_{i} = {rng.randint(0, 999)}\n"
        elif op < 0.7:
            lines.insert(i, f"added_{i} = {rng.randint(0, 999)}\n")
        elif len(lines) > 5:
            del lines[i]
    return "".join(lines)


def _findings(rng: random.Random, path: str, n_lines: int, count: int) -> list[Finding]:
    """Findings on every kind of line: added, context, unchanged far away, past EOF, multi-line ranges."""
    out = []
    for k in range(count):
        start = rng.randint(1, n_lines + 5)
        end = start + (rng.randint(0, 6) if rng.random() < 0.3 else 0)
        out.append(
            Finding(
                f"bench/r{k}",
                "bench",
                Severity.HIGH,
                Confidence.HIGH,
                "m",
                path,
                start,
                end,
                code=f"{path}-{k}-{start}",
            )
        )
    return out


async def _replay(seed: int, files: int) -> dict[str, int]:
    rng = random.Random(seed)
    fake = FakeGitHub(app_id=1, public_key=KEYS.public_pem)
    repo = fake.add_repo("o", "r", installation_id=3)
    base = {f"src/m{i}.py": _file(rng, rng.randint(20, 120)) for i in range(files)}
    head = {p: _edit(rng, t) for p, t in base.items()}
    pull = fake.add_pull(repo, 1, base=base, head=head)
    cs = ChangeSet.from_github_files(pull.files)
    findings = [f for p, t in head.items() for f in _findings(rng, p, t.count("\n"), 4)]
    settings = Settings.for_tests(app_id=1, private_key=KEYS.private_pem, github_api_url="http://github.test")
    gh = GitHubApp(settings, transport=fake.transport()).installation_client(3)
    publisher = Publisher(gh, PublishTarget("o", "r", 1, pull.head_sha), PublishOptions(max_comments=10_000))
    await publisher.start_check()
    before = len(fake.requests)
    result = await publisher.publish(cs, Review(findings=tuple(findings), reviewed_files=tuple(head)))
    rejected_by_github = sum(
        1 for r in fake.requests[before:] if r.method == "POST" and re.search(r"/reviews$", r.path)
    ) - (1 if result.review_id else 0)
    return {
        "findings": len(findings),
        "inline": len(result.inline),
        "summary": len(result.in_summary),
        "rejected": len(result.rejected),
        "review_posts_422": max(rejected_by_github, 0),
        "api_calls": len(fake.requests),
        "api_calls_publisher": result.api_calls + 1,
    }


async def _calls_for_50_files() -> dict[str, Any]:
    return await _replay(seed=50, files=50)


def main() -> None:
    rows = [asyncio.run(_replay(seed, files=random.Random(seed).randint(1, 25))) for seed in range(20)]
    total = {k: sum(r[k] for r in rows) for k in rows[0]}
    fifty = asyncio.run(_calls_for_50_files())
    print("## Publishing (benchmarks/publish.py)\n")
    print("| replay of 20 PRs | findings | inline | moved to summary | rejected (422 left) |")
    print("|---|---|---|---|---|")
    print(f"| total | {total['findings']} | {total['inline']} | {total['summary']} | {total['rejected']} |\n")
    print(
        f"50-file PR with {fifty['findings']} findings: {fifty['api_calls']} GitHub API calls in all "
        f"(token, check run start, comment listing, one review, summary, check run completion with annotation "
        f"batches); {fifty['inline']} inline, {fifty['summary']} in the summary, {fifty['rejected']} rejected."
    )


if __name__ == "__main__":
    main()
