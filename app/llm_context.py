"""What the LLM sees: hunks with new-file line numbers, enclosing functions, fenced PR text, redaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analyzers.base import Finding
from analyzers.diff import ChangedFile, ChangeSet, FileStatus, Line, LineKind

log = logging.getLogger(__name__)

MAX_LINE_CHARS = 300
MAX_FUNCTION_LINES = 10  # longer enclosing functions contribute their signature and block headers
# git's context lines kept (before, after) a change when the enclosing function is shown; what follows a
# change matters less than what leads to it (PR-Agent's own padding is 5 before, 1 after)
SYNTAX_DIFF_CONTEXT = (2, 1)
MAX_PR_BODY_CHARS = 6_000
REDACTED = "[REDACTED]"

# ---- tokens --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[A-Za-z]{1,7}|\d{1,3}|\n|[ \t]{4}|[^\sA-Za-z\d]")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate close to Claude's counts on code: words, digit runs, symbols, indents."""
    return len(_TOKEN.findall(text)) if text else 0


# ---- redaction -----------------------------------------------------------------------------------

_BUILTIN_SECRETS: tuple[re.Pattern[str], ...] = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\bsk-[A-Za-z0-9]{20,}"),
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z\-_]{30,}"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWT
)
_ASSIGNED = re.compile(
    r"(?i)((?:password|passwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|token)[\"']?\s*[:=]\s*)"
    r"([\"'])([^\"'\s]{8,})\2"
)


def builtin_redact(text: str) -> str:
    """A minimal masker of obvious token shapes: the fail-closed fallback and a second pass."""
    for pattern in _BUILTIN_SECRETS:
        text = pattern.sub(REDACTED, text)
    return _ASSIGNED.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", text)


