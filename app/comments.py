"""Every body diffwise writes on GitHub, as pure functions: finding comments, the summary, check-run text."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from analyzers.base import Finding, Severity

GITHUB_BODY_LIMIT = 65_536
SUMMARY_MARKER = "<!-- diffwise:summary -->"
TESTS_MARKER = "<!-- diffwise:tests -->"
FINDING_MARKER = "<!-- diffwise:finding:{id} -->"
_FINDING_MARKER_RE = re.compile(r"<!-- diffwise:finding:([0-9a-f]{8,64}) -->")
_TRUNCATED = "\n\n… (truncated to fit GitHub's comment size limit)\n"

LLM_BADGE = " · _AI review_"  # also how a later run tells an LLM finding's thread from an analyzer's

SEVERITY_BADGE = {
    Severity.CRITICAL: "🛑 Critical",
    Severity.HIGH: "🔴 High",
    Severity.MEDIUM: "🟠 Medium",
    Severity.LOW: "🟡 Low",
    Severity.INFO: "🔵 Info",
}

COMMANDS_HELP = (
    "Talk to diffwise in a PR comment: `/diffwise review` (full re-review), `/diffwise tests`, "
    "`/diffwise explain <id>`, `/diffwise ask <question>`, `/diffwise ignore <id|rule>`, "
    "`/diffwise pause` / `resume`, `/diffwise config`, `/diffwise help`."
)


def finding_marker(finding_id: str) -> str:
    return FINDING_MARKER.format(id=finding_id)


def marker_ids(body: str) -> list[str]:
    """The finding ids carried by a comment body's hidden markers."""
    return _FINDING_MARKER_RE.findall(body or "")


def cwe_link(cwe: int) -> str:
    return f"[CWE-{cwe}](https://cwe.mitre.org/data/definitions/{cwe}.html)"


def fit(body: str, limit: int = GITHUB_BODY_LIMIT, keep_tail: str = "") -> str:
    """Clip a body to GitHub's limit, keeping `keep_tail` (a marker) intact at the end."""
    if len(body) + len(keep_tail) <= limit:
        return body + keep_tail
    room = limit - len(keep_tail) - len(_TRUNCATED)
    return body[: max(room, 0)] + _TRUNCATED + keep_tail


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def reindent(replacement: str, original_lines: Sequence[str]) -> str:
    """Rebase a fix onto the original lines' indentation (tabs stay tabs, spaces stay spaces)."""
    lines = replacement.split("\n")
    if replacement.endswith("\n"):
        lines = lines[:-1]
    first_original = next((ln for ln in original_lines if ln.strip()), "")
    target = _indent_of(first_original)
    nonblank = [ln for ln in lines if ln.strip()]
    if not nonblank:
        return "\n".join(lines)
    common = min((_indent_of(ln) for ln in nonblank), key=len)
    if common == target:
        return "\n".join(lines)
    unit_from = "\t" if "\t" in common else " "
    unit_to = "\t" if "\t" in target else " "
    rebased = []
    for ln in lines:
        if not ln.strip():
            rebased.append("")
            continue
        rest = ln[len(common) :] if ln.startswith(common) else ln.lstrip(" \t")
        extra = _indent_of(rest)
        if unit_from != unit_to and extra:
            # relative indentation: convert between tab and 4-space units so the block still lines up
            extra = extra.replace("\t", "    ") if unit_to == " " else extra.replace("    ", "\t")
            rest = extra + rest.lstrip(" \t")
        rebased.append(target + rest)
    return "\n".join(rebased)


def suggestion_block(replacement: str, original_lines: Sequence[str]) -> str:
    body = reindent(replacement, original_lines)
    fence = "````" if "```" in body else "```"
    return f"{fence}suggestion\n{body}\n{fence}"


