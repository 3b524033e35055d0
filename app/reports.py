"""`diffwise audit` and `diffwise stats`: what the AI did and what it cost, from the audit store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from app.audit import AuditEntry, AuditLog, AuditTotals


def run_report(args: argparse.Namespace, out: TextIO | None = None, audit: AuditLog | None = None) -> int:
    out = out or sys.stdout
    try:
        log = audit or AuditLog.from_settings(_settings())
    except Exception as exc:  # a missing or unreadable store is a message, not a traceback
        print(f"diffwise: cannot open the state store: {exc}", file=sys.stderr)
        return 1
    repo = getattr(args, "repo", None)
    fmt = getattr(args, "format", "text")
    if args.command == "audit":
        entries = log.query(repo=repo, limit=int(getattr(args, "limit", 50) or 50))
        if fmt == "json":
            json.dump({"version": 1, "calls": [e.to_json() for e in entries]}, out, indent=2)
            out.write("\n")
        else:
            out.write(render_audit(entries, repo))
        return 0
    totals = log.totals(repo)
    if fmt == "json":
        json.dump({"version": 1, "repo": repo, "llm": totals.to_json()}, out, indent=2)
        out.write("\n")
    else:
        out.write(render_stats(totals, repo))
    return 0


def _settings() -> Any:
    try:
        from app.settings import Settings

        return Settings.from_env()
    except Exception:  # App credentials are not needed to read the store; env defaults will do
        return None


def render_audit(entries: list[AuditEntry], repo: str | None = None) -> str:
    if not entries:
        return f"No LLM calls recorded{' for ' + repo if repo else ''}.\n"
    lines = []
    for e in entries:
        where = f"{e.repo or '(local)'}#{e.pr_number}" if e.pr_number is not None else (e.repo or "(local)")
        sha = f" {e.head_sha[:7]}" if e.head_sha else ""
        tokens = f"in {e.input_tokens:,} (cache read {e.cache_read_tokens:,}, write {e.cache_write_tokens:,})"
        outcome = e.outcome if not e.error else f"{e.outcome}: {e.error}"
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(e.drop_reasons.items()))
        found = f"findings {e.returned} kept {e.kept} dropped {e.dropped}" + (f" ({reasons})" if reasons else "")
        lines.append(
            f"{e.at:%Y-%m-%d %H:%M:%S}  {where}{sha}  {e.kind}  {e.model}  {tokens} out {e.output_tokens:,}  "
            f"${e.cost_usd:.4f}  {e.duration_ms / 1000:.1f}s  {found}  [{e.prompt}]  {outcome}"
        )
    total = sum(e.cost_usd for e in entries)
    lines.append(f"{len(entries)} call(s) shown, ${total:.4f}")
    return "\n".join(lines) + "\n"


def render_stats(t: AuditTotals, repo: str | None = None) -> str:
    scope = repo or "all repositories"
    if not t.calls:
        return f"LLM usage for {scope}: no calls recorded.\n"
    per_review = t.cost_usd / t.reviews if t.reviews else 0.0
    kept_rate = t.kept / t.returned if t.returned else 0.0
    reasons = "; ".join(f"{k} {v}" for k, v in sorted(t.drop_reasons.items(), key=lambda kv: -kv[1])) or "none"
    models = ", ".join(f"{m} {n}" for m, n in sorted(t.by_model.items()))
    return (
        f"LLM usage for {scope}\n"
        f"  reviews: {t.reviews}   calls: {t.calls}   failed calls: {t.failures}\n"
        f"  input tokens: {t.input_tokens:,} uncached, {t.cache_read_tokens:,} cache read, "
        f"{t.cache_write_tokens:,} cache write (cache hit share {t.cache_hit_share:.0%})\n"
        f"  output tokens: {t.output_tokens:,}\n"
        f"  cost: ${t.cost_usd:.4f} (${per_review:.4f} per review)\n"
        f"  findings: {t.returned} returned, {t.kept} kept ({kept_rate:.0%}), {t.dropped} dropped\n"
        f"  dropped because: {reasons}\n"
        f"  models: {models}\n"
    )
