"""HTML template checks (Django and Jinja2 syntax) for the security analyzer: XSS by turning escaping off.

Templates have no tree-sitter grammar here, so these are line rules over a template's changed lines. They
stay narrow on purpose: `{% autoescape off %}` / `{% autoescape false %}` turns escaping off for a whole block
(always worth a look), and `|safe` is reported only when the value comes straight from the request; a `|safe`
on a value the view prepared is a deliberate choice this rule cannot judge, so it says nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from analyzers.base import Confidence, Finding, Severity

ANALYZER = "security"
TEMPLATE_EXTENSIONS = (".html", ".htm", ".jinja", ".jinja2", ".j2", ".djhtml", ".dtl")
REFERENCES = (
    "https://docs.djangoproject.com/en/stable/ref/templates/builtins/#autoescape",
    "https://jinja.palletsprojects.com/en/stable/templates/#autoescape-overrides",
)
_AUTOESCAPE_OFF = re.compile(r"\{%-?\s*autoescape\s+(off|false)\s*-?%\}", re.IGNORECASE)
_REQUEST_VALUE = r"request\s*\.\s*(GET|POST|args|form|values|query_params|data|json|cookies|headers|COOKIES|META)\b"
_COMMENT = re.compile(r"\{#.*?#\}")  # {# ... #}: a template comment renders nothing
_SAFE_REQUEST = re.compile(r"\{\{-?[^}]*" + _REQUEST_VALUE + r"[^}]*\|\s*safe\b[^}]*-?\}\}")


def is_template(path: str) -> bool:
    return path.lower().endswith(TEMPLATE_EXTENSIONS)


def template_findings(path: str, text: str, lines: Iterable[int] | None) -> list[Finding]:
    """Findings on `lines` of a template (None: every line), in line order."""
    source = text.split("\n")
    wanted = range(1, len(source) + 1) if lines is None else sorted(n for n in set(lines) if 0 < n <= len(source))
    out: list[Finding] = []
    seen: Counter[tuple[str, str]] = Counter()
    for number in wanted:
        line = _COMMENT.sub("", source[number - 1])
        for match in _SAFE_REQUEST.finditer(line):
            out.append(_finding(path, number, match.group(0), seen, safe_request=True))
        for match in _AUTOESCAPE_OFF.finditer(line):
            out.append(_finding(path, number, match.group(0), seen, safe_request=False))
    return out


def _finding(path: str, line: int, code: str, seen: Counter[tuple[str, str]], *, safe_request: bool) -> Finding:
    normalised = re.sub(r"\s+", " ", code.strip())
    if safe_request:
        rule = "security/template-safe-request"
        title = "Request data marked safe in a template"
        message = (
            f"`{normalised}` renders a request value with `|safe`, so its HTML and scripts reach the page "
            "unescaped (reflected XSS). Drop `|safe`; if markup is needed, sanitise it in the view first."
        )
        severity, confidence = Severity.HIGH, Confidence.HIGH
    else:
        rule = "security/template-autoescape-off"
        title = "Template autoescaping turned off"
        message = (
            f"`{normalised}` turns HTML escaping off for the whole block: any variable rendered inside it that "
            "carries user input becomes an XSS. Keep autoescaping on and mark only vetted fragments safe."
        )
        severity, confidence = Severity.MEDIUM, Confidence.HIGH
    occurrence = seen[(rule, normalised)]
    seen[(rule, normalised)] += 1
    return Finding(
        rule=rule,
        analyzer=ANALYZER,
        severity=severity,
        confidence=confidence,
        message=message,
        path=path,
        start_line=line,
        end_line=line,
        title=title,
        cwe=79,
        code=normalised,
        references=REFERENCES,
        occurrence=occurrence,
    )
