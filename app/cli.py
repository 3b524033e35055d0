"""The `diffwise` command line: review | serve | worker | config | audit | stats."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app import __version__

SEVERITIES = ("info", "low", "medium", "high", "critical")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffwise", description="Pull request review: analyzers + LLM + tests.")
    parser.add_argument("--version", action="version", version=f"diffwise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    review = sub.add_parser("review", help="review a local git change")
    review.add_argument("repo", nargs="?", default=".", help="path of the git repository (default: .)")
    review.add_argument("--base", required=True, help="base ref of the change")
    review.add_argument("--head", default=None, help="head ref (default: the working tree)")
    review.add_argument("--format", default="text", choices=("text", "json", "sarif", "markdown"))
    review.add_argument("--output", default=None, help="write the report to FILE instead of stdout")
    review.add_argument("--config", default=None, help="policy file (default: REPO/.github/diffwise.yml)")
    review.add_argument("--no-llm", action="store_true", help="skip the LLM review")
    review.add_argument("--fail-on", default=None, choices=SEVERITIES, help="exit 1 on a finding at/above this")
    review.add_argument(
        "--mode", default="added", choices=("added", "diff_context", "file"), help="which lines are reported"
    )

    serve = sub.add_parser("serve", help="webhook receiver plus an embedded worker")
    serve.add_argument("--host", default=None, help="bind address (default: $HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: $PORT or 3000)")
    serve.add_argument("--no-worker", action="store_true", help="receiver only (scale-out with Redis)")

    sub.add_parser("worker", help="a worker only (scale-out with Redis)")

    config = sub.add_parser("config", help="policy file tools")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    validate = config_sub.add_parser("validate", help="check a policy file")
    validate.add_argument("file", nargs="?", default=".github/diffwise.yml")
    config_sub.add_parser("schema", help="print the policy JSON Schema")

    audit = sub.add_parser("audit", help="what the AI did and what it cost")
    audit.add_argument("--repo", default=None, help="owner/name")
    audit.add_argument("--format", default="text", choices=("text", "json"))
    audit.add_argument("--limit", type=int, default=50)

    stats = sub.add_parser("stats", help="finding outcomes and rates")
    stats.add_argument("--repo", default=None, help="owner/name")
    stats.add_argument("--format", default="text", choices=("text", "json"))
    stats.add_argument("--period", default="all", choices=("7d", "30d", "90d", "365d", "all"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Heavy modules are imported per command so `diffwise --help` stays fast.
    if args.command == "review":
        from app.local import run_review

        return run_review(args)
    if args.command == "serve":
        from app.server import run_serve

        return run_serve(args)
    if args.command == "worker":
        from app.server import run_worker

        return run_worker(args)
    if args.command == "config":
        from app.policy_cli import run_config

        if args.config_command is None:
            parser.parse_args(["config", "--help"])
        return run_config(args)
    if args.command == "audit":
        from app.reports import run_report

        return run_report(args)
    if args.command == "stats":
        from app.stats import run_stats

        return run_stats(args)
    parser.print_help(sys.stderr)
    return 2