def finding_body(finding: Finding, suggestion: str | None = None, moved_from: int | None = None) -> str:
    """An inline comment: header, one paragraph, the fix, the CWE link, the hidden marker."""
    header = f"**{SEVERITY_BADGE[finding.severity]}** · `{finding.rule}`"
    if finding.cwe:
        header += f" · {cwe_link(finding.cwe)}"
    if finding.source == "llm":
        header += LLM_BADGE
    parts = [header]
    if finding.title:
        parts.append(f"**{finding.title.strip()}**")
    parts.append(finding.message.strip())
    if moved_from is not None:
        parts.append(f"_(This concerns line {moved_from}, which is outside the diff.)_")
    if suggestion is not None:
        parts.append(suggestion)
    elif finding.fix is not None:
        fence = "````" if "```" in finding.fix.replacement else "```"
        parts.append(f"Possible fix:\n{fence}\n{finding.fix.replacement.rstrip()}\n{fence}")
    parts.append(f"<sub>confidence: {finding.confidence.label} · id `{finding.id}`</sub>")
    return fit("\n\n".join(parts), keep_tail="\n" + finding_marker(finding.id))


def blob_link(html_url: str, head_sha: str, path: str, start: int, end: int) -> str:
    anchor = f"L{start}" if start == end else f"L{start}-L{end}"
    return f"{html_url.rstrip('/')}/blob/{head_sha}/{path}#{anchor}"


@dataclass(frozen=True)
class SummaryData:
    head_sha: str
    repo_url: str  # https://github.com/o/r (blob links are built from it)
    findings: Sequence[Finding]  # everything found this run, after policy
    inline: Sequence[Finding] = ()  # posted inline now
    already_posted: Sequence[Finding] = ()  # still open from earlier runs
    in_summary: Sequence[tuple[Finding, str]] = ()  # (finding, why it is not inline)
    over_cap: int = 0
    below_threshold: int = 0
    resolved: Sequence[str] = ()  # ids marked fixed this run
    reviewed_files: Sequence[str] = ()
    skipped: Sequence[tuple[str, str]] = ()
    failed_analyzers: Sequence[tuple[str, str]] = ()
    notes: Sequence[str] = ()
    llm_line: str | None = None
    tests_count: int = 0
    incremental_from: str | None = None
    pending_policy_change: bool = False
    demoted_rules: Sequence[str] = field(default_factory=tuple)


def _severity_table(findings: Iterable[Finding]) -> list[str]:
    counts = Counter(f.severity for f in findings)
    if not counts:
        return ["No findings. ✅"]
    rows = ["| severity | findings |", "|---|---|"]
    rows += [f"| {SEVERITY_BADGE[s]} | {counts[s]} |" for s in sorted(counts, reverse=True)]
    return rows


LIST_CAP = 200  # entries per summary list; the rest are counted (the check run carries every finding)


def _capped(items: Sequence[str], what: str) -> list[str]:
    shown = [f"- {item}" for item in items[:LIST_CAP]]
    if len(items) > LIST_CAP:
        shown.append(f"- … and {len(items) - LIST_CAP} more {what}")
    return shown


