"""Template XSS rules: escaping turned off for a block, request data marked safe; look-alikes stay quiet."""

from __future__ import annotations

import pytest

from analyzers.base import AnalyzerContext
from analyzers.diff import ChangeSet
from analyzers.security import SecurityAnalyzer
from analyzers.templates import is_template, template_findings

PAGE = """{% extends "base.html" %}
{% block content %}
<h1>{{ title }}</h1>
{% autoescape off %}
  {{ comment.body }}
{% endautoescape %}
<p>{{ request.GET.q|safe }}</p>
{% endblock %}
"""


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("{% autoescape off %}", "security/template-autoescape-off"),
        ("{%- autoescape false -%}", "security/template-autoescape-off"),  # Jinja2, whitespace control
        ("{% AUTOESCAPE OFF %}", "security/template-autoescape-off"),
        ("<b>{{ request.GET.q|safe }}</b>", "security/template-safe-request"),
        ("{{ request.args.get('next') | safe }}", "security/template-safe-request"),
        ("{{ request.POST.bio|linebreaks|safe }}", "security/template-safe-request"),
    ],
)
def test_true_positives(line: str, rule: str) -> None:
    [finding] = template_findings("t/page.html", line, None)
    assert finding.rule == rule
    assert finding.cwe == 79
    assert finding.start_line == 1


@pytest.mark.parametrize(
    "line",
    [
        "{% autoescape on %}",  # escaping explicitly on
        "{% autoescape true %}",
        "{{ request.GET.q }}",  # escaped: no |safe
        "{{ request.GET.q|escape }}",
        "{{ article.body_html|safe }}",  # prepared by the view: a deliberate choice, not reported
        "{# {{ request.GET.q|safe }} is what we must never write #}",  # a template comment
        "<p>autoescape off is discussed in the docs</p>",
        "{{ safe_mode }} {{ request.user.name }}",
    ],
)
def test_look_alikes_stay_quiet(line: str) -> None:
    assert template_findings("t/page.html", line, None) == []


def test_template_files_by_extension() -> None:
    assert all(is_template(p) for p in ("a/b.html", "x.HTM", "mail.jinja2", "page.j2", "t.djhtml"))
    assert not any(is_template(p) for p in ("a.py", "page.md", "html.txt", "style.css"))


def test_the_security_analyzer_reports_only_changed_template_lines() -> None:
    old = PAGE.replace("{% autoescape off %}", "{% autoescape on %}")
    lines = PAGE.splitlines()
    diff = "--- a/templates/page.html\n+++ b/templates/page.html\n@@ -1,8 +1,8 @@\n" + "".join(
        f"-{o}\n+{n}\n" if o != n else f" {n}\n" for o, n in zip(old.splitlines(), lines, strict=True)
    )
    changeset = ChangeSet.from_unified_diff(diff)
    ctx = AnalyzerContext(changeset=changeset, read_file={"templates/page.html": PAGE}.get, mode="added")
    found = SecurityAnalyzer().analyze(ctx)
    # the autoescape line changed; the |safe on request data did not, so in "added" mode it is not reported
    assert [(f.rule, f.start_line) for f in found] == [("security/template-autoescape-off", 4)]
    whole = AnalyzerContext(changeset=changeset, read_file={"templates/page.html": PAGE}.get, mode="file")
    assert {(f.rule, f.start_line) for f in SecurityAnalyzer().analyze(whole)} == {
        ("security/template-autoescape-off", 4),
        ("security/template-safe-request", 7),
    }
