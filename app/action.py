"""The GitHub Action entry: review the workflow's pull request from its checkout and publish with GITHUB_TOKEN."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from analyzers.base import Severity
from analyzers.diff import ChangeSet, DiffError
from app import pipeline
from app.checkout import CheckoutError, git_checkout, wants_verification
from app.local import GitReader, make_llm
from app.output import max_severity, render
from app.pipeline import PullInfo, ReviewInput

SEVERITIES = ("info", "low", "medium", "high", "critical")
POLICY_PATH = ".github/diffwise.yml"


class ActionError(Exception):
    """Something the workflow author must fix (missing variable, not a pull_request event, no history)."""


@dataclass(frozen=True)
class PullEvent:
    owner: str
    repo: str
    number: int
    base_sha: str
    head_sha: str
    title: str
    body: str
    author: str
    html_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PullEvent:
        """The PR from $GITHUB_EVENT_PATH (pull_request / pull_request_target) and $GITHUB_REPOSITORY."""
        path = env.get("GITHUB_EVENT_PATH")
        if not path:
            raise ActionError("GITHUB_EVENT_PATH is not set: run this inside a GitHub Actions workflow")
        try:
            event = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ActionError(f"cannot read the event payload {path}: {exc}") from None
        pr = event.get("pull_request") if isinstance(event, dict) else None
        if not isinstance(pr, dict):
            raise ActionError("the workflow event has no pull_request: trigger on pull_request or pull_request_target")
        full_name = env.get("GITHUB_REPOSITORY") or (event.get("repository") or {}).get("full_name") or ""
        owner, _, repo = full_name.partition("/")
        if not owner or not repo:
            raise ActionError("GITHUB_REPOSITORY is not set to owner/name")
        server = (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
        return cls(
            owner=owner,
            repo=repo,
            number=int(pr["number"]),
            base_sha=str(pr["base"]["sha"]),
            head_sha=str(pr["head"]["sha"]),
            title=str(pr.get("title") or ""),
            body=str(pr.get("body") or ""),
            author=str((pr.get("user") or {}).get("login") or ""),
            html_url=f"{server}/{owner}/{repo}",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.action", description="Review this workflow's pull request.")
    parser.add_argument("repo", nargs="?", default=None, help="checkout path (default: $GITHUB_WORKSPACE or .)")
    parser.add_argument("--sarif", default=None, help="also write SARIF 2.1.0 to this file (for code scanning)")
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM review")
    parser.add_argument("--no-publish", action="store_true", help="review only; post nothing to GitHub")
    parser.add_argument("--fail-on", default=None, choices=SEVERITIES, help="exit 1 on a finding at/above this")
    return parser


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)


def changeset_for(repo: Path, event: PullEvent) -> ChangeSet:
    """The PR's diff as GitHub shows it (merge base → head); fetches the two commits once if the clone is shallow."""
    try:
        return ChangeSet.from_git(repo, event.base_sha, event.head_sha, merge_base=True)
    except DiffError:
        pass
    if git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == b"true":
        git(repo, "fetch", "--no-tags", "--quiet", "--unshallow", "origin")
    git(repo, "fetch", "--no-tags", "--quiet", "origin", event.base_sha, event.head_sha)
    try:
        return ChangeSet.from_git(repo, event.base_sha, event.head_sha, merge_base=True)
    except DiffError as exc:
        raise ActionError(f"{exc}; use actions/checkout with fetch-depth: 0") from None


def load_base_policy(repo: Path, base_sha: str) -> tuple[Any, list[str]]:
    """The policy as it is on the base commit: a pull request cannot change the rules it is judged by."""
    text = GitReader(repo, base_sha)(POLICY_PATH)
    if text is None:
        return None, []
    from app.policy_loader import load_policy_file

    with tempfile.TemporaryDirectory(prefix="diffwise-policy-") as tmp:
        path = Path(tmp) / "diffwise.yml"
        path.write_text(text, encoding="utf-8")
        result = load_policy_file(path)
    messages = [f"{POLICY_PATH}:{i.line or '?'}: {i.key_path}: {i.message}" for i in result.errors]
    return result.policy, messages


