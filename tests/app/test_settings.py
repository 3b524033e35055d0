"""Settings: Probot's variable names, .env, GHES URLs, one clear error per bad value, secrets never shown."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from app.errors import ConfigError
from app.logs import log_context, setup_logging
from app.settings import Settings, read_env_file


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def load(**env: str) -> Settings:
    return Settings.from_env(environ=env, env_file=None)


def test_defaults_without_any_variable() -> None:
    s = load()
    assert s.webhook_path == "/api/github/webhooks"
    assert (s.host, s.port) == ("127.0.0.1", 3000)
    assert s.github_api_url == "https://api.github.com"
    assert s.state_dir == Path(".diffwise")
    assert not s.has_app_credentials
    assert s.redis_url is None


def test_app_credentials_inline_with_escaped_newlines(pem: str) -> None:
    escaped = pem.strip().replace("\n", "\\n")
    s = load(APP_ID="123", PRIVATE_KEY=escaped, WEBHOOK_SECRET="shh")
    assert s.app_id == 123
    assert s.has_app_credentials
    assert s.private_key is not None
    assert s.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert s.private_key.strip() == pem.strip()


def test_private_key_path(tmp_path: Path, pem: str) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(pem)
    s = load(APP_ID="7", PRIVATE_KEY_PATH=str(key_file))
    assert s.private_key is not None
    assert s.private_key.strip() == pem.strip()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"APP_ID": "abc", "PRIVATE_KEY": "x"}, "APP_ID"),
        ({"APP_ID": "12", "PRIVATE_KEY": "not a key"}, "PRIVATE_KEY"),
        ({"APP_ID": "12"}, "PRIVATE_KEY"),
        ({"APP_ID": "12", "PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "PRIVATE_KEY_PATH"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"WEBHOOK_PATH": "hooks"}, "WEBHOOK_PATH"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"DIFFWISE_FSYNC": "sometimes"}, "DIFFWISE_FSYNC"),
        ({"DIFFWISE_GROUP_COMMIT": "later"}, "DIFFWISE_GROUP_COMMIT"),
        ({"DIFFWISE_WORKERS": "0"}, "DIFFWISE_WORKERS"),
        ({"GHE_HOST": "https://ghe.example.com"}, "GHE_HOST"),
        ({"GHE_HOST": "ghe.example.com", "GHE_PROTOCOL": "ftp"}, "GHE_PROTOCOL"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(**env)
    message = str(info.value)
    assert variable in message
    assert "\n" not in message


def test_a_corrupt_pem_is_refused_without_echoing_it() -> None:
    body = "-----BEGIN RSA PRIVATE KEY-----\nTOPSECRETbutbroken\n-----END RSA PRIVATE KEY-----"
    with pytest.raises(ConfigError) as info:
        load(APP_ID="1", PRIVATE_KEY=body)
    assert "PRIVATE_KEY" in str(info.value)
    assert "TOPSECRET" not in str(info.value)


def test_github_api_url_precedence() -> None:
    assert load(GHE_HOST="ghe.example.com").github_api_url == "https://ghe.example.com/api/v3"
    assert load(GHE_HOST="ghe.local", GHE_PROTOCOL="http").github_api_url == "http://ghe.local/api/v3"
    explicit = load(GITHUB_API_URL="https://api.example.com/", GHE_HOST="ghe.example.com")
    assert explicit.github_api_url == "https://api.example.com"


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nexport WEBHOOK_SECRET='from-file'\nPORT=4000\n"
        "LOG_FORMAT=json # inline\nDIFFWISE_STATE_DIR=/var/dw\n"
    )
    s = Settings.from_env(environ={"PORT": "5000"}, env_file=env_file)
    assert s.webhook_secret == "from-file"
    assert s.port == 5000
    assert s.log_format == "json"
    assert s.state_dir == Path("/var/dw")


def test_optional_extras_are_read() -> None:
    s = load(
        DIFFWISE_DATABASE_URL="postgresql://u:p@db/x",
        GITHUB_CLIENT_ID="Iv1.abc",
        GITHUB_CLIENT_SECRET="cs",
        DIFFWISE_MODEL="claude-x",
        ANTHROPIC_BASE_URL="http://127.0.0.1:9/",
        REDIS_URL="redis://127.0.0.1:6379/0",
        DIFFWISE_FSYNC="yes",
        DIFFWISE_WORKERS="4",
        DIFFWISE_GROUP_COMMIT=" Thread ",
    )
    assert s.group_commit == "thread"
    assert load().group_commit == "auto"
    assert s.fsync is True
    assert s.workers == 4
    assert s.database_url == "postgresql://u:p@db/x"
    assert (s.github_client_id, s.github_client_secret) == ("Iv1.abc", "cs")
    assert s.model == "claude-x"
    assert s.anthropic_base_url == "http://127.0.0.1:9"
    assert s.redis_url == "redis://127.0.0.1:6379/0"


@given(secret=st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122), min_size=8, max_size=40))
def test_secrets_never_appear_in_repr(secret: str) -> None:
    s = Settings(
        webhook_secret=secret + "W",
        anthropic_api_key=secret + "A",
        private_key=secret + "P",
        github_client_secret=secret + "C",
        redis_url=f"redis://:{secret}R@h/0",
    )
    text = repr(s) + str(s)
    for suffix in "WAPCR":
        assert secret + suffix not in text
    assert "webhook_secret='<set>'" in text


def test_for_tests_gives_an_isolated_state_dir() -> None:
    a, b = Settings.for_tests(), Settings.for_tests(port=0)
    assert a.state_dir != b.state_dir
    assert a.state_dir.is_dir()
    assert b.port == 0
    assert a.webhook_secret


def test_read_env_file_later_lines_win(tmp_path: Path) -> None:
    f = tmp_path / "e"
    f.write_text('A=1\nA="2"\nB=\n=x\nnoequals\n')
    assert read_env_file(f) == {"A": "2", "B": ""}


def _capture(fmt: str, secrets: tuple[str, ...], emit: Callable[[logging.Logger], None]) -> str:
    stream, root = io.StringIO(), logging.getLogger()
    level = root.level
    setup_logging("debug", fmt, secrets, stream=stream)
    try:
        emit(logging.getLogger("diffwise.test"))
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_diffwise", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
    return stream.getvalue()


def test_pretty_logs_carry_context_and_mask_secrets_in_messages_and_tracebacks(pem: str) -> None:
    def emit(logger: logging.Logger) -> None:
        with log_context(delivery_id="d-42", repo="octo/repo"):
            logger.info("using key %s and token %s", pem, "ghp_" + "x" * 36)
            try:
                raise RuntimeError("secret hunter2hunter2 leaked")
            except RuntimeError:
                logger.exception("failed")
        logger.warning("outside")

    out = _capture("pretty", ("hunter2hunter2",), emit)
    first, *rest = out.splitlines()
    assert "[octo/repo d-42]" in first
    assert "PRIVATE KEY" not in out
    assert "ghp_" not in out
    assert "hunter2hunter2" not in out
    assert "RuntimeError" in out  # the traceback is kept, only the secret is masked
    assert "outside" in rest[-1]
    assert "d-42" not in rest[-1]


def test_json_logs_are_one_object_per_line() -> None:
    out = _capture("json", (), lambda logger: logger.info("multi\nline %d", 3))
    [entry] = [json.loads(line) for line in out.splitlines()]
    assert entry["msg"] == "multi\nline 3"
    assert entry["level"] == "info"
    assert "delivery_id" not in entry
