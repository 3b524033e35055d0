"""`diffwise config validate [FILE]` and `diffwise config schema`: the policy file, checked locally."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from app.policy import schema_text
from app.policy_loader import MAX_BYTES, format_issue, load_policy_file, parse_policy_text


def run_config(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if args.config_command == "schema":
        out.write(schema_text())
        return 0
    if args.config_command == "validate":
        return validate(args.file, out, err)
    err.write("usage: diffwise config {validate [FILE] | schema}\n")
    return 2


def validate(path: str, out: TextIO, err: TextIO) -> int:
    """Print one `file:line: key: message` line per problem; exit 1 when there is any."""
    result = load_policy_file(path)
    _note_extends(path, err)
    if result.errors:
        for issue in result.errors:
            out.write(format_issue(issue, path) + "\n")
        count = len(result.errors)
        err.write(f"{path}: {count} problem{'s' if count != 1 else ''}\n")
        return 1
    out.write(f"{path}: OK\n")
    return 0


def _note_extends(path: str, err: TextIO) -> None:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError:
        return
    extends = parse_policy_text(raw, path).data.get("_extends")
    if isinstance(extends, str):
        err.write(f"{path}: note: `_extends: {extends}` is read from GitHub by the app; only this file was checked\n")
