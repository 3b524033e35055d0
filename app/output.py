"""Review → the local output formats: text (terminal), JSON (DESIGN's contract), markdown, SARIF."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from analyzers.base import Finding, Severity
from app import __version__
from app.pipeline import Review

JSON_VERSION = 1


def finding_to_json(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "rule": f.rule,
        "analyzer": f.analyzer,
        "severity": f.severity.label,
        "confidence": f.confidence.label,
        "cwe": f.cwe,
        "path": f.path,
        "start_line": f.start_line,
        "line": f.end_line,
        "title": f.title,
        "message": f.message,
        "suggestion": f.fix.replacement if f.fix is not None else None,
        "source": f.source,
    }


def test_to_json(t: Any) -> dict[str, Any]:
    return {
        "path": t.path,
        "content": t.content,
        "targets": [{"path": x.path, "function": x.function} for x in t.targets],
    }


def review_to_json(review: Review) -> dict[str, Any]:
    llm = review.llm
    return {
        "version": JSON_VERSION,
        "findings": [finding_to_json(f) for f in review.findings],
        "tests": [test_to_json(t) for t in review.tests],
        "skipped": [{"path": s.path, "reason": s.reason} for s in review.skipped],
        "llm": {
            "used": llm.used,
            "model": llm.model,
            "input_tokens": llm.input_tokens,
            "output_tokens": llm.output_tokens,
            "cost_usd": round(llm.cost_usd, 6),
        },
        "failed_analyzers": [{"analyzer": a, "error": e} for a, e in review.failed_analyzers],
        "notes": list(review.notes),
        "reviewed_files": list(review.reviewed_files),
    }


def render_json(review: Review) -> str:
    return json.dumps(review_to_json(review), indent=2, ensure_ascii=False) + "\n"


def render_sarif(review: Review) -> str:
    from analyzers.sarif import to_sarif

    return json.dumps(to_sarif(list(review.findings), __version__), indent=2, ensure_ascii=False) + "\n"


def _counts(review: Review) -> str:
    counts = Counter(f.severity for f in review.findings)
    parts = [f"{counts[s]} {s.label}" for s in sorted(counts, reverse=True)]
    return ", ".join(parts) if parts else "no findings"


def render_text(review: Review) -> str:
    lines: list[str] = []
    for f in review.findings:
        cwe = f" (CWE-{f.cwe})" if f.cwe else ""
        lines.append(f"{f.path}:{f.start_line}: {f.severity.label.upper()} {f.rule}{cwe}: {f.message}")
        if f.fix is not None and not f.fix.replacement.strip():
            lines.append(f"    suggestion: delete line(s) {f.fix.start_line}-{f.fix.end_line}")
        elif f.fix is not None:
            lines.append("    suggestion:")
            lines.extend(f"      {ln}" for ln in f.fix.replacement.splitlines())
    if review.findings:
        lines.append("")
    lines.append(f"diffwise: {len(review.reviewed_files)} file(s) reviewed, {_counts(review)}.")
    for s in review.skipped:
        lines.append(f"  skipped {s.path}: {s.reason}")
    for name, error in review.failed_analyzers:
        lines.append(f"  analyzer {name} failed: {error}")
    if review.llm.used:
        lines.append(
            f"  LLM: {review.llm.model}, {review.llm.input_tokens} input / {review.llm.output_tokens} output tokens,"
            f" ${review.llm.cost_usd:.4f}"
        )
    for note in review.notes:
        lines.append(f"  note: {note}")
    if review.tests:
        lines.append(f"  {len(review.tests)} suggested property test module(s): use --format json to get them")
    return "\n".join(lines) + "\n"


def render_markdown(review: Review) -> str:
    out = ["# diffwise review", "", f"{len(review.reviewed_files)} file(s) reviewed: {_counts(review)}.", ""]
    if review.findings:
        out += ["| severity | rule | location | message |", "|---|---|---|---|"]
        for f in review.findings:
            msg = f.message.replace("|", "\\|").replace("\n", " ")
            out.append(f"| {f.severity.label} | `{f.rule}` | `{f.path}:{f.start_line}` | {msg} |")
        out.append("")
    if review.skipped:
        out += ["## Skipped", ""] + [f"- `{s.path}`: {s.reason}" for s in review.skipped] + [""]
    if review.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in review.notes] + [""]
    for t in review.tests:
        targets = ", ".join(f"`{x.path}::{x.function}`" for x in t.targets)
        out += [f"## Suggested tests: `{t.path}`", "", f"Targets: {targets}", "", "```python", t.content, "```", ""]
    return "\n".join(out)


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown, "sarif": render_sarif}


def render(review: Review, fmt: str) -> str:
    return RENDERERS[fmt](review)


def max_severity(review: Review) -> Severity | None:
    return max((f.severity for f in review.findings), default=None)