def summary_body(data: SummaryData) -> str:
    """The one summary comment. What was not reviewed always survives the size limit; the list of findings
    not posted inline is what gets shortened (with a count), since the check run annotates every finding."""
    short = data.head_sha[:7]
    out = [f"## diffwise review of `{short}`", ""]
    scope = f"{len(data.reviewed_files)} file(s) reviewed"
    if data.incremental_from:
        scope += f" (changes since `{data.incremental_from[:7]}`)"
    out += [scope + ".", ""]
    out += _severity_table(data.findings)
    out.append("")
    posted = f"{len(data.inline)} new inline comment(s)"
    if data.already_posted:
        posted += f", {len(data.already_posted)} still open from earlier reviews"
    if data.resolved:
        posted += f", {len(data.resolved)} marked fixed"
    out += [posted + ".", ""]
    if data.over_cap:
        out += [f"{data.over_cap} more finding(s) over the comment cap are listed below.", ""]
    if data.below_threshold:
        out += [f"{data.below_threshold} finding(s) below the comment severity threshold are not shown inline.", ""]
    if data.skipped:
        out += ["### Not reviewed", "", *_capped([f"`{p}`: {reason}" for p, reason in data.skipped], "files"), ""]
    if data.failed_analyzers:
        failed = [f"`{a}`: {e[:500]}" for a, e in data.failed_analyzers]
        out += ["### Analyzers that failed", "", *_capped(failed, "analyzers"), ""]
    if data.pending_policy_change:
        out += [
            "> This PR changes `.github/diffwise.yml`. It was reviewed under the default branch's policy; "
            "the change applies once merged.",
            "",
        ]
    if data.demoted_rules:
        out += [
            "Rules demoted in this repository after frequent dismissals: "
            + ", ".join(f"`{r}`" for r in data.demoted_rules),
            "",
        ]
    if data.llm_line:
        out += [data.llm_line, ""]
    notes = _capped([n[:1000] for n in data.notes], "notes")
    if notes:
        out += [*notes, ""]
    if data.tests_count:
        out += [f"{data.tests_count} suggested property test module(s) are in the tests comment.", ""]
    footer = f"<sub>{COMMANDS_HELP}</sub>"
    tail = f"\n{head_marker(data.head_sha)}\n{SUMMARY_MARKER}"
    head_text = "\n".join(out)
    if data.in_summary:
        budget = GITHUB_BODY_LIMIT - len(head_text) - len(footer) - len(tail) - 400
        listing = ["### Findings not posted inline", ""]
        used = sum(len(x) + 1 for x in listing)
        for n, (f, why) in enumerate(data.in_summary):
            link = blob_link(data.repo_url, data.head_sha, f.path, f.start_line, f.end_line)
            cwe = f" ({cwe_link(f.cwe)})" if f.cwe else ""
            message = f.message.strip().splitlines()[0][:300] if f.message.strip() else ""
            where = f"[{f.path}:{f.start_line}]({link})"
            line = f"- **{f.severity.label}** `{f.rule}`{cwe} at {where}: {message} _({why})_"
            if used + len(line) + 1 > budget:
                rest = len(data.in_summary) - n
                listing.append(f"- … and {rest} more finding(s); every finding is annotated in the check run.")
                break
            listing.append(line)
            used += len(line) + 1
        head_text += "\n" + "\n".join(listing) + "\n"
    return fit(head_text + "\n" + footer, keep_tail=tail)


def head_marker(head_sha: str) -> str:
    """Which head SHA a summary describes: lets a redelivered webhook see that this head is already done."""
    return f"<!-- diffwise:head:{head_sha} -->"


@dataclass(frozen=True)
class CheckOutput:
    title: str
    summary: str
    conclusion: str  # success | failure | neutral


def check_conclusion(findings: Sequence[Finding], fail_on: str | None, complete: bool) -> str:
    if fail_on and fail_on != "never":
        threshold = Severity.parse(fail_on)
        if any(f.severity >= threshold for f in findings):
            return "failure"
    return "success" if complete else "neutral"


def check_output(
    findings: Sequence[Finding],
    fail_on: str | None,
    reviewed: Sequence[str],
    skipped: Sequence[tuple[str, str]],
    failed_analyzers: Sequence[tuple[str, str]],
) -> CheckOutput:
    """Title, coverage manifest and conclusion; an incomplete run never reports a clean pass."""
    complete = not skipped and not failed_analyzers
    conclusion = check_conclusion(findings, fail_on, complete)
    counts = Counter(f.severity for f in findings)
    title = ", ".join(f"{counts[s]} {s.label}" for s in sorted(counts, reverse=True)) or "no findings"
    if not complete:
        title += " (incomplete review)"
    lines = ["### Coverage", ""]
    lines += [f"- reviewed: `{p}`" for p in reviewed]
    lines += [f"- skipped: `{p}` — {why}" for p, why in skipped]
    lines += [f"- analyzer failed: `{a}` — {e}" for a, e in failed_analyzers]
    if fail_on and fail_on != "never":
        lines += ["", f"Gate: fails on findings of severity `{fail_on}` or above."]
    return CheckOutput(title, fit("\n".join(lines), limit=65_535), conclusion)


ANNOTATION_LEVEL = {
    Severity.CRITICAL: "failure",
    Severity.HIGH: "failure",
    Severity.MEDIUM: "warning",
    Severity.LOW: "notice",
    Severity.INFO: "notice",
}


def annotation(f: Finding) -> dict[str, object]:
    return {
        "path": f.path,
        "start_line": f.start_line,
        "end_line": max(f.start_line, f.end_line),
        "annotation_level": ANNOTATION_LEVEL[f.severity],
        "title": f"{f.rule}"[:255],
        "message": f.message[:64_000] or f.rule,
    }


def fixed_reply(head_sha: str) -> str:
    return f"✅ Fixed in {head_sha[:7]}. <!-- diffwise:fixed -->"
