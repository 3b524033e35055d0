"""The GitHub App manifest flow: setup page → GitHub creates the App → code exchange → credentials in `.env`."""

from __future__ import annotations

import html
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from app.settings import USER_AGENT, Settings, api_base_url

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("diffwise.registration")

CALLBACK_PATH = "/setup/callback"
STATE_COOKIE = "diffwise_setup_state"
STATE_TTL = 3600.0  # GitHub's manifest code itself expires after an hour
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
ENV_KEYS = ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET")
_FALLBACK_MANIFEST: dict[str, Any] = {
    "name": "diffwise",
    "url": "https://github.com/apps/diffwise",
    "public": False,
    "default_events": [
        "pull_request",
        "issue_comment",
        "pull_request_review_comment",
        "pull_request_review",
        "installation",
        "installation_repositories",
    ],
    "default_permissions": {
        "pull_requests": "write",
        "checks": "write",
        "issues": "write",
        "contents": "read",
        "metadata": "read",
    },
}


# ---- the manifest ---------------------------------------------------------------------------------


def manifest_path() -> Path | None:
    """app.yml next to the package (a checkout), in <prefix>/share (the container), or in the working dir."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "app.yml", Path(sys.prefix) / "share" / "app.yml", Path.cwd() / "app.yml"):
        if candidate.is_file():
            return candidate
    return None


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    """The App manifest from app.yml (Probot's format), or the built-in one when no file ships."""
    path = path or manifest_path()
    if path is None:
        return dict(_FALLBACK_MANIFEST)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    return data


def build_manifest(
    base: Mapping[str, Any], public_url: str, webhook_path: str, name: str | None = None
) -> dict[str, Any]:
    """What GitHub's /settings/apps/new expects: app.yml plus this server's webhook and redirect URLs."""
    root = public_url.rstrip("/")
    manifest = {k: v for k, v in base.items() if k not in ("hook_attributes", "redirect_url")}
    if name:
        manifest["name"] = name
    hook = dict(base.get("hook_attributes") or {})
    hook["url"] = root + webhook_path
    hook.setdefault("active", True)
    manifest["hook_attributes"] = hook
    manifest["redirect_url"] = root + CALLBACK_PATH
    manifest["callback_urls"] = [root + "/dashboard/oauth/callback"]  # GitHub sign-in for /dashboard
    manifest.setdefault("public", False)
    return manifest


def github_web_url(settings: Settings) -> str:
    """The web host for the API base URL: api.github.com → github.com, <host>/api/v3 → <host>."""
    api = api_base_url(settings)
    if api.endswith("/api/v3"):
        return api[: -len("/api/v3")]
    parts = urlsplit(api)
    host = parts.netloc
    if host.startswith("api."):
        host = host[len("api.") :]
    return f"{parts.scheme}://{host}{parts.path}".rstrip("/")


def new_app_url(web_url: str, org: str | None, state: str) -> str:
    """GitHub's "create an App from a manifest" page, for a personal account or an organization."""
    where = f"/organizations/{quote(org, safe='')}" if org else ""
    return f"{web_url}{where}/settings/apps/new?state={quote(state, safe='')}"


# ---- .env -----------------------------------------------------------------------------------------


def env_lines(conversion: Mapping[str, Any]) -> dict[str, str]:
    """The .env values from GitHub's conversion answer; the key on one line with \\n escapes (Probot's way)."""
    pem = str(conversion["pem"]).strip().replace("\r\n", "\n").replace("\n", "\\n")
    return {
        "APP_ID": str(int(conversion["id"])),
        "PRIVATE_KEY": f'"{pem}"',
        "WEBHOOK_SECRET": str(conversion.get("webhook_secret") or ""),
        "GITHUB_CLIENT_ID": str(conversion.get("client_id") or ""),
        "GITHUB_CLIENT_SECRET": str(conversion.get("client_secret") or ""),
    }


def merge_env(existing: str, values: Mapping[str, str]) -> str:
    """Replace the lines that set `values`' keys (first occurrence; later duplicates dropped), keep the rest."""
    out: list[str] = []
    written: set[str] = set()
    for line in existing.splitlines():
        stripped = line.strip()
        body = stripped[len("export ") :].lstrip() if stripped.startswith("export ") else stripped
        key = body.partition("=")[0].strip() if "=" in body and not body.startswith("#") else None
        if key is not None and key in values:
            if key not in written:
                out.append(f"{key}={values[key]}")
                written.add(key)
            continue
        out.append(line)
    out += [f"{key}={value}" for key, value in values.items() if key not in written]
    return "\n".join(out) + "\n"


def write_env(path: Path, values: Mapping[str, str]) -> None:
    """Merge `values` into the dotenv file atomically, readable by its owner only (0600)."""
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    text = merge_env(existing, values)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".env.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


# ---- pages (all user-facing text lives here) ------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; color: #1f2328; }}
fieldset {{ border: 1px solid #d0d7de; border-radius: 6px; margin: 1rem 0; padding: 1rem; }}
label {{ display: block; margin: .5rem 0 .2rem; font-weight: 600; }}
input[type=text], input[type=url] {{ width: 100%; padding: .4rem; box-sizing: border-box; }}
button {{ font-size: 1rem; padding: .5rem 1rem; border-radius: 6px; border: 1px solid #1f883d; cursor: pointer; }}
.primary {{ background: #1f883d; color: #fff; }}
code {{ background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; }}
.error {{ color: #cf222e; }}
</style></head>
<body>
{body}
</body></html>
"""


def render_page(title: str, body: str) -> str:
    return _PAGE.format(title=html.escape(title), body=body)


def render_setup_page(
    *, manifest: Mapping[str, Any], action_url: str, org: str | None, public_url: str, web_url: str, note: str = ""
) -> str:
    """Step 1 (GET form: account and public URL) and step 2 (the button that posts the manifest to GitHub)."""
    e = html.escape
    where = f"the organization <strong>{e(org)}</strong>" if org else "your personal account"
    hook = str(manifest.get("hook_attributes", {}).get("url", ""))
    note_html = f'<p class="error">{e(note)}</p>' if note else ""
    body = f"""<h1>Set up diffwise</h1>
<p>diffwise is running but has no GitHub App credentials yet. Register a GitHub App for it in one click:
GitHub creates the App from diffwise's manifest and hands its id, private key and webhook secret back to
this server, which writes them into <code>.env</code>.</p>
{note_html}
<form id="where" method="get" action="/">
<fieldset><legend>Where should the App live?</legend>
<label for="org">Organization (leave empty for your personal account)</label>
<input type="text" id="org" name="org" value="{e(org or "")}" placeholder="my-org" autocomplete="off">
<label for="url">Public URL of this server (GitHub sends webhooks here)</label>
<input type="url" id="url" name="url" value="{e(public_url)}" required>
<p><button type="submit" id="update">Update</button></p>
</fieldset></form>
<form id="register" method="post" action="{e(action_url)}">
<input type="hidden" name="manifest" value="{e(json.dumps(manifest, sort_keys=True))}">
<p>The App will be created on {where} at <code>{e(web_url)}</code>, with webhooks sent to
<code>{e(hook)}</code>.</p>
<p><button type="submit" class="primary" id="register-button">Register GitHub App</button></p>
</form>
<p>Already have an App? Set <code>APP_ID</code>, <code>PRIVATE_KEY</code> and <code>WEBHOOK_SECRET</code>
in the environment or <code>.env</code> and restart.</p>"""
    return render_page("diffwise setup", body)


def render_done_page(*, name: str, html_url: str, env_path: str, web_url: str) -> str:
    e = html.escape
    install = html_url.rstrip("/") + "/installations/new" if html_url else f"{web_url}/settings/apps"
    body = f"""<h1>The GitHub App {e(name)} is registered</h1>
<p>Its id, private key, webhook secret and OAuth client credentials were written to <code>{e(env_path)}</code>
(readable by its owner only). Keep that file out of version control.</p>
<h2>Next steps</h2>
<ol>
<li>Restart diffwise (<code>diffwise serve</code>) so it reads the new credentials.</li>
<li><a id="install" href="{e(install)}">Install the App</a> on the repositories it should review.</li>
<li>Optionally set <code>ANTHROPIC_API_KEY</code> for the LLM review and add
<code>.github/diffwise.yml</code> to a repository to tune the policy.</li>
</ol>"""
    return render_page("diffwise is registered", body)


def render_error_page(message: str) -> str:
    body = f"""<h1>Registration did not complete</h1>
<p class="error">{html.escape(message)}</p>
<p><a href="/">Start again</a></p>"""
    return render_page("diffwise setup error", body)


# ---- the routes -----------------------------------------------------------------------------------


@dataclass
class _Issued:
    expires: float


class Registration:
    """Serves the setup page and the callback until an App has been registered by this process."""

    def __init__(
        self,
        settings: Settings,
        *,
        env_path: Path | None = None,
        manifest: Mapping[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.env_path = env_path or Path.cwd() / ".env"
        self.base_manifest = dict(manifest) if manifest is not None else load_manifest()
        self.web_url = github_web_url(settings)
        self._transport = transport
        self._states: dict[str, _Issued] = {}
        self._lock = threading.Lock()
        self.registered: str | None = None  # the App's slug once done

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self.setup, methods=["GET"]), Route(CALLBACK_PATH, self.callback, methods=["GET"])]

    def _issue_state(self) -> str:
        state = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._states.items() if v.expires < now]:
                del self._states[key]
            if len(self._states) >= 1000:
                del self._states[next(iter(self._states))]
            self._states[state] = _Issued(now + STATE_TTL)
        return state

    def _redeem_state(self, state: str, cookie: str | None) -> bool:
        if not state or cookie is None or not secrets.compare_digest(state, cookie):
            return False
        with self._lock:
            issued = self._states.pop(state, None)
        return issued is not None and issued.expires >= time.monotonic()

    async def setup(self, request: Request) -> Response:
        if self.registered:
            return HTMLResponse(
                render_done_page(name=self.registered, html_url="", env_path=str(self.env_path), web_url=self.web_url)
            )
        org = (request.query_params.get("org") or "").strip() or None
        note = ""
        if org is not None and not _LOGIN.match(org):
            note, org = f"{org!r} is not a GitHub organization name; using your personal account.", None
        public_url = (request.query_params.get("url") or "").strip() or str(request.base_url).rstrip("/")
        if urlsplit(public_url).scheme not in ("http", "https") or not urlsplit(public_url).netloc:
            note, public_url = "The public URL must start with http:// or https://.", str(request.base_url).rstrip("/")
        state = self._issue_state()
        manifest = build_manifest(self.base_manifest, public_url, self.settings.webhook_path)
        page = render_setup_page(
            manifest=manifest,
            action_url=new_app_url(self.web_url, org, state),
            org=org,
            public_url=public_url,
            web_url=self.web_url,
            note=note,
        )
        response = HTMLResponse(page)
        response.set_cookie(STATE_COOKIE, state, max_age=int(STATE_TTL), httponly=True, samesite="lax", path="/setup")
        return response

    async def callback(self, request: Request) -> Response:
        import httpx

        if self.registered:
            return HTMLResponse(render_error_page("An App was already registered; restart diffwise."), status_code=409)
        code = request.query_params.get("code") or ""
        state = request.query_params.get("state") or ""
        if not self._redeem_state(state, request.cookies.get(STATE_COOKIE)):
            log.warning("manifest callback refused: unknown or reused state")
            return HTMLResponse(
                render_error_page("This link is not from a registration this server started (state mismatch)."),
                status_code=400,
            )
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", code):
            return HTMLResponse(render_error_page("GitHub did not send a valid code."), status_code=400)
        try:
            conversion = await self._convert(code)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("manifest code exchange failed: %s", exc.__class__.__name__)
            return HTMLResponse(
                render_error_page(
                    f"GitHub did not accept the code ({exc.__class__.__name__}); it expires after an hour."
                ),
                status_code=502,
            )
        write_env(self.env_path, env_lines(conversion))
        name = str(conversion.get("name") or conversion.get("slug") or "diffwise")
        self.registered = name
        log.info("registered GitHub App %s (id %s); credentials written to %s", name, conversion["id"], self.env_path)
        page = render_done_page(
            name=name, html_url=str(conversion.get("html_url") or ""), env_path=str(self.env_path), web_url=self.web_url
        )
        response = HTMLResponse(page)
        response.delete_cookie(STATE_COOKIE, path="/setup")
        return response

    async def _convert(self, code: str) -> dict[str, Any]:
        import httpx

        url = f"{api_base_url(self.settings)}/app-manifests/{code}/conversions"
        headers = {"Accept": "application/vnd.github+json", "User-Agent": USER_AGENT}
        async with httpx.AsyncClient(transport=self._transport, timeout=30.0) as client:
            response = await client.post(url, headers=headers)
        if response.status_code not in (200, 201):
            raise ValueError(f"conversion answered {response.status_code}")
        data = response.json()
        if not isinstance(data, dict) or "id" not in data or "pem" not in data:
            raise ValueError("conversion answer lacks id or pem")
        return data


def routes(settings: Settings) -> list[BaseRoute]:
    """web_routes provider: the setup page and callback, only while the process has no App credentials."""
    if settings.has_app_credentials:
        return []
    return Registration(settings).routes()
