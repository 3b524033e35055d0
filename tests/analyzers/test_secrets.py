"""The secrets analyzer and redact(): known formats, generic assignments, placeholders, masking everywhere."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analyzers.base import AnalyzerContext, Confidence
from analyzers.diff import ChangeSet
from analyzers.secrets import KNOWN_PLACEHOLDER, PLACEHOLDER, SecretsAnalyzer, find_secrets, redact, shannon_entropy

ALNUM = string.ascii_letters + string.digits


def _added_file_diff(path: str, text: str) -> str:
    lines = text.split("\n")
    body = "".join(f"+{ln}\n" for ln in lines)
    return f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"


def _run(path: str, text: str, mode: str = "added") -> list:
    cs = ChangeSet.from_unified_diff(_added_file_diff(path, text))
    ctx = AnalyzerContext(changeset=cs, read_file=lambda p: text if p == path else None, mode=mode)  # type: ignore[arg-type]
    return SecretsAnalyzer().analyze(ctx)


# Built at run time from pieces so that this file itself carries no scannable token literal.
def _tok(prefix: str, body: str) -> str:
    return prefix + body


KNOWN = [
    ("aws-access-key", _tok("AKIA", "Z7Q2XK4M9RTW3PLB")),
    ("github-token", _tok("ghp_", "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5")),
    ("github-token", _tok("gho_", "Zq8Wm2Kx7Pn4Lr6Tj1Vb3Nc5Hd9Gf0Sa2Ey4")),
    ("github-token", _tok("github_pat_", "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH")),
    ("gitlab-token", _tok("glpat-", "Xy9Kq2Lm4Np6Rs8Tv0Wz")),
    ("slack-token", _tok("xoxb-", "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx")),
    ("stripe-key", _tok("sk_live_", "4eC39HqLyjWDarjtT1zdp7dc")),
    ("stripe-key", _tok("rk_live_", "9fQ2mX7kL3pR8tV1wY4zB6nC")),
    ("google-api-key", _tok("AIza", "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY")),
    ("anthropic-key", _tok("sk-ant-", "api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")),
    ("openai-key", _tok("sk-proj-", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")),
    (
        "jwt",
        _tok("eyJ", "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ),
]


@pytest.mark.parametrize(("kind", "token"), KNOWN)
@pytest.mark.parametrize("path", ["app/settings.py", ".env", "deploy/values.yaml", "config.json", "src/a.ts"])
def test_known_formats_are_found_and_masked(kind: str, token: str, path: str) -> None:
    text = f'first = 1\nVALUE = "{token}"\nlast = 2'
    findings = _run(path, text)
    assert [f.rule for f in findings] == [f"secrets/{kind}"]
    f = findings[0]
    assert (f.start_line, f.end_line, f.cwe) == (2, 2, 798)
    for blob in (f.message, f.code, f.title, repr(f)):
        assert token not in blob
    assert token not in redact(text)


def test_private_key_block_is_one_finding_and_fully_redacted() -> None:
    body = "MIIEowIBAAKCAQEAx4r9zZ0abcdEFGHijklMNOPqrstUVWXyz0123456789\nabcdEFGHijklMNOPqrstUVWXyz01234+/==\n"
    pem = "-----BEGIN RSA " + "PRIVATE KEY-----\n" + body + "-----END RSA PRIVATE KEY-----"
    findings = _run("certs/key.pem", "x\n" + pem + "\ny")
    assert [(f.rule, f.start_line, f.severity.label) for f in findings] == [("secrets/private-key", 2, "critical")]
    redacted = redact(pem)
    assert "MIIEow" not in redacted
    assert "abcdEFGH" not in redacted
    # a diff that cuts the block before its END line is still redacted up to the last base64 line
    truncated = "+-----BEGIN " + "PRIVATE KEY-----\n+" + body.replace("\n", "\n+").rstrip("+")
    assert "MIIEow" not in redact(truncated)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("app/db.py", 'password = "Tr0ub4dor&3xQz"'),
        ("app/db.py", 'connect(user="app", password="Zq8!wK2#pL9x")'),
        (".env", "DB_PASSWORD=Zq8wK2pL9xM4"),
        ("values.yaml", "  api_key: 9f8e7d6c5b4a39281706f5e4"),
        ("settings.json", '  "client_secret": "Qm9vZ2xlU2VjcmV0MTIz"'),
        ("main.go", 'apiKey := "Zq8wK2pL9xM4nB7v"'),
        ("App.java", 'private static final String PASSWORD = "Zq8wK2pL9xM4nB7v";'),
        ("config.php", "$db_password = 'Zq8wK2pL9xM4nB7v';"),
        ("config.rb", 'config.secret_key = "Zq8wK2pL9xM4nB7v"'),
    ],
)
def test_generic_assignment_with_entropy_is_found(path: str, line: str) -> None:
    findings = _run(path, line)
    assert [f.rule for f in findings] == ["secrets/hardcoded-credential"]
    assert "Zq8" not in findings[0].code
    assert "Tr0ub" not in repr(findings[0])


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("app/db.py", 'password = "changeme"'),
        ("app/db.py", 'password = "<your-password>"'),
        ("app/db.py", 'api_key = "${API_KEY}"'),
        ("app/db.py", 'api_key = "xxxxxxxxxxxxxxxx"'),
        ("app/db.py", 'password = os.environ["DB_PASSWORD"]'),
        ("app/db.py", "password = get_password()"),
        ("app/db.py", "token = request.headers.get('Authorization')"),
        ("app/db.py", 'password_reset_url = "https://example.com/reset/abc123XYZ"'),
        ("app/db.py", 'tokenizer = "bert-base-uncased-v2"'),
        ("app/db.py", 'password = "hunter22"'),
        ("app/db.py", 'if password == "Tr0ub4dor&3xQz":'),
        ("app/db.py", 'PASSWORD_HELP = "Use at least 12 characters"'),
        (".env", "API_KEY=${API_KEY}"),
        (".env", "SECRET_KEY=your-secret-key-here"),
        ("values.yaml", "password: {{ .Values.password }}"),
        ("ci.yml", "token: ${{ secrets.GITHUB_TOKEN }}"),
        ("app/aws.py", 'key = "' + _tok("AKIA", "IOSFODNN7EXAMPLE") + '"'),
        ("app/gh.py", 'token = "' + _tok("ghp_", "x" * 36) + '"'),
        ("app/db.py", 'secret_name = "prod/db/credentials-v2"'),
    ],
)
def test_placeholders_references_and_code_do_not_fire(path: str, line: str) -> None:
    assert _run(path, line) == []


def test_only_added_lines_are_reported_unless_file_mode() -> None:
    token = _tok("ghp_", "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5")
    head = f'OLD = "{token}"\nx = 1\ny = 2\n'
    diff = "--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,3 @@\n " + f'OLD = "{token}"\n x = 1\n+y = 2\n'
    cs = ChangeSet.from_unified_diff(diff)
    for mode, expected in (("added", 0), ("diff_context", 0), ("file", 1)):
        ctx = AnalyzerContext(changeset=cs, read_file=lambda _p: head, mode=mode)  # type: ignore[arg-type]
        assert len(SecretsAnalyzer().analyze(ctx)) == expected, mode


def test_works_without_a_file_reader_from_hunks_alone() -> None:
    token = _tok("glpat-", "Xy9Kq2Lm4Np6Rs8Tv0Wz")
    cs = ChangeSet.from_unified_diff(_added_file_diff("notes.txt", f"one\nsee {token} here"))
    findings = SecretsAnalyzer().analyze(AnalyzerContext(changeset=cs, read_file=lambda _p: None))
    assert [(f.rule, f.start_line) for f in findings] == [("secrets/gitlab-token", 2)]


def test_test_paths_lower_confidence() -> None:
    token = _tok("sk_live_", "4eC39HqLyjWDarjtT1zdp7dc")
    [f] = _run("tests/test_pay.py", f'KEY = "{token}"')
    assert f.confidence is Confidence.MEDIUM


def test_fingerprint_is_stable_across_line_shifts() -> None:
    token = _tok("ghp_", "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5")
    [a] = _run("a.py", f'T = "{token}"')
    [b] = _run("a.py", f'\n\n\nT = "{token}"')
    assert a.id == b.id
    assert a.start_line != b.start_line


# ---- property: no generated token of any format survives in any output --------------------------------------

FORMATS = {
    "aws": ("AKIA", st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16)),
    "ghp": ("ghp_", st.text(ALNUM, min_size=36, max_size=40)),
    "ghs": ("ghs_", st.text(ALNUM, min_size=36, max_size=40)),
    "gho": ("gho_", st.text(ALNUM, min_size=36, max_size=40)),
    "pat": ("github_pat_", st.text(ALNUM + "_", min_size=22, max_size=82)),
    "glpat": ("glpat-", st.text(ALNUM + "_-", min_size=20, max_size=30)),
    "slack": ("xoxb-", st.text(ALNUM + "-", min_size=10, max_size=50)),
    "stripe": ("sk_live_", st.text(ALNUM, min_size=24, max_size=40)),
    "rstripe": ("rk_live_", st.text(ALNUM, min_size=24, max_size=40)),
    "google": ("AIza", st.text(ALNUM + "_-", min_size=35, max_size=35)),
    "anthropic": ("sk-ant-api03-", st.text(ALNUM + "_-", min_size=40, max_size=95)),
    "openai": ("sk-proj-", st.text(ALNUM + "_-", min_size=40, max_size=60)),
    "generic": ("", st.text(ALNUM + "!@%^&*+=", min_size=12, max_size=40)),
}
CONTAINERS = [
    ("app/a.py", 'API_KEY = "{}"'),
    ("web/a.ts", "const apiKey = '{}';"),
    (".env", "API_KEY={}"),
    ("conf/app.yaml", "  api_key: {}"),
    ("conf/app.json", '  "api_key": "{}",'),
]


@st.composite
def secrets_in_files(draw: st.DrawFn) -> tuple[str, str, str]:
    name = draw(st.sampled_from(sorted(FORMATS)))
    prefix, body_strategy = FORMATS[name]
    # realistic random bodies: high entropy, no long runs of one character (those read as filler)
    body = draw(
        body_strategy.filter(
            lambda b: shannon_entropy(b) >= 3.6 and len(set(b)) > 8 and not re.search(r"(?i)(.)\1{5,}|x{4}", b)
        )
    )
    assume(not KNOWN_PLACEHOLDER.search(body))  # "fake", "example" ... inside a token mark a sample
    if not prefix:  # a generic value: not one that reads as a placeholder, and not starting with an operator
        body = "k" + body
        assume(not PLACEHOLDER.search(body))
    path, template = draw(st.sampled_from(CONTAINERS))
    return path, template, prefix + body


@settings(max_examples=250, deadline=None)
@given(secrets_in_files())
def test_no_unmasked_secret_in_findings_or_redaction(case: tuple[str, str, str]) -> None:
    path, template, secret = case
    text = "import x\n" + template.format(secret) + "\n"
    findings = _run(path, text)
    assert findings, (path, template)
    # the random tail of every token (anything past its fixed public prefix) must not appear anywhere
    tail = secret[-12:]
    for f in findings:
        for blob in (f.message, f.code, f.title, repr(f), str(f.extra)):
            assert secret not in blob
            assert tail not in blob
    redacted = redact(text)
    assert secret not in redacted
    assert tail not in redacted
    assert tail not in redact(text, path=path)
    assert all(tail not in repr(m) for m in find_secrets(text, path=path))


@pytest.mark.parametrize(
    ("label", "article"),
    [
        ("AWS access key id", "An"),
        ("npm token", "An"),
        ("SSH key", "An"),
        ("OpenAI API key", "An"),
        ("GitHub token", "A"),
        ("JSON Web Token", "A"),
        ("private key", "A"),
        ("Slack token", "A"),
    ],
)
def test_messages_use_the_right_article(label: str, article: str) -> None:
    from analyzers.secrets import _article

    assert _article(label) == article
