"""`diffwise review`: the local git source — a change between two refs (or a ref and the working tree)."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from analyzers.base import Severity
from analyzers.diff import ChangeSet, DiffError
from app import pipeline
from app.output import max_severity, render
from app.pipeline import ReviewInput


class GitReader:
    """Reads file texts at a ref with `git show` (or from the working tree when ref is None)."""

    def __init__(self, repo: Path, ref: str | None) -> None:
        self.repo = repo
        self.ref = ref

    def __call__(self, path: str) -> str | None:
        if self.ref is None:
            target = (self.repo / path).resolve()
            if not target.is_relative_to(self.repo.resolve()) or not target.is_file():
                return None
            data = target.read_bytes()
        else:
            proc = subprocess.run(
                ["git", "-C", str(self.repo), "show", f"{self.ref}:{path}"], capture_output=True, check=False
            )
            if proc.returncode != 0:
                return None
            data = proc.stdout
        if b"\x00" in data[:8192]:
            return None  # binary
        return data.decode("utf-8", "replace")


def load_local_policy(repo: Path, config: str | None) -> tuple[Any, list[str]]:
    """The policy for a local run: --config FILE, else REPO/.github/diffwise.yml, else the defaults."""
    path = Path(config) if config else repo / ".github" / "diffwise.yml"
    if not path.is_file():
        if config:
            raise FileNotFoundError(f"policy file not found: {config}")
        return None, []
    try:
        from app.policy_loader import load_policy_file
    except ImportError:
        return None, [f"policy support not installed; {path} ignored"]
    result = load_policy_file(path)
    messages = [f"{path}:{issue.line or '?'}: {issue.key_path}: {issue.message}" for issue in result.errors]
    return result.policy, messages


def make_llm(no_llm: bool, policy: Any) -> tuple[Any, str | None]:
    if no_llm:
        return None, "LLM review skipped (--no-llm)"
    if not os.environ.get("ANTHROPIC_API_KEY"):
        return None, "LLM review skipped: no ANTHROPIC_API_KEY set"
    try:
        from app.llm_review import LLMReviewer
    except ImportError:
        return None, "LLM review unavailable in this installation"
    return LLMReviewer.from_env(os.environ, policy), None


def run_review(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    if not (repo / ".git").exists():
        probe = subprocess.run(["git", "-C", str(repo), "rev-parse", "--git-dir"], capture_output=True, check=False)
        if probe.returncode != 0:
            print(f"diffwise: {repo} is not a git repository", file=sys.stderr)
            return 2
    try:
        # git computes the diff while the policy (pydantic and its models: the slowest import) loads
        pending = ChangeSet.start_git(repo, args.base, args.head, merge_base=args.head is not None)
        try:
            policy, policy_messages = load_local_policy(repo, args.config)
        finally:
            changeset = pending.result()  # the diff's error, if any, is the one reported (as before)
    except (DiffError, FileNotFoundError) as exc:
        print(f"diffwise: {exc}", file=sys.stderr)
        return 2
    for message in policy_messages:
        print(f"diffwise: policy: {message}", file=sys.stderr)
    llm, llm_note = make_llm(args.no_llm, policy)
    attributes = GitReader(repo, args.head)(".gitattributes")
    inp = ReviewInput(
        changeset=changeset,
        read_head=GitReader(repo, args.head),
        read_base=GitReader(repo, args.base),
        policy=policy,
        llm=llm,
        mode=args.mode,
        gitattributes=attributes,
        checkout=repo if args.head is None else None,  # verification runs the working tree, so only then
    )
    review = asyncio.run(pipeline.run_review(inp))
    if llm_note:
        review = _with_note(review, llm_note)
    text = render(review, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if args.fail_on:
        worst = max_severity(review)
        if worst is not None and worst >= Severity.parse(args.fail_on):
            return 1
    return 0


def _with_note(review: Any, note: str) -> Any:
    from dataclasses import replace

    return replace(review, notes=(note, *review.notes))
