"""Secret detection in added lines of any file, and `redact()`, which keeps secrets from leaving the machine."""

from __future__ import annotations

import bisect
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import accumulate

from analyzers.base import AnalyzerContext, Confidence, Finding, LazyPattern, Pattern, Severity
from analyzers.filtering import in_scope

MASK = "****"
_PLUS_ONE = (1).__add__
CWE_HARDCODED_CREDENTIALS = 798


@dataclass(frozen=True)
class SecretKind:
    id: str  # rule suffix: secrets/<id>
    label: str  # human name
    pattern: Pattern
    keep: int  # characters of the (non-secret) fixed prefix shown in the masked form
    severity: Severity = Severity.HIGH
    confidence: Confidence = Confidence.HIGH
    group: int = 0  # regex group holding the secret itself


def _rx(pattern: str, flags: int = 0) -> LazyPattern:
    """Compiled on first use: most files never open the gate that leads to the token formats."""
    return LazyPattern(pattern, flags)


_B = r"(?<![A-Za-z0-9_])"  # left boundary that also treats "_" as a word character
_E = r"(?![A-Za-z0-9_])"

# Ordered by specificity: when two matches overlap, the earlier kind wins.
KINDS: tuple[SecretKind, ...] = (
    SecretKind(
        "private-key",
        "private key",
        _rx(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
        0,
        Severity.CRITICAL,
    ),
    SecretKind("aws-access-key", "AWS access key id", _rx(_B + r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}" + _E), 4),
    SecretKind(
        "aws-secret-key",
        "AWS secret access key",
        _rx(r"(?i)aws_?secret_?(?:access_?)?key\W{0,3}\s*(?:=|:)\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"),
        0,
        Severity.CRITICAL,
        group=1,
    ),
    SecretKind("github-token", "GitHub token", _rx(_B + r"gh[pousr]_[A-Za-z0-9]{36,251}" + _E), 4),
    SecretKind("github-token", "GitHub fine-grained token", _rx(_B + r"github_pat_[A-Za-z0-9_]{22,244}" + _E), 11),
    SecretKind("gitlab-token", "GitLab token", _rx(_B + r"gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_\-]{20,}" + _E), 6),
    SecretKind("slack-token", "Slack token", _rx(_B + r"xox[abposre]-[A-Za-z0-9\-]{10,}" + _E), 5),
    SecretKind(
        "slack-webhook",
        "Slack webhook URL",
        _rx(r"https://hooks\.slack\.com/(?:services|workflows)/([A-Za-z0-9_/]{20,})"),
        0,
        Severity.MEDIUM,
        group=1,
    ),
    SecretKind("stripe-key", "Stripe live key", _rx(_B + r"(?:sk|rk)_live_[A-Za-z0-9]{20,}" + _E), 8),
    SecretKind("google-api-key", "Google API key", _rx(_B + r"AIza[0-9A-Za-z_\-]{35}" + _E), 4),
    SecretKind("anthropic-key", "Anthropic API key", _rx(_B + r"sk-ant-[A-Za-z0-9_\-]{20,}"), 7),
    SecretKind(
        "openai-key",
        "OpenAI API key",
        _rx(_B + r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|" + _B + r"sk-[A-Za-z0-9]{32,}" + _E),
        3,
    ),
    SecretKind("npm-token", "npm token", _rx(_B + r"npm_[A-Za-z0-9]{36}" + _E), 4),
    SecretKind("pypi-token", "PyPI token", _rx(_B + r"pypi-AgE[A-Za-z0-9_\-]{50,}"), 5),
    SecretKind("sendgrid-key", "SendGrid API key", _rx(_B + r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + _E), 3),
    SecretKind(
        "jwt",
        "JSON Web Token",
        _rx(_B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}" + _E),
        3,
        Severity.MEDIUM,
        Confidence.MEDIUM,
    ),
)

_GENERIC_KEYWORD = (
    r"(?:pass(?:word|wd|phrase)?|pwd|secret|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?token|access[_\-]?token"
    r"|refresh[_\-]?token|bearer[_\-]?token|private[_\-]?key|client[_\-]?secret|credentials?|token)"
)
# name (optionally quoted / a PHP or Ruby sigil) then an assignment operator, then a value.
_GENERIC = re.compile(
    r"(?i)(?P<key>[$:@]?[A-Za-z0-9_.\-]*" + _GENERIC_KEYWORD + r"[A-Za-z0-9_.\-]*)[\"']?\]?\s*"
    r"(?P<op>:=|=>|=(?!=)|:(?![:=]))\s*"
    r"(?:\"(?P<dq>[^\"\n]{1,300})\"|'(?P<sq>[^'\n]{1,300})'|`(?P<bq>[^`\n]{1,300})`|(?P<bare>[^\s\"'`,;#)(\]\[{}]{1,300}))"
)
GENERIC_LABEL = "hard-coded credential"

# a name ending like this names a file, URL, setting or type, not a secret value
_NOT_SECRET_NAME = re.compile(
    r"(?i)(?:url|uri|file|filename|path|dir|name|id|ids|type|field|len|length|env|var|header|prefix|suffix|format"
    r"|pattern|regex|hash|hashed|policy|count|size|min|max|timeout|expiry|expires|ttl|label|hint|prompt|placeholder"
    r"|message|msg|error|reset|required|enabled|endpoint|provider|mode|kind|class|algorithm|algo|question|help"
    r"|_at|tokens|izer|izers|input|widget|validator|form|key_id|keyid|salt_rounds|strength|policy)$"
)
PLACEHOLDER = re.compile(
    r"(?i)changeme|change[_\-]me|change[_\-]?this|your[_\-]|<[^>]*>|\$\{|\{\{|%\(|xxx|\*\*\*|\.\.\.|example"
    r"|dummy|placeholder|sample|redacted|replace|insert|todo|fake|foobar|secret_here|here$|^none$|^null$|^nil$"
    r"|^true$|^false$|^undefined$|^password\d*$|^secret$|^token$|^required$|^optional$|^empty$|^string$"
    r"|getenv|environ|process\.env|^env\.|^os\."
)
# inside a token of a known format only blatant filler marks an example
KNOWN_PLACEHOLDER = re.compile(r"(?i)example|x{5,}|(.)\1{7,}|your[_\-]|fake|dummy|placeholder|redacted|<|>")
# references to a value kept elsewhere: not a secret, not even redacted
_REFERENCE = re.compile(r"^\$\{[^}]*\}$|^\$[A-Z_][A-Z0-9_]*$|^\{\{.*\}\}$|^<[^>]*>$|getenv|environ|process\.env|^env\.")
_IDENTIFIER_PATH = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_BASE64_LINE = re.compile(r"^[+\- ]?\s*[A-Za-z0-9+/=]{16,}\s*$")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")

# files whose unquoted values are literal data, not expressions
_CONFIG_SUFFIXES = (".env", ".ini", ".cfg", ".conf", ".properties", ".yml", ".yaml", ".toml", ".txt", ".envrc")
_CODE_SUFFIXES = (
    ".py",
    ".js",
    ".mjs",
    ".cjs",
    ".jsx",
    ".ts",
    ".tsx",
    ".go",
    ".java",
    ".rb",
    ".php",
    ".cs",
    ".kt",
    ".rs",
    ".c",
    ".cc",
    ".cpp",
    ".h",
    ".swift",
    ".scala",
)


@dataclass(frozen=True)
class SecretMatch:
    """A secret found in a text: where it is and how to show it. The raw value is kept out of repr()."""

    kind: str
    label: str
    start: int  # offset of the secret value in the text
    end: int
    masked: str
    severity: Severity
    confidence: Confidence
    placeholder: bool = False  # looks like an example/placeholder: redacted, never reported
    value: str = field(default="", repr=False, compare=False)


def shannon_entropy(value: str) -> float:
    """Bits per character of `value` (0 for the empty string)."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def mask(value: str, keep: int = 0) -> str:
    """The masked form: the fixed, public prefix of a token format (at most `keep` chars), then ****."""
    keep = min(keep, max(len(value) - 8, 0))
    return value[:keep] + MASK


def _value_is_placeholder(value: str) -> bool:
    if PLACEHOLDER.search(value):
        return True
    if len(set(value)) <= 3:  # "aaaa", "0000", "abab"
        return True
    return False


# cheap gates: most text holds no token prefix and no credential word, and the full scans are costly
_KNOWN_GATE = re.compile(
    r"AKIA|ASIA|ABIA|ACCA|gh[pousr]_|github_pat_|gl(?:pat|dt|rt|ptt)-|xox[abposre]-|hooks\.slack\.com|[sr]k_live_"
    r"|AIza|sk-|npm_|pypi-|SG\.|eyJ|PRIVATE KEY|(?i:aws_?secret)"
)
_GENERIC_GATE = re.compile(r"(?i)pass|pwd|secret|key|token|credential")
_GATE_WORDS = ("pass", "pwd", "secret", "key", "token", "credential")
_GATE_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA", "gh", "github_pat_", "gl", "xox", "hooks.slack", "_live_", "AIza",
                  "sk-", "npm_", "pypi-", "SG.", "eyJ", "PRIVATE KEY")  # fmt: skip


def _known(text: str) -> Iterable[SecretMatch]:
    if not _KNOWN_GATE.search(text):
        return
    for priority_kind in KINDS:
        for m in priority_kind.pattern.finditer(text):
            if priority_kind.id == "private-key":
                yield _pem(text, m, priority_kind)
                continue
            start, end = m.span(priority_kind.group)
            value = text[start:end]
            body = value[priority_kind.keep :]
            placeholder = bool(KNOWN_PLACEHOLDER.search(body)) or len(set(body)) <= 3 or shannon_entropy(body) < 2.5
            yield SecretMatch(
                priority_kind.id,
                priority_kind.label,
                start,
                end,
                mask(value, priority_kind.keep),
                priority_kind.severity,
                priority_kind.confidence,
                placeholder,
                value,
            )


def _pem(text: str, m: re.Match[str], kind: SecretKind) -> SecretMatch:
    """A PEM block from its BEGIN line to its END line, or to the last base64 line when END is missing."""
    end_match = _PEM_END.search(text, m.end())
    if end_match is not None and text.count("-----BEGIN", m.end(), end_match.start()) == 0:
        end = end_match.end()
    else:
        end = m.end()
        pos = text.find("\n", m.end())
        while pos != -1:
            nxt = text.find("\n", pos + 1)
            line = text[pos + 1 : nxt if nxt != -1 else len(text)]
            if not _BASE64_LINE.match(line):
                break
            end = nxt if nxt != -1 else len(text)
            pos = nxt
    body = text[m.end() : end]
    placeholder = len(re.sub(r"[^A-Za-z0-9+/]", "", body)) < 16
    return SecretMatch(
        kind.id, kind.label, m.start(), end, "-----BEGIN PRIVATE KEY----- " + MASK, kind.severity, kind.confidence,
        placeholder, text[m.start() : end],
    )  # fmt: skip


def _is_code_path(path: str | None) -> bool | None:
    """True for source code, False for config/data files, None when unknown."""
    if path is None:
        return None
    name = os.path.basename(path).lower()
    if name.startswith(".env") or name.endswith(_CONFIG_SUFFIXES):
        return False
    if name.endswith(_CODE_SUFFIXES):
        return True
    return None


def _generic(text: str, path: str | None, relaxed: bool = False) -> Iterable[SecretMatch]:
    """Credential-like assignments; `relaxed` (redaction) also takes bare identifier-like values."""
    if not _GENERIC_GATE.search(text):
        return
    code_file = _is_code_path(path)
    for m in _GENERIC.finditer(text):
        key = m.group("key").lstrip("$:@")
        if _NOT_SECRET_NAME.search(key.rstrip("_.-")):
            continue
        group = next(g for g in ("dq", "sq", "bq", "bare") if m.group(g) is not None)
        value = m.group(group)
        start, end = m.span(group)
        if group == "bare":
            if code_file:
                continue  # in code an unquoted right-hand side is an expression, not a literal
            if code_file is None and (
                _IDENTIFIER_PATH.match(value)
                or (
                    not relaxed
                    and _IDENTIFIER.match(value)
                    and (shannon_entropy(value) < 3.5 or not re.search(r"\d", value))
                )
            ):
                continue
        if len(value) < 8 or any(ch.isspace() for ch in value) or _REFERENCE.search(value):
            continue
        if value.startswith(("/", "./", "http://", "https://")) or value.lower() == key.lower():
            continue
        entropy = shannon_entropy(value)
        if entropy < 3.0:
            continue
        placeholder = _value_is_placeholder(value)
        confidence = Confidence.MEDIUM if entropy >= 3.5 else Confidence.LOW
        yield SecretMatch(
            "hardcoded-credential", GENERIC_LABEL, start, end, MASK, Severity.HIGH, confidence, placeholder, value
        )


def find_secrets(text: str, *, path: str | None = None, include_placeholders: bool = False) -> list[SecretMatch]:
    """Secrets in `text`, non-overlapping, in order. `path` tells config files (bare values) from code."""
    candidates = [*_known(text), *_generic(text, path, relaxed=include_placeholders)]
    if not candidates:  # the common case (every redact() of a message, most gated lines): nothing to order
        return []
    order = {k.id: i for i, k in enumerate(KINDS)}
    candidates.sort(key=lambda s: (s.start, order.get(s.kind, len(KINDS)), -(s.end - s.start)))
    out: list[SecretMatch] = []
    last_end = -1
    for s in candidates:
        if s.start < last_end:
            continue
        last_end = s.end
        out.append(s)
    if not include_placeholders:
        out = [s for s in out if not s.placeholder]
    return out


def apply_masks(text: str, matches: Iterable[SecretMatch]) -> str:
    """`text` with each match's span replaced by its masked form (matches may overlap; the union is masked)."""
    spans = sorted((s.start, s.end, s.masked) for s in matches)
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for start, end, masked in spans:
        if end <= pos:
            continue
        if start >= pos:
            parts.append(text[pos:start])
            parts.append(masked)
        pos = max(pos, end)
    parts.append(text[pos:])
    return "".join(parts)


def redact(text: str, *, path: str | None = None) -> str:
    """`text` with every secret-like value masked, placeholders included (over-redaction is the safe side).

    Use on anything that leaves the process: LLM prompts, logs, comment bodies.
    """
    if not text:
        return text
    return apply_masks(text, find_secrets(text, path=path, include_placeholders=True))


# ---- the analyzer -----------------------------------------------------------------------------------------


def _article(label: str) -> str:
    """ "An AWS access key", "A GitHub token": by the sound of the first word (letters read out count as vowels)."""
    word = label.split(" ", 1)[0]
    spelled = (word.isupper() and len(word) > 1) or word == "npm"  # AWS, SSH, npm: read letter by letter
    word = word.upper() if spelled else word
    vowel_sound = (spelled and word[:1] in "AEFHILMNORSX") or (not spelled and word[:1].lower() in "aeio")
    return "An" if vowel_sound else "A"


def _is_test_path(path: str) -> bool:
    lowered = path.lower()
    name = os.path.basename(lowered)
    return (
        any(part in lowered for part in ("test/", "tests/", "fixtures/", "testdata/", "__tests__/", "spec/"))
        or name.startswith("test_")
        or name.endswith(("_test.py", "_test.go", ".test.js", ".test.ts", ".spec.js", ".spec.ts"))
    )


class SecretsAnalyzer:
    """Known token formats and high-entropy credential assignments in added lines of any file."""

    name = "secrets"
    cpu_bound = True  # pure computation: the pipeline runs it in turn with the others like it

    def analyze(self, ctx: AnalyzerContext) -> list[Finding]:
        findings: list[Finding] = []
        for changed in ctx.changed_files():
            if not changed.added_lines and ctx.mode != "file":
                continue
            text = ctx.read_file(changed.path)
            if text is None:
                text = _text_from_hunks(changed.hunks)
            findings.extend(self.scan(changed.path, text, ctx))
        return findings

    def _candidates(
        self, path: str, text: str, lines: list[str], starts: list[int], ctx: AnalyzerContext
    ) -> list[SecretMatch]:
        """Whole-text scan in file mode or when a PEM block may span lines; otherwise added lines only."""
        changed = ctx.changeset.get(path)
        if ctx.mode == "file" or changed is None or "PRIVATE KEY" in text:
            return find_secrets(text, path=path)
        return _scan_lines(path, text, lines, starts, changed.added_lines)

    def scan(self, path: str, text: str, ctx: AnalyzerContext) -> list[Finding]:
        lines = text.split("\n")
        # where each line starts: 0, then the running sum of len(line) + 1 (accumulated in C)
        starts = list(accumulate(map(_PLUS_ONE, map(len, lines[:-1])), initial=0))
        test_path = _is_test_path(path)
        out: list[Finding] = []
        seen: Counter[str] = Counter()
        for s in self._candidates(path, text, lines, starts, ctx):
            first = bisect.bisect_right(starts, s.start)
            last = bisect.bisect_right(starts, max(s.end - 1, s.start))
            if s.kind == "private-key":
                last = first  # the BEGIN line carries the finding; the block is masked anyway
            line_text = lines[first - 1] if first - 1 < len(lines) else ""
            line_start = starts[first - 1]
            local = SecretMatch(
                s.kind, s.label, s.start - line_start, min(s.end - line_start, len(line_text)), s.masked,
                s.severity, s.confidence,
            )  # fmt: skip
            others = find_secrets(line_text, path=path, include_placeholders=True)
            masked_line = apply_masks(line_text, [local, *others])
            confidence = s.confidence
            if test_path and confidence > Confidence.LOW:
                confidence = Confidence(confidence - 1)
            code = masked_line.strip()
            rule = f"secrets/{s.kind}"
            finding = Finding(
                rule=rule,
                analyzer=self.name,
                severity=s.severity,
                confidence=confidence,
                title=f"{s.label[0].upper()}{s.label[1:]} in the change",
                message=(
                    f"{_article(s.label)} {s.label} appears in an added line (`{s.masked}`). Treat it as leaked: "
                    "revoke or rotate "
                    "it, and load it from the environment or a secret manager instead."
                ),
                path=path,
                start_line=first,
                end_line=last,
                cwe=CWE_HARDCODED_CREDENTIALS,
                symbol=None,
                code=code,
                references=("https://cwe.mitre.org/data/definitions/798.html",),
                occurrence=seen[rule + code],
            )
            seen[rule + code] += 1
            if in_scope(finding, ctx.changeset, "added" if ctx.mode == "diff_context" else ctx.mode):
                out.append(finding)
        return out


def _scan_lines(path: str, text: str, lines: list[str], starts: list[int], wanted: Iterable[int]) -> list[SecretMatch]:
    """find_secrets on the wanted (1-based) lines only, offsets mapped back into `text`."""
    out: list[SecretMatch] = []
    candidates = _gate_hits(text, starts) & set(wanted)
    for n in sorted(candidates):
        if not 1 <= n <= len(lines):
            continue
        line = lines[n - 1]
        base = starts[n - 1]
        for m in find_secrets(line, path=path):
            out.append(replace(m, start=m.start + base, end=m.end + base))
    return out


def _gate_hits(text: str, starts: list[int]) -> set[int]:
    """Line numbers holding a gate word or token prefix, found with str.find over the whole text."""
    hits: set[int] = set()
    lowered = text.lower()
    for haystack, needles in ((lowered, _GATE_WORDS), (text, _GATE_PREFIXES)):
        for needle in needles:
            pos = haystack.find(needle)
            while pos != -1:
                hits.add(bisect.bisect_right(starts, pos))
                pos = haystack.find(needle, pos + 1)
    return hits


def _text_from_hunks(hunks: Iterable[object]) -> str:
    """Head text rebuilt from hunks when the file cannot be read: known lines in place, blanks elsewhere."""
    known: dict[int, str] = {}
    for h in hunks:
        for ln in getattr(h, "lines", ()):
            if ln.new is not None:
                known[ln.new] = ln.text
    if not known:
        return ""
    return "\n".join(known.get(n, "") for n in range(1, max(known) + 1))
