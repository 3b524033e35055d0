"""/dashboard: never open by default, admin token (header or sign-in form), GitHub OAuth limited to visible repos."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, insert
from starlette.applications import Starlette
from starlette.testclient import TestClient

from app.dashboard import SESSION_COOKIE, Dashboard, acceptance_bars, admin_token, web_url
from app.outcome_store import finding_posts, iso_to_epoch
from app.settings import Settings
from app.stats import Rates
from app.web_routes import PROVIDERS, collect
from tests.app.test_stats import seed

TOKEN = "s3cret-admin-token-for-tests"
NOW = iso_to_epoch("2026-11-20T12:00:00Z")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    seed(engine)
    return engine


def client(engine: Engine, settings: Settings | None = None, token: str | None = TOKEN, **kw: object) -> TestClient:
    settings = settings or Settings.for_tests()
    dashboard = Dashboard(settings, token=token, engine=engine, clock=lambda: NOW, **kw)  # type: ignore[arg-type]
    return TestClient(Starlette(routes=dashboard.routes()), follow_redirects=False)


def test_closed_when_nothing_is_configured(engine: Engine) -> None:
    c = client(engine, token=None)
    page = c.get("/dashboard")
    assert page.status_code == 404
    assert "DIFFWISE_ADMIN_TOKEN" in page.text
    assert "octo/shop" not in page.text
    assert c.post("/dashboard/login", data={"token": "anything"}).status_code == 404
    assert c.get("/dashboard/oauth/login").status_code == 404
    assert c.get("/dashboard", headers={"Authorization": "Bearer "}).status_code == 404


def test_short_tokens_do_not_enable_it(tmp_path: Path) -> None:
    assert admin_token({"DIFFWISE_ADMIN_TOKEN": "short"}, env_file=None) is None
    assert admin_token({"DIFFWISE_ADMIN_TOKEN": TOKEN}, env_file=None) == TOKEN
    env = tmp_path / ".env"
    env.write_text(f"DIFFWISE_ADMIN_TOKEN={TOKEN}\n")
    assert admin_token({}, env_file=env) == TOKEN


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_unauthorised_requests_get_the_sign_in_page_and_no_data(engine: Engine, headers: dict[str, str]) -> None:
    page = client(engine).get("/dashboard", headers=headers)
    assert page.status_code == 401
    assert 'name="token"' in page.text
    assert "octo/shop" not in page.text
    assert "security/eval" not in page.text


def test_admin_token_header(engine: Engine) -> None:
    page = client(engine).get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for text in ("octo/shop", "octo/api", "security/eval", "quality/bare-except", "2026-11-16", "$0.6000"):
        assert text in page.text, text
    assert '<svg id="acceptance-chart"' in page.text
    assert '<svg id="cost-chart"' in page.text


def test_sign_in_form_sets_an_httponly_session_cookie(engine: Engine) -> None:
    c = client(engine)
    wrong = c.post("/dashboard/login", data={"token": "nope"})
    assert wrong.status_code == 401
    assert SESSION_COOKIE not in wrong.cookies
    ok = c.post("/dashboard/login", data={"token": TOKEN})
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/dashboard" in cookie
    assert TOKEN not in cookie
    assert c.get("/dashboard").status_code == 200
    assert c.post("/dashboard/logout").status_code == 303
    assert c.get("/dashboard").status_code == 401


def test_forged_cookie_is_refused(engine: Engine) -> None:
    c = client(engine)
    c.cookies.set(SESSION_COOKIE, TOKEN, path="/dashboard")
    assert c.get("/dashboard").status_code == 401


def test_a_session_is_shared_by_every_web_process_and_ends_everywhere_on_sign_out(engine: Engine) -> None:
    """Two dashboards on one state database stand for two `diffwise serve` processes behind a load balancer."""
    first, second = client(engine), client(engine)
    ok = first.post("/dashboard/login", data={"token": TOKEN})
    key = ok.cookies[SESSION_COOKIE]
    second.cookies.set(SESSION_COOKIE, key, path="/dashboard")
    assert second.get("/dashboard").status_code == 200
    with engine.connect() as conn:  # only the key's hash is stored: a copy of the database signs no one in
        stored = [row[0] for row in conn.exec_driver_sql("select key_hash from dashboard_session")]
    assert len(stored) == 1
    assert key not in stored
    assert first.post("/dashboard/logout").status_code == 303
    assert second.get("/dashboard").status_code == 401


def test_sessions_expire(engine: Engine) -> None:
    now = [NOW]
    dashboard = Dashboard(Settings.for_tests(), token=TOKEN, engine=engine, clock=lambda: now[0])
    c = TestClient(Starlette(routes=dashboard.routes()), follow_redirects=False)
    assert c.post("/dashboard/login", data={"token": TOKEN}).status_code == 303
    now[0] += 8 * 3600 - 1
    assert c.get("/dashboard").status_code == 200
    now[0] += 2
    assert c.get("/dashboard").status_code == 401


def test_filters_by_repo_and_period(engine: Engine) -> None:
    c = client(engine)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    api = c.get("/dashboard", params={"repo": "octo/api"}, headers=auth).text
    assert "security/sql-injection" in api
    assert "security/eval" not in api
    recent = c.get("/dashboard", params={"period": "7d"}, headers=auth).text  # since 2026-11-13
    assert "2026-11-16" in recent
    assert "2026-11-02" not in recent
    odd = c.get("/dashboard", params={"period": "forever"}, headers=auth)
    assert odd.status_code == 200


def test_user_data_is_escaped(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(finding_posts).values(
                repo="octo/shop",
                pr_number=99,
                finding_id="f" * 16,
                rule="<script>alert(1)</script>",
                analyzer="x",
                source="llm",
                severity="high",
                path="a.py",
                posted_at=NOW,
            )
        )
    page = client(engine).get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_acceptance_bars_scale_with_the_rates() -> None:
    svg = acceptance_bars({"a/b": Rates(posted=4, applied=3, dismissed=1)}, width=640)
    assert 'width="255.0"' in svg  # 3/4 of the 340-pixel bar
    assert 'width="85.0"' in svg


def github_transport(repos: list[str], login: str = "dev") -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/login/oauth/access_token":
            form = dict(x.split("=") for x in request.content.decode().split("&"))
            if form.get("code") != "good-code" or form.get("client_secret") != "client-secret":
                return httpx.Response(200, json={"error": "bad_verification_code"})
            return httpx.Response(200, json={"access_token": "gho_user", "token_type": "bearer"})
        if request.headers.get("authorization") != "Bearer gho_user":
            return httpx.Response(401, json={"message": "Bad credentials"})
        if path == "/api/v3/user":
            return httpx.Response(200, json={"login": login})
        if path == "/api/v3/user/installations":
            return httpx.Response(200, json={"total_count": 1, "installations": [{"id": 7}]})
        if path == "/api/v3/user/installations/7/repositories":
            return httpx.Response(200, json={"repositories": [{"full_name": r} for r in repos]})
        return httpx.Response(404, json={"message": "Not Found"})

    return httpx.MockTransport(handle)


def oauth_client(engine: Engine, repos: list[str]) -> TestClient:
    settings = Settings.for_tests(
        github_client_id="Iv1.client", github_client_secret="client-secret", github_api_url="https://ghe.test/api/v3"
    )
    return client(engine, settings, token=None, transport=github_transport(repos))


def test_github_sign_in_limits_the_dashboard_to_visible_repos(engine: Engine) -> None:
    c = oauth_client(engine, ["Octo/API"])
    assert c.get("/dashboard").status_code == 401
    start = c.get("/dashboard/oauth/login")
    assert start.status_code == 303
    location = httpx.URL(start.headers["location"])
    assert str(location).startswith("https://ghe.test/login/oauth/authorize?")
    assert location.params["client_id"] == "Iv1.client"
    state = location.params["state"]
    done = c.get("/dashboard/oauth/callback", params={"code": "good-code", "state": state})
    assert done.status_code == 303
    page = c.get("/dashboard")
    assert page.status_code == 200
    assert "security/sql-injection" in page.text
    assert "octo/shop" not in page.text
    assert "security/eval" not in page.text
    assert c.get("/dashboard", params={"repo": "octo/shop"}).status_code == 403


def test_github_sign_in_refuses_a_wrong_state_or_code(engine: Engine) -> None:
    c = oauth_client(engine, ["octo/api"])
    c.get("/dashboard/oauth/login")
    assert c.get("/dashboard/oauth/callback", params={"code": "good-code", "state": "forged"}).status_code == 400
    state = httpx.URL(c.get("/dashboard/oauth/login").headers["location"]).params["state"]
    assert c.get("/dashboard/oauth/callback", params={"code": "bad-code", "state": state}).status_code == 400
    assert c.get("/dashboard").status_code == 401


def test_token_sign_in_is_off_when_only_oauth_is_configured(engine: Engine) -> None:
    c = oauth_client(engine, ["octo/api"])
    assert c.post("/dashboard/login", data={"token": TOKEN}).status_code == 401


def test_web_urls() -> None:
    assert web_url("https://api.github.com") == "https://github.com"
    assert web_url("https://ghe.example/api/v3/") == "https://ghe.example"


def test_served_by_diffwise_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "app.dashboard:routes" in PROVIDERS
    monkeypatch.setenv("DIFFWISE_ADMIN_TOKEN", TOKEN)
    paths = {getattr(r, "path", "") for r in collect(Settings.for_tests(), ("app.dashboard:routes",))}
    assert "/dashboard" in paths
    assert json.dumps(sorted(paths))


def test_demoted_rules_are_listed(engine: Engine) -> None:
    from tests.app.test_stats import add_dismissals

    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert 'id="demoted"' not in client(engine).get("/dashboard", headers=auth).text
    add_dismissals(engine, "octo/api", "quality/print", 10)
    page = client(engine).get("/dashboard", headers=auth).text
    assert 'id="demoted"' in page
    assert "<code>quality/print</code>" in page