def redactor(known_secrets: Iterable[str] = ()) -> Callable[[str], str]:
    """The secrets analyzer's `redact` when present, then the built-in masker and the known values."""
    analyzer_redact: Callable[[str], str] | None
    try:
        from analyzers.secrets import redact as analyzer_redact
    except ImportError:
        analyzer_redact = None
    literals = sorted({s for s in known_secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(text: str) -> str:
        for literal in literals:
            text = text.replace(literal, REDACTED)
        if analyzer_redact is not None:
            try:
                text = analyzer_redact(text)
            except Exception:  # a broken redactor must not leak: fall through to the built-in one
                log.exception("analyzers.secrets.redact failed; using the built-in masker only")
        return builtin_redact(text)

    return redact


# ---- fences --------------------------------------------------------------------------------------


def choose_boundary(untrusted: Iterable[str], salt: bytes | None = None, scope: str = "") -> str:
    """A fence token none of the untrusted texts contains.

    Stable per (salt, scope) so a re-review reuses the cached prompt prefix; random when there is no
    salt or when the PR text happens to contain the derived token.
    """
    texts = list(untrusted)
    if salt is not None:
        token = hmac.new(salt, scope.encode(), hashlib.sha256).hexdigest()[:20]
        if not any(token in t for t in texts):
            return token
    while True:
        token = secrets.token_hex(10)
        if not any(token in t for t in texts):
            return token


def fence(text: str, boundary: str, kind: str) -> str:
    """Untrusted text between `<<<DATA token kind` and `DATA token>>>` lines."""
    if boundary in text:
        raise ValueError("untrusted text contains the fence token")
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"<<<DATA {boundary} {kind}\n{body}DATA {boundary}>>>"


# ---- files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    qualname: str
    signature: str


@dataclass(frozen=True)
class FileContext:
    path: str
    text: str  # rendered (redacted, not yet fenced)
    tokens: int
    risk: float
    changed_lines: int
    symbols: tuple[str, ...] = ()


def enclosing_spans(syntax: Any, path: str, lines: Iterable[int]) -> list[Span]:
    """The innermost enclosing symbol of each line, from the syntax map's `innermost(path, line)`."""
    if syntax is None or not hasattr(syntax, "innermost"):
        return []
    spans: dict[tuple[int, int], Span] = {}
    for line in sorted(set(lines)):
        if any(s.start <= line <= s.end for s in spans.values()):
            continue
        try:
            symbol = syntax.innermost(path, line)
        except Exception:  # a syntax map that cannot answer means "no context", not a failed review
            symbol = None
        if symbol is None:
            continue
        start, end = int(symbol.start_line), int(symbol.end_line)
        qualname = str(getattr(symbol, "qualname", "") or "")
        signature = str(getattr(symbol, "signature", "") or "")
        spans[(start, end)] = Span(start, end, qualname, signature)
    return sorted(spans.values(), key=lambda s: (s.start, s.end))


def _near_changes(lines: Sequence[Line], keep: tuple[int, int] | None) -> set[int]:
    """Indexes of the hunk lines to show: all, or changes plus (before, after) context lines."""
    if keep is None:
        return set(range(len(lines)))
    before, after = keep
    changed = [i for i, ln in enumerate(lines) if ln.kind is not LineKind.CONTEXT]
    return {i for c in changed for i in range(max(0, c - before), min(len(lines), c + after + 1))}


def _context_lines(span: Span, lines: Sequence[str], changed: Sequence[int]) -> list[int]:
    """A short function whole; a long one as its signature line plus the block headers above each change
    (the lines with less indentation than the change, innermost last), like an editor's sticky scroll."""
    if span.end - span.start + 1 <= MAX_FUNCTION_LINES:
        return list(range(span.start, span.end + 1))
    name = span.qualname.rsplit(".", 1)[-1]
    header = next(
        (n for n in range(span.start, min(span.end, span.start + 10) + 1) if name and name in _at(lines, n)),
        span.start,
    )
    wanted = {header}
    for line in changed:
        depth = _indent(_at(lines, line))
        for n in range(line - 1, header, -1):
            text = _at(lines, n)
            if text.strip() and _indent(text) < depth:
                wanted.add(n)
                depth = _indent(text)
    return sorted(wanted)


def _at(lines: Sequence[str], n: int) -> str:
    return lines[n - 1] if 1 <= n <= len(lines) else ""


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip()) if text.strip() else 1 << 30


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + " …"


def render_file(
    changed: ChangedFile,
    *,
    syntax: Any = None,
    read_head: Callable[[str], str | None] | None = None,
    with_context: bool = True,
) -> tuple[str, tuple[str, ...]]:
    """A file's hunks with the new-file number on every line, plus whole enclosing functions if known."""
    spans: list[Span] = []
    head_lines: list[str] = []
    if with_context and syntax is not None:
        anchor = [n for h in changed.hunks for n in (h.added or h.right_lines[:1])]
        spans = enclosing_spans(syntax, changed.path, anchor)
        source = read_head(changed.path) if read_head is not None else None
        head_lines = source.splitlines() if source is not None else []
    # With the enclosing function as context, git's generic context is trimmed to the nearest lines.
    keep_context = SYNTAX_DIFF_CONTEXT if spans and head_lines else None
    rows: dict[int, tuple[str, str]] = {}  # new line -> (mark, text)
    removed_before: dict[int, list[str]] = {}  # removed lines shown just before new line n
    removed_after: dict[int, list[str]] = {}  # removed lines at the end of a hunk, after new line n
    hunk_of: dict[int, int] = {}
    for index, hunk in enumerate(changed.hunks):
        pending: list[str] = []
        last_new = max(hunk.new_start - 1, 0)
        near = _near_changes(hunk.lines, keep_context)
        for i, ln in enumerate(hunk.lines):
            if i not in near:
                continue
            if ln.kind is LineKind.REMOVED or ln.new is None:
                pending.append(ln.text)
                continue
            if pending:
                removed_before.setdefault(ln.new, []).extend(pending)
                pending = []
            rows[ln.new] = ("+" if ln.kind is LineKind.ADDED else " ", ln.text)
            hunk_of[ln.new] = index
            last_new = ln.new
        if pending:
            removed_after.setdefault(last_new, []).extend(pending)
            hunk_of.setdefault(last_new, index)
    for span in spans:
        for n in _context_lines(span, head_lines, [a for a in anchor if span.start <= a <= span.end]):
            if n not in rows and 1 <= n <= len(head_lines):
                rows[n] = (" ", head_lines[n - 1])
    status = _status(changed)
    out: list[str] = [f"## {changed.path}" + (f" ({status})" if status != FileStatus.MODIFIED.value else "")]
    current_hunk: int | None = None
    spans_of = [(h.new_start, h.new_end) for h in changed.hunks]
    for n in sorted(set(rows) | set(removed_after)):
        owner = hunk_of.get(n)
        if owner is None:  # a context row outside every hunk belongs with the nearest one
            owner = min(range(len(spans_of)), key=lambda i: (max(spans_of[i][0] - n, n - spans_of[i][1], 0), i))
        if owner != current_hunk:  # `@@` separates hunks (with git's header when no signature row shows it)
            header = "" if spans else changed.hunks[owner].header.strip()
            if header or current_hunk is not None:
                out.append(f"@@ {_clip(header)}" if header else "@@")
            current_hunk = owner
        out.extend(f"-{_clip(t)}" for t in removed_before.get(n, ()))
        if n in rows:
            mark, text = rows[n]
            out.append(f"{n} {mark}{_clip(text)}".rstrip())
        out.extend(f"-{_clip(t)}" for t in removed_after.get(n, ()))
    symbols = tuple(s.qualname for s in spans if s.qualname)
    return "\n".join(out) + "\n", symbols


def _status(changed: ChangedFile) -> str:
    if changed.status in (FileStatus.RENAMED, FileStatus.COPIED) and changed.old_path:
        return f"{changed.status.value} from {changed.old_path}"
    return changed.status.value


# ---- risk ----------------------------------------------------------------------------------------

_RISKY_API = re.compile(
    r"\b(eval|exec|pickle|marshal|yaml\.load|subprocess|os\.system|popen|shell\s*=\s*True|execute|raw\s*\(|"
    r"innerHTML|dangerouslySetInnerHTML|deserializ|crypt|hashlib|md5|sha1|random|jwt|token|password|secret|"
    r"auth|permission|sudo|chmod|open\s*\(|request|urlopen|socket|sql|SELECT|INSERT|UPDATE|DELETE|lock|thread|"
    r"async|await|unsafe|transmute|free\s*\(|malloc|memcpy|strcpy)",
    re.IGNORECASE,
)
_BRANCH = re.compile(r"\b(if|elif|else|for|while|try|except|catch|case|switch|match)\b|&&|\|\||\?")
_RISKY_PATH = re.compile(r"(auth|security|crypto|payment|billing|secret|admin|permission|session|login|sql|migrat)")
_LOW_PATH = re.compile(
    r"(^|/)(tests?|docs?|examples?|fixtures?)/|\.(md|rst|txt|lock|svg|json|ya?ml|toml|ini|cfg|csv)$|"
    r"(package-lock\.json|poetry\.lock|yarn\.lock|go\.sum|Cargo\.lock)$"
)


def risk_score(changed: ChangedFile, prior: Sequence[Finding] = ()) -> float:
    """How much a file deserves the LLM's budget: analyzer hits, risky APIs, branching, path, size."""
    added = [ln.text for h in changed.hunks for ln in h.lines if ln.kind is LineKind.ADDED]
    score = 0.0
    score += sum(3.0 + int(f.severity) for f in prior if f.path == changed.path)
    score += 2.0 * sum(1 for t in added if _RISKY_API.search(t))
    score += 0.5 * sum(1 for t in added if _BRANCH.search(t))
    if _RISKY_PATH.search(changed.path.lower()):
        score += 5.0
    if _LOW_PATH.search(changed.path):
        score *= 0.3
        score -= 1.0
    return round(score + min(len(added), 200) / 50.0, 3)


def build_file_contexts(
    changeset: ChangeSet,
    *,
    syntax: Any = None,
    read_head: Callable[[str], str | None] | None = None,
    prior: Sequence[Finding] = (),
    redact: Callable[[str], str] = builtin_redact,
    with_context: bool = True,
) -> list[FileContext]:
    """One rendered, redacted block per file that has hunks (renames without edits have nothing to review)."""
    out: list[FileContext] = []
    for changed in changeset.files:
        if not changed.hunks or changed.is_binary:
            continue
        try:
            text, symbols = render_file(changed, syntax=syntax, read_head=read_head, with_context=with_context)
        except Exception:  # one odd file must not cost the review: fall back to hunks alone
            log.exception("rendering %s with context failed", changed.path)
            text, symbols = render_file(changed, with_context=False)
        text = redact(text)
        out.append(
            FileContext(
                path=changed.path,
                text=text,
                tokens=estimate_tokens(text),
                risk=risk_score(changed, prior),
                changed_lines=len(changed.added_lines) + len(changed.removed_lines),
                symbols=symbols,
            )
        )
    return out


def render_prior(findings: Sequence[Finding], paths: Iterable[str], limit: int = 40) -> str:
    """The analyzers' findings for these paths, one line each, for "already reported, don't repeat"."""
    wanted = set(paths)
    rows: list[str] = []
    last_path: str | None = None
    chosen = sorted((f for f in findings if f.path in wanted), key=lambda f: (f.path, f.start_line))
    for f in chosen[:limit]:
        if f.path != last_path:  # the path once, then one line per finding
            rows.append(f"## {f.path}")
            last_path = f.path
        span = f"{f.start_line}-{f.end_line}" if f.end_line != f.start_line else str(f.end_line)
        text = (f.title or f.message).replace("\n", " ")
        rows.append(f"{span} {f.rule}: {_clip(text)[:200]}")
    if len(chosen) > limit:
        rows.append(f"… and {len(chosen) - limit} more")
    return "\n".join(rows)


def path_instruction_text(path_instructions: Mapping[str, Sequence[str]] | None, paths: Iterable[str]) -> str:
    """Each trusted instruction once, with the (untrusted, so JSON-quoted) paths it applies to."""
    if not path_instructions:
        return "(none)"
    grouped: dict[str, list[str]] = {}
    for path in paths:
        for text in path_instructions.get(path, ()):
            grouped.setdefault(text.strip(), []).append(json.dumps(path, ensure_ascii=False))
    lines = [f"- {text} (applies to: {', '.join(quoted)})" for text, quoted in grouped.items() if text]
    return "\n".join(lines) if lines else "(none)"