def github_client(token: str, api_url: str) -> Any:
    from githubkit import GitHub, TokenAuthStrategy

    from app.github import USER_AGENT, RetryPolicy

    return GitHub(
        TokenAuthStrategy(token),
        base_url=api_url.rstrip("/") + "/",
        user_agent=USER_AGENT,
        http_cache=False,
        auto_retry=RetryPolicy().decide,
        timeout=30.0,
    )


def head_checkout(repo: Path, sha: str, policy: Any, scratch: Path, notes: list[str]) -> Path | None:
    """The head commit exported with `git archive` when the policy opts in to running tests (tests.verify).

    actions/checkout leaves the merge commit in the work tree for pull_request events, so the head is
    exported from git, never read from the work tree.
    """
    if not wants_verification(policy):
        return None
    try:
        return git_checkout(repo, sha, scratch)
    except CheckoutError as exc:
        notes.append(f"Suggested tests were not run (tests.verify): {exc}.")
        return None


async def review_and_publish(
    repo: Path, event: PullEvent, env: Mapping[str, str], args: argparse.Namespace, gh: Any = None
) -> tuple[Any, Any]:
    """Run the pipeline over the checkout, then post one review, the summary and the check run."""
    changeset = changeset_for(repo, event)
    policy, policy_messages = load_base_policy(repo, event.base_sha)
    llm, llm_note = make_llm(args.no_llm, policy)
    notes = [*(f"policy: {m}" for m in policy_messages), *([llm_note] if llm_note else [])]
    with tempfile.TemporaryDirectory(prefix="diffwise-head-") as scratch:
        inp = ReviewInput(
            changeset=changeset,
            read_head=GitReader(repo, event.head_sha),
            read_base=GitReader(repo, event.base_sha),
            policy=policy,
            llm=llm,
            pr=PullInfo(
                event.owner,
                event.repo,
                event.number,
                event.title,
                event.body,
                event.base_sha,
                event.head_sha,
                event.author,
            ),
            gitattributes=GitReader(repo, event.head_sha)(".gitattributes"),
            checkout=head_checkout(repo, event.head_sha, policy, Path(scratch), notes),
        )
        review = await pipeline.run_review(inp)
    if notes:
        review = replace(review, notes=(*notes, *review.notes))
    if args.no_publish:
        return review, None
    from app.publish import Publisher, PublishOptions, PublishTarget

    if gh is None:
        token = env.get("GITHUB_TOKEN") or env.get("INPUT_GITHUB_TOKEN")
        if not token:
            raise ActionError("GITHUB_TOKEN is not set: pass `github-token` to the action or use --no-publish")
        gh = github_client(token, env.get("GITHUB_API_URL") or "https://api.github.com")
    target = PublishTarget(event.owner, event.repo, event.number, event.head_sha, event.html_url)
    publisher = Publisher(gh, target, PublishOptions.from_policy(policy))
    from githubkit.exception import RequestFailed

    try:
        await publisher.start_check()
        result = await publisher.publish(changeset, review)
    except RequestFailed as exc:
        if exc.response.status_code not in (401, 403, 404):
            raise
        # A pull request from a fork gets a read-only GITHUB_TOKEN: keep the SARIF and the step summary.
        sys.stderr.write(
            f"::warning::diffwise: GitHub refused to post the review ({exc.response.status_code}); the token"
            " needs pull-requests, issues and checks write (read-only for pull requests from forks)\n"
        )
        return review, None
    return review, result


def run(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None, gh: Any = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ if env is None else env
    repo = Path(args.repo or env.get("GITHUB_WORKSPACE") or ".")
    try:
        event = PullEvent.from_env(env)
        review, result = asyncio.run(review_and_publish(repo, event, env, args, gh))
    except (ActionError, DiffError) as exc:
        sys.stderr.write(f"::error::diffwise: {exc}\n")
        return 2
    if args.sarif:
        Path(args.sarif).write_text(render(review, "sarif"), encoding="utf-8")
    summary_file = env.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as handle:
            handle.write(render(review, "markdown") + "\n")
    posted = "not published" if result is None else f"{len(result.inline)} inline, check {result.conclusion}"
    sys.stdout.write(
        f"diffwise: {len(review.findings)} finding(s) on #{event.number} at {event.head_sha[:7]}; {posted}\n"
    )
    if args.fail_on:
        worst = max_severity(review)
        if worst is not None and worst >= Severity.parse(args.fail_on):
            return 1
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
