"""The manifest flow end to end: setup page → (fake) GitHub creates the App → code exchange → `.env`."""

from __future__ import annotations

import html
import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app import registration
from app.main import create_app
from app.settings import Settings
from tests.fakes.github import FakeGitHub, serve_asgi, serve_fake, shared_app_keys

APP_ID = 9001


class ManifestFakeGitHub(FakeGitHub):
    """The fake GitHub plus its web side of the manifest flow and `POST /app-manifests/{code}/conversions`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manifests: list[dict[str, Any]] = []  # what /settings/apps/new received: manifest, state, org
        self.codes: dict[str, dict[str, Any]] = {}
        self.conversions: list[str] = []
        web = [
            Route("/settings/apps/new", self._new_app, methods=["POST"]),
            Route("/organizations/{org}/settings/apps/new", self._new_app, methods=["POST"]),
        ]
        self.app.router.routes[0:0] = web

    def _register(self) -> None:
        super()._register()
        self._route("POST", r"/app-manifests/(?P<code>[^/]+)/conversions", "none", self._convert)

    def _authorize(self, request: Request, kind: str, params: dict[str, str]) -> Response | None:
        if kind == "none":
            return None
        return super()._authorize(request, kind, params)

    async def _new_app(self, request: Request) -> Response:
        """GitHub shows a confirmation form; this fake confirms at once and redirects back with a code."""
        form = parse_qs((await request.body()).decode("utf-8"))  # urlencoded, as a browser posts it
        manifest = json.loads(form["manifest"][0])
        state = request.query_params.get("state", "")
        self.manifests.append({"manifest": manifest, "state": state, "org": request.path_params.get("org")})
        code = f"code{len(self.codes) + 1}"
        self.codes[code] = manifest
        return RedirectResponse(f"{manifest['redirect_url']}?code={code}&state={state}", status_code=302)

    async def _convert(self, request: Request, body: Any, code: str) -> Response:
        manifest = self.codes.pop(code, None)
        if manifest is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        self.conversions.append(code)
        slug = str(manifest["name"]).lower()
        return JSONResponse(
            {
                "id": APP_ID,
                "slug": slug,
                "name": manifest["name"],
                "html_url": f"https://github.com/apps/{slug}",
                "client_id": "Iv1.abcdef0123456789",
                "client_secret": "c" * 40,
                "webhook_secret": "whsec-from-github",
                "pem": shared_app_keys().private_pem,
                "owner": {"login": "octo", "type": "User"},
            },
            status_code=201,
        )


@pytest.fixture
def fake() -> ManifestFakeGitHub:
    return ManifestFakeGitHub(APP_ID, shared_app_keys().public_pem)


@pytest.fixture
def running(fake: ManifestFakeGitHub, tmp_path: Path) -> Iterator[tuple[str, Path, registration.Registration]]:
    """diffwise without credentials on loopback (setup routes), pointed at the fake GitHub; yields its URL."""
    with serve_fake(fake) as api_url:
        settings = Settings.for_tests(github_api_url=api_url, state_dir=tmp_path / "state")
        env_path = tmp_path / "work" / ".env"
        reg = registration.Registration(settings, env_path=env_path)
        app = create_app(settings, reg.routes())
        with serve_asgi(app, lifespan="on") as url:
            yield url, env_path, reg


def _register_form(page: str) -> tuple[str, dict[str, Any]]:
    action = html.unescape(re.search(r'<form id="register" method="post" action="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    value = re.search(r'name="manifest" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return action, json.loads(html.unescape(value))


def test_manifest_is_app_yml_plus_this_servers_urls() -> None:
    base = registration.load_manifest()
    manifest = registration.build_manifest(base, "https://bot.example.com/", "/api/github/webhooks")
    assert manifest["hook_attributes"] == {"url": "https://bot.example.com/api/github/webhooks", "active": True}
    assert manifest["redirect_url"] == "https://bot.example.com/setup/callback"
    assert manifest["default_permissions"]["pull_requests"] == "write"
    assert manifest["default_permissions"]["contents"] == "read"
    assert "pull_request" in manifest["default_events"]
    assert manifest["public"] is False


@pytest.mark.parametrize(
    ("env", "web"),
    [
        ({}, "https://github.com"),
        ({"GHE_HOST": "ghe.example.com"}, "https://ghe.example.com"),
        ({"GHE_HOST": "ghe.example.com", "GHE_PROTOCOL": "http"}, "http://ghe.example.com"),
        ({"GITHUB_API_URL": "https://api.ghe.example.org"}, "https://ghe.example.org"),
    ],
)
def test_github_web_host_follows_ghe_settings(env: dict[str, str], web: str) -> None:
    settings = Settings.from_env(env, env_file=None)
    assert registration.github_web_url(settings) == web
    assert registration.new_app_url(web, None, "s") == f"{web}/settings/apps/new?state=s"
    assert registration.new_app_url(web, "acme", "s") == f"{web}/organizations/acme/settings/apps/new?state=s"


def test_merge_env_replaces_our_keys_and_keeps_the_rest() -> None:
    existing = "# mine\nLOG_LEVEL=debug\nexport APP_ID=1\nAPP_ID=2\nANTHROPIC_API_KEY=sk\n"
    merged = registration.merge_env(existing, {"APP_ID": "7", "WEBHOOK_SECRET": "w"})
    assert merged == "# mine\nLOG_LEVEL=debug\nAPP_ID=7\nANTHROPIC_API_KEY=sk\nWEBHOOK_SECRET=w\n"


def test_full_flow_writes_a_private_env_that_settings_can_read(
    running: tuple[str, Path, registration.Registration], fake: ManifestFakeGitHub, tmp_path: Path
) -> None:
    url, env_path, reg = running
    env_path.parent.mkdir(parents=True)
    env_path.write_text("LOG_LEVEL=debug\nAPP_ID=1\n", encoding="utf-8")
    with httpx.Client(base_url=url, follow_redirects=True, timeout=10) as browser:
        page = browser.get("/", params={"url": "https://bot.example.com"})
        assert page.status_code == 200
        assert "Register GitHub App" in page.text
        action, manifest = _register_form(page.text)
        assert action.startswith(reg.web_url + "/settings/apps/new?state=")
        assert manifest["hook_attributes"]["url"] == "https://bot.example.com/api/github/webhooks"
        assert manifest["redirect_url"] == "https://bot.example.com/setup/callback"
        # The browser posts the manifest to GitHub; GitHub redirects to redirect_url. Our public URL is a
        # placeholder here, so follow GitHub's redirect to the loopback server by hand.
        posted = browser.post(action, data={"manifest": json.dumps(manifest)}, follow_redirects=False)
        assert posted.status_code == 302
        query = parse_qs(urlsplit(posted.headers["location"]).query)
        done = browser.get("/setup/callback", params={"code": query["code"][0], "state": query["state"][0]})
    assert done.status_code == 200, done.text
    assert "is registered" in done.text
    assert "https://github.com/apps/diffwise/installations/new" in done.text
    assert fake.conversions == ["code1"]
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    text = env_path.read_text(encoding="utf-8")
    assert text.startswith("LOG_LEVEL=debug\nAPP_ID=9001\n")
    assert text.count("APP_ID=") == 1
    assert all(line.count("\n") == 0 for line in text.splitlines())
    settings = Settings.from_env({}, env_file=env_path)
    assert settings.app_id == APP_ID
    assert settings.private_key == shared_app_keys().private_pem.strip() + "\n"
    assert settings.webhook_secret == "whsec-from-github"
    assert settings.github_client_id == "Iv1.abcdef0123456789"
    assert settings.github_client_secret == "c" * 40
    assert reg.registered == "diffwise"


def test_organization_and_the_real_redirect(
    running: tuple[str, Path, registration.Registration], fake: ManifestFakeGitHub
) -> None:
    url, env_path, _ = running
    with httpx.Client(base_url=url, follow_redirects=True, timeout=10) as browser:
        page = browser.get("/", params={"org": "acme"})  # public URL defaults to the request's own
        action, manifest = _register_form(page.text)
        assert "/organizations/acme/settings/apps/new?state=" in action
        assert manifest["redirect_url"] == url + "/setup/callback"
        done = browser.post(action, data={"manifest": json.dumps(manifest)})  # follows GitHub's redirect back
    assert done.status_code == 200
    assert fake.manifests[0]["org"] == "acme"
    assert env_path.is_file()


def test_bad_org_name_falls_back_to_personal_account(running: tuple[str, Path, registration.Registration]) -> None:
    url, _, _ = running
    page = httpx.get(url + "/", params={"org": "../evil"})
    action, _ = _register_form(page.text)
    assert "/organizations/" not in action
    assert "not a GitHub organization name" in page.text


def test_callback_refuses_a_state_it_did_not_issue_to_this_browser(
    running: tuple[str, Path, registration.Registration], fake: ManifestFakeGitHub
) -> None:
    url, env_path, _ = running
    with httpx.Client(base_url=url, timeout=10) as victim:
        page = victim.get("/")
        action, manifest = _register_form(page.text)
        state = parse_qs(urlsplit(action).query)["state"][0]
    fake.codes["attacker"] = manifest
    # Another browser (no cookie) replays the state; a forged state fails even with a cookie.
    assert httpx.get(url + "/setup/callback", params={"code": "attacker", "state": state}).status_code == 400
    forged = httpx.get(
        url + "/setup/callback",
        params={"code": "attacker", "state": "forged"},
        cookies={registration.STATE_COOKIE: "forged"},
    )
    assert forged.status_code == 400
    assert fake.conversions == []
    assert not env_path.exists()


def test_expired_code_is_an_error_page_and_writes_nothing(
    running: tuple[str, Path, registration.Registration], fake: ManifestFakeGitHub
) -> None:
    url, env_path, _ = running
    with httpx.Client(base_url=url, timeout=10) as browser:
        action, _ = _register_form(browser.get("/").text)
        state = parse_qs(urlsplit(action).query)["state"][0]
        response = browser.get("/setup/callback", params={"code": "expired", "state": state})
        assert response.status_code == 502
        assert "did not accept the code" in response.text
        # a state is single-use
        again = browser.get("/setup/callback", params={"code": "expired", "state": state})
        assert again.status_code == 400
    assert not env_path.exists()


def test_provider_serves_setup_only_without_credentials() -> None:
    keys = shared_app_keys()
    assert registration.routes(Settings.for_tests(app_id=1, private_key=keys.private_pem)) == []
    paths = {getattr(r, "path", None) for r in registration.routes(Settings.for_tests())}
    assert paths == {"/", "/setup/callback"}


def test_secrets_never_reach_the_logs(
    running: tuple[str, Path, registration.Registration], caplog: pytest.LogCaptureFixture
) -> None:
    url, _, _ = running
    caplog.set_level("DEBUG")
    with httpx.Client(base_url=url, follow_redirects=True, timeout=10) as browser:
        action, manifest = _register_form(browser.get("/").text)
        assert browser.post(action, data={"manifest": json.dumps(manifest)}).status_code == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "registered GitHub App" in logged
    for secret in ("whsec-from-github", "c" * 40, "PRIVATE KEY"):
        assert secret not in logged


def test_serve_wiring_writes_env_in_the_working_directory(
    fake: ManifestFakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through web_routes' providers, as `diffwise serve` builds the app: `.env` lands in the working dir."""
    from app import web_routes

    monkeypatch.chdir(tmp_path)
    with serve_fake(fake) as api_url:
        settings = Settings.from_env({"GITHUB_API_URL": api_url, "DIFFWISE_STATE_DIR": str(tmp_path / "s")}, None)
        app = create_app(settings, web_routes.collect(settings))
        with serve_asgi(app, lifespan="on") as url, httpx.Client(base_url=url, follow_redirects=True) as browser:
            action, manifest = _register_form(browser.get("/").text)
            done = browser.post(action, data={"manifest": json.dumps(manifest)})
            assert browser.get("/metrics").status_code == 200
    assert done.status_code == 200
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert Settings.from_env({}, env_file=tmp_path / ".env").has_app_credentials
