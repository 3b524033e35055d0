"""Process settings from the environment and a `.env` file, with Probot's variable names; frozen, loaded once."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import __version__
from app.errors import ConfigError

LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "critical")
LOG_FORMATS = ("json", "pretty")
GROUP_COMMIT_MODES = ("auto", "inline", "thread")
DEFAULT_API_URL = "https://api.github.com"
USER_AGENT = f"diffwise/{__version__}"
_SECRET_FIELDS = ("private_key", "webhook_secret", "anthropic_api_key", "github_client_secret")


@dataclass(frozen=True)
class Settings:
    """Everything the process reads from its environment. Secrets are never part of repr()."""

    app_id: int | None = None
    private_key: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_path: str = "/api/github/webhooks"
    host: str = "127.0.0.1"
    port: int = 3000
    github_api_url: str = "https://api.github.com"
    log_level: str = "info"
    log_format: str = "pretty"
    redis_url: str | None = field(default=None, repr=False)
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str | None = None
    model: str | None = None
    state_dir: Path = Path(".diffwise")
    database_url: str | None = field(default=None, repr=False)
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    workers: int = 2
    fsync: bool = False
    group_commit: str = "auto"  # auto | inline | thread: where the receiver's batched enqueue runs

    @property
    def has_app_credentials(self) -> bool:
        return self.app_id is not None and bool(self.private_key)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The configured secret values, for log redaction."""
        values = (getattr(self, name) for name in _SECRET_FIELDS)
        return tuple(v for v in values if v)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not f.repr:
                value = "<set>" if value else None
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
        """Read the process environment (or `environ`) over the `.env` file; raise ConfigError naming the variable."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update(read_env_file(Path(env_file)))
        values.update(os.environ if environ is None else environ)
        return _parse(values)

    @classmethod
    def for_tests(cls, **overrides: Any) -> Settings:
        """Settings for tests: a webhook secret, a fresh state directory, no App credentials unless given."""
        base: dict[str, Any] = {"webhook_secret": "test-secret", "log_level": "warning"}
        if "state_dir" not in overrides:
            base["state_dir"] = Path(tempfile.mkdtemp(prefix="diffwise-test-"))
        base.update(overrides)
        if isinstance(base.get("state_dir"), str):
            base["state_dir"] = Path(base["state_dir"])
        return cls(**base)


def read_env_file(path: Path) -> dict[str, str]:
    """A dotenv subset: KEY=VALUE lines, optional `export `, quotes, comments; later lines win."""
    result: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if key:
            result[key] = value
    return result


def _parse(env: Mapping[str, str]) -> Settings:
    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value is not None and value.strip() != "" else None

    app_id = _parse_int("APP_ID", get("APP_ID"), minimum=1)
    private_key = _private_key(get("PRIVATE_KEY"), get("PRIVATE_KEY_PATH"))
    if app_id is not None and private_key is None:
        raise ConfigError("PRIVATE_KEY or PRIVATE_KEY_PATH is required when APP_ID is set")
    if private_key is not None and app_id is None:
        raise ConfigError("APP_ID is required when PRIVATE_KEY or PRIVATE_KEY_PATH is set")

    webhook_path = get("WEBHOOK_PATH") or "/api/github/webhooks"
    if not webhook_path.startswith("/"):
        raise ConfigError("WEBHOOK_PATH must start with '/'")

    port = _parse_int("PORT", get("PORT"), minimum=0, maximum=65535)
    log_level = (get("LOG_LEVEL") or "info").lower()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    log_format = (get("LOG_FORMAT") or "pretty").lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError("LOG_FORMAT must be json or pretty")

    workers = _parse_int("DIFFWISE_WORKERS", get("DIFFWISE_WORKERS"), minimum=1, maximum=64)
    return Settings(
        app_id=app_id,
        private_key=private_key,
        webhook_secret=env.get("WEBHOOK_SECRET") or None,
        webhook_path=webhook_path,
        host=get("HOST") or "127.0.0.1",
        port=3000 if port is None else port,
        github_api_url=_github_api_url(get("GITHUB_API_URL"), get("GHE_HOST"), get("GHE_PROTOCOL")),
        log_level=log_level,
        log_format=log_format,
        redis_url=_url("REDIS_URL", get("REDIS_URL"), ("redis", "rediss", "unix")),
        anthropic_api_key=get("ANTHROPIC_API_KEY"),
        anthropic_base_url=_url("ANTHROPIC_BASE_URL", get("ANTHROPIC_BASE_URL"), ("http", "https")),
        model=get("DIFFWISE_MODEL"),
        state_dir=Path(get("DIFFWISE_STATE_DIR") or ".diffwise"),
        database_url=get("DIFFWISE_DATABASE_URL"),
        github_client_id=get("GITHUB_CLIENT_ID"),
        github_client_secret=get("GITHUB_CLIENT_SECRET"),
        workers=2 if workers is None else workers,
        fsync=_parse_bool("DIFFWISE_FSYNC", get("DIFFWISE_FSYNC")),
        group_commit=_choice("DIFFWISE_GROUP_COMMIT", get("DIFFWISE_GROUP_COMMIT"), GROUP_COMMIT_MODES, "auto"),
    )


def _choice(name: str, value: str | None, allowed: tuple[str, ...], default: str) -> str:
    if value is None or not value.strip():
        return default
    choice = value.strip().lower()
    if choice not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)} (got {value.strip()[:40]!r})")
    return choice


def _parse_bool(name: str, value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false")


def _parse_int(name: str, value: str | None, *, minimum: int, maximum: int | None = None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value, 10)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{name} must be {bound}")
    return number


def _private_key(inline: str | None, path: str | None) -> str | None:
    if inline is not None:
        name, text = "PRIVATE_KEY", inline.replace("\\n", "\n")
    elif path is not None:
        name = "PRIVATE_KEY_PATH"
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"PRIVATE_KEY_PATH cannot be read: {exc.__class__.__name__}") from None
    else:
        return None
    text = text.strip() + "\n"
    _check_pem(name, text)
    return text


def _check_pem(name: str, text: str) -> None:
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text or "-----END" not in text:
        raise ConfigError(f"{name} is not a PEM private key (expected -----BEGIN ... PRIVATE KEY-----)")
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:  # pragma: no cover - cryptography comes with githubkit[auth-app]
        return
    try:
        load_pem_private_key(text.encode("utf-8"), password=None)
    except Exception:
        raise ConfigError(f"{name} is not a valid PEM private key (it could not be parsed)") from None


def _github_api_url(explicit: str | None, ghe_host: str | None, ghe_protocol: str | None) -> str:
    if explicit is not None:
        return _url("GITHUB_API_URL", explicit, ("http", "https")) or explicit.rstrip("/")
    if ghe_host is not None:
        protocol = (ghe_protocol or "https").lower()
        if protocol not in ("http", "https"):
            raise ConfigError("GHE_PROTOCOL must be http or https")
        host = ghe_host.strip("/")
        if "://" in host or "/" in host or not host:
            raise ConfigError("GHE_HOST must be a host name such as github.example.com (no scheme, no path)")
        return f"{protocol}://{host}/api/v3"
    return "https://api.github.com"


def _url(name: str, value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in schemes or not rest:
        raise ConfigError(f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value.rstrip("/")


def api_base_url(settings: Settings) -> str:
    """The REST base URL: settings.github_api_url (GHES: <proto>://<host>/api/v3), else api.github.com.

    It lives here, not in app.github, so the setup page computes it without importing githubkit."""
    return (getattr(settings, "github_api_url", None) or DEFAULT_API_URL).rstrip("/")
