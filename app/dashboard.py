"""`/dashboard`: outcome and cost metrics as server-rendered tables and SVG bars, behind an admin token or GitHub."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.dashboard_sessions import SESSION_TTL, StoredSessions
from app.settings import Settings, read_env_file

if TYPE_CHECKING:  # sqlalchemy (via app.stats) and httpx load on the first dashboard request, not at start
    import httpx
    from sqlalchemy import Engine

    from app.stats import Rates, StatsReport

log = logging.getLogger("diffwise.dashboard")

ADMIN_TOKEN_ENV = "DIFFWISE_ADMIN_TOKEN"
MIN_TOKEN_LENGTH = 16
SESSION_COOKIE = "diffwise_dashboard"
STATE_COOKIE = "diffwise_oauth_state"
BASE = "/dashboard"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


# ---- access -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the admin (every repository) or a GitHub user (the repositories they and the App share)."""

    login: str
    repos: frozenset[str] | None  # lower-case full names; None = all

    def may_see(self, repo: str) -> bool:
        return self.repos is None or repo.lower() in self.repos


def admin_token(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> str | None:
    """DIFFWISE_ADMIN_TOKEN from the environment (or `.env`); too short a token counts as none."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(read_env_file(Path(env_file)))
    values.update(os.environ if environ is None else environ)
    token = (values.get(ADMIN_TOKEN_ENV) or "").strip()
    if token and len(token) < MIN_TOKEN_LENGTH:
        log.warning("%s is shorter than %d characters; the dashboard ignores it", ADMIN_TOKEN_ENV, MIN_TOKEN_LENGTH)
        return None
    return token or None


def web_url(api_url: str) -> str:
    """https://api.github.com → https://github.com; https://ghe.example/api/v3 → https://ghe.example."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/api/v3")]
    return base.replace("://api.", "://", 1)


# ---- rendering (pure) ---------------------------------------------------------------------------

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{background:#24292f;color:#fff;padding:12px 24px;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:18px;margin:0}
main{padding:16px 24px;max-width:1150px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;margin:0 0 16px}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2}
th{background:#f6f8fa;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 150px;background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 12px}
.card b{display:block;font-size:20px}
form.filters{display:flex;gap:8px;align-items:center;margin:0 0 16px}
.muted{color:#57606a}
button,select,input{font:inherit;padding:3px 8px}
"""


def _page(title: str, body: str, who: str = "") -> str:
    logout = (
        f'<form method="post" action="{BASE}/logout"><span>{escape(who)}</span> <button>Sign out</button></form>'
        if who
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>diffwise · {escape(title)}</h1>{logout}</header><main>{body}</main></body></html>"
    )


def render_disabled() -> str:
    return _page(
        "dashboard disabled",
        "<section><h2>The dashboard is not enabled</h2><p>It is never open by default. Enable it with either:</p><ul>"
        f"<li><code>{ADMIN_TOKEN_ENV}</code>: a secret of at least {MIN_TOKEN_LENGTH} characters, sent as "
        "<code>Authorization: Bearer &lt;token&gt;</code> or typed into the sign-in form;</li>"
        "<li><code>GITHUB_CLIENT_ID</code> and <code>GITHUB_CLIENT_SECRET</code> of the GitHub App: people sign in "
        "with GitHub and see the repositories they can access.</li></ul></section>",
    )


def render_login(token_login: bool, github_login: bool, error: str = "") -> str:
    parts = ["<section><h2>Sign in</h2>"]
    if error:
        parts.append(f'<p class="muted" role="alert">{escape(error)}</p>')
    if token_login:
        parts.append(
            f'<form method="post" action="{BASE}/login"><label>Admin token '
            '<input type="password" name="token" autocomplete="current-password" required></label> '
            "<button>Sign in</button></form>"
        )
    if github_login:
        parts.append(f'<p><a href="{BASE}/oauth/login">Sign in with GitHub</a></p>')
    parts.append("</section>")
    return _page("sign in", "".join(parts))


def _num(value: object) -> str:
    return f'<td class="n">{escape(str(value))}</td>'


def _rates_rows(groups: Mapping[str, Rates]) -> str:
    from app.stats import pct

    rows = []
    for key, r in groups.items():
        rows.append(
            f"<tr><td><code>{escape(key)}</code></td>{_num(r.posted)}{_num(r.classified)}{_num(r.applied)}"
            f"{_num(r.dismissed)}{_num(r.disputed)}{_num(r.unaddressed)}{_num(pct(r.acceptance_rate))}"
            f"{_num(pct(r.dismissal_rate))}</tr>"
        )
    return "".join(rows)


def _rates_table(title: str, label: str, groups: Mapping[str, Rates], table_id: str) -> str:
    head = (
        f"<tr><th>{escape(label)}</th><th>posted</th><th>classified</th><th>applied</th><th>dismissed</th>"
        "<th>disputed</th><th>unaddressed</th><th>acceptance</th><th>dismissal</th></tr>"
    )
    body = _rates_rows(groups) or '<tr><td colspan="9" class="muted">No findings in this period.</td></tr>'
    return f'<section><h2>{escape(title)}</h2><table id="{table_id}">{head}{body}</table></section>'


def acceptance_bars(groups: Mapping[str, Rates], width: int = 640, row: int = 22) -> str:
    """Per-rule bars: applied (green) and dismissed (red) shares of classified findings."""
    from app.stats import pct

    items = [(k, r) for k, r in groups.items() if r.classified]
    if not items:
        return '<p class="muted">No classified findings yet.</p>'
    label_w, bar_w = 240, width - 300
    height = row * len(items) + 8
    parts = [
        f'<svg id="acceptance-chart" role="img" aria-label="Acceptance by rule" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (key, r) in enumerate(items):
        y = 4 + i * row
        applied = bar_w * r.applied / r.classified
        dismissed = bar_w * r.dismissed / r.classified
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{escape(key)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{bar_w}" height="{row - 6}" fill="#eaeef2"/>'
            f'<rect x="{label_w}" y="{y + 2}" width="{applied:.1f}" height="{row - 6}" fill="#2da44e">'
            f"<title>{escape(key)}: {pct(r.acceptance_rate)} applied</title></rect>"
            f'<rect x="{label_w + bar_w - dismissed:.1f}" y="{y + 2}" width="{dismissed:.1f}" height="{row - 6}" '
            f'fill="#cf222e"><title>{escape(key)}: {pct(r.dismissal_rate)} dismissed</title></rect>'
            f'<text x="{label_w + bar_w + 8}" y="{y + 14}" font-size="12">{pct(r.acceptance_rate)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def cost_bars(report: StatsReport, width: int = 640, height: int = 160) -> str:
    """LLM cost per week as vertical bars."""
    from app.stats import money

    weeks = list(report.by_week)
    if not weeks:
        return '<p class="muted">No reviews in this period.</p>'
    top = max(w.llm_cost_usd for w in weeks) or 1.0
    slot = (width - 20) / len(weeks)
    chart_h = height - 36
    parts = [
        f'<svg id="cost-chart" role="img" aria-label="LLM cost per week" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, w in enumerate(weeks):
        h = chart_h * w.llm_cost_usd / top
        x = 10 + i * slot
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{8 + chart_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'fill="#0969da"><title>week of {escape(w.start)}: {money(w.llm_cost_usd)}</title></rect>'
            f'<text x="{x + slot / 2:.1f}" y="{height - 14}" font-size="11" text-anchor="middle">'
            f"{escape(w.start)}</text>"
            f'<text x="{x + slot / 2:.1f}" y="{height - 2}" font-size="11" text-anchor="middle">'
            f"{money(w.llm_cost_usd)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _filters(repos: Sequence[str], repo: str | None, period: str) -> str:
    from app.stats import PERIODS

    options = ['<option value="">all repositories</option>'] + [
        f'<option value="{escape(r)}"{" selected" if r == repo else ""}>{escape(r)}</option>' for r in repos
    ]
    periods = [
        f'<option value="{p}"{" selected" if p == period else ""}>{"all time" if p == "all" else "last " + p}</option>'
        for p in PERIODS
    ]
    return (
        f'<form class="filters" method="get" action="{BASE}"><label>Repository <select name="repo">'
        f'{"".join(options)}</select></label><label>Period <select name="period">{"".join(periods)}</select></label>'
        "<button>Apply</button></form>"
    )


def _demoted(demoted: Mapping[str, Mapping[str, float]]) -> str:
    from app.stats import pct

    rows = "".join(
        f"<tr><td>{escape(repo)}</td><td><code>{escape(rule)}</code></td>{_num(pct(rate))}</tr>"
        for repo, rules in demoted.items()
        for rule, rate in sorted(rules.items())
    )
    if not rows:
        return ""
    return (
        '<section><h2>Auto-demoted rules</h2><p class="muted">Dismissed too often over enough samples: their '
        "findings go below the comment threshold in that repository unless its policy sets "
        '<code>analyzers.auto_demote: false</code>.</p><table id="demoted"><tr><th>repository</th><th>rule</th>'
        f"<th>dismissal</th></tr>{rows}</table></section>"
    )


def render_dashboard(report: StatsReport, repos: Sequence[str], repo: str | None, period: str, who: str) -> str:
    from app.stats import duration, money, pct

    o = report.overall
    cards = [
        ("PRs reviewed", str(o.prs_reviewed)),
        ("PRs skipped", str(o.prs_skipped)),
        ("findings posted", str(o.rates.posted)),
        ("acceptance", pct(o.rates.acceptance_rate)),
        ("dismissal (false alarms)", pct(o.rates.dismissal_rate)),
        ("comments per PR", "—" if o.comments_per_pr is None else f"{o.comments_per_pr:.1f}"),
        ("open → first review", duration(o.first_review_median_s)),
        ("LLM cost", money(o.llm_cost_usd)),
        ("LLM cost per PR", money(o.cost_per_pr)),
        ("LLM cost per accepted finding", money(o.cost_per_accepted)),
    ]
    card_html = "".join(
        f'<div class="card"><span class="muted">{escape(k)}</span><b>{escape(v)}</b></div>' for k, v in cards
    )
    repo_rows = "".join(
        f"<tr><td>{escape(name)}</td>{_num(s.prs_reviewed)}{_num(s.prs_skipped)}{_num(s.rates.posted)}"
        f"{_num(pct(s.rates.acceptance_rate))}{_num(pct(s.rates.dismissal_rate))}"
        f"{_num('—' if s.comments_per_pr is None else f'{s.comments_per_pr:.1f}')}"
        f"{_num(duration(s.first_review_median_s))}{_num(money(s.llm_cost_usd))}{_num(money(s.cost_per_accepted))}</tr>"
        for name, s in report.by_repo.items()
    )
    week_rows = "".join(
        f"<tr><td>{escape(w.start)}</td>{_num(w.prs_reviewed)}{_num(w.rates.posted)}{_num(w.rates.applied)}"
        f"{_num(w.rates.dismissed)}{_num(pct(w.rates.acceptance_rate))}{_num(money(w.llm_cost_usd))}</tr>"
        for w in report.by_week
    )
    body = (
        _filters(repos, repo, period)
        + f'<section><div class="cards" id="overview">{card_html}</div></section>'
        + '<section><h2>Per repository</h2><table id="repos"><tr><th>repository</th><th>PRs reviewed</th>'
        "<th>skipped</th><th>findings</th><th>acceptance</th><th>dismissal</th><th>comments/PR</th>"
        f"<th>first review</th><th>LLM cost</th><th>cost/accepted</th></tr>{repo_rows}</table></section>"
        + f"<section><h2>Acceptance by rule</h2>{acceptance_bars(report.by_rule)}</section>"
        + _rates_table("Per rule", "rule", report.by_rule, "rules")
        + _rates_table("Analyzer vs LLM", "source", report.by_source, "sources")
        + _rates_table("Per analyzer", "analyzer", report.by_analyzer, "analyzers")
        + _demoted(report.demoted)
        + f"<section><h2>LLM cost over time</h2>{cost_bars(report)}"
        '<table id="weeks"><tr><th>week</th><th>PRs reviewed</th><th>findings</th><th>applied</th>'
        f"<th>dismissed</th><th>acceptance</th><th>LLM cost</th></tr>{week_rows}</table></section>"
    )
    return _page("outcomes", body, who)


# ---- the web routes -----------------------------------------------------------------------------


class Dashboard:
    """Routes under /dashboard. Neither an admin token nor OAuth configured → every page is a 404."""

    def __init__(
        self,
        settings: Settings,
        *,
        token: str | None = None,
        engine: Engine | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.token = token
        self.client_id = settings.github_client_id
        self.client_secret = settings.github_client_secret
        self._engine = engine
        self.transport = transport
        self.clock = clock
        self.sessions = StoredSessions(lambda: self.engine, clock=clock)

    @property
    def oauth(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def enabled(self) -> bool:
        return bool(self.token) or self.oauth

    @property
    def engine(self) -> Engine:
        from app.outcome_store import OutcomeStore

        if self._engine is None:
            self._engine = OutcomeStore.from_settings(self.settings).engine
        return self._engine

    def routes(self) -> list[BaseRoute]:
        return [
            Route(BASE, self.page, methods=["GET"]),
            Route(f"{BASE}/login", self.login, methods=["POST"]),
            Route(f"{BASE}/logout", self.logout, methods=["POST"]),
            Route(f"{BASE}/oauth/login", self.oauth_login, methods=["GET"]),
            Route(f"{BASE}/oauth/callback", self.oauth_callback, methods=["GET"]),
        ]

    # ---- helpers -------------------------------------------------------------------------------
    def _html(self, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def _disabled(self) -> HTMLResponse:
        return self._html(render_disabled(), 404)

    def _login_page(self, error: str = "", status: int = 401) -> HTMLResponse:
        return self._html(render_login(bool(self.token), self.oauth, error), status)

    def _token_ok(self, candidate: str | None) -> bool:
        return bool(self.token and candidate) and hmac.compare_digest(
            str(candidate).encode("utf-8"), str(self.token).encode("utf-8")
        )

    def viewer(self, request: Request) -> Viewer | None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and self._token_ok(credential.strip()):
            return Viewer("admin", None)
        found = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        return None if found is None else Viewer(found.login, found.repos)

    def _with_session(self, response: Response, request: Request, viewer: Viewer) -> Response:
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.create(viewer.login, viewer.repos),
            max_age=SESSION_TTL,
            path=BASE,
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="lax",  # Strict would drop it on the redirect chain that starts at GitHub's sign-in
        )
        return response

    # ---- pages ---------------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        if not self.enabled:
            return self._disabled()
        viewer = self.viewer(request)
        if viewer is None:
            return self._login_page()
        from app.stats import PERIODS

        period = request.query_params.get("period") or "all"
        if period not in PERIODS:
            period = "all"
        repo = (request.query_params.get("repo") or "").strip().lower() or None
        if repo is not None and not viewer.may_see(repo):
            return self._html(_page("not allowed", "<section>You cannot see that repository.</section>"), 403)
        report, repos = self.report(viewer, repo, period)
        return self._html(render_dashboard(report, repos, repo, period, viewer.login))

    def report(self, viewer: Viewer, repo: str | None, period: str) -> tuple[StatsReport, list[str]]:
        from app.outcome_store import OutcomeStore
        from app.stats import build_report, load_closures, load_costs, load_reviews, since_for

        since = since_for(period, self.clock())
        engine = self.engine
        outcomes = OutcomeStore(engine).rows(repo, since)
        reviews = load_reviews(engine, repo, since)
        costs = load_costs(engine, repo, since)
        outcomes = [o for o in outcomes if viewer.may_see(o.repo)]
        reviews = [r for r in reviews if viewer.may_see(r.repo)]
        costs = [c for c in costs if c.repo and viewer.may_see(c.repo)]
        known = set(OutcomeStore(engine).repos()) | {r.repo for r in load_reviews(engine)}
        repos = sorted(r for r in known if viewer.may_see(r))
        from app.demotion import demoted_rules

        closures = [c for c in load_closures(engine, repo, since) if viewer.may_see(c.repo)]
        report = build_report(outcomes, reviews, costs, repo, since, closures)
        demoted = {name: demoted_rules(engine, name) for name in report.by_repo}
        return replace(report, demoted={name: rules for name, rules in demoted.items() if rules}), repos

    async def login(self, request: Request) -> Response:
        if not self.enabled:
            return self._disabled()
        if not self.token:
            return self._login_page("Token sign-in is not configured; sign in with GitHub.")
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if not self._token_ok((form.get("token") or [""])[0]):
            log.warning("dashboard: a sign-in with a wrong admin token from %s", request.client)
            return self._login_page("That token is not right.")
        return self._with_session(RedirectResponse(BASE, status_code=303), request, Viewer("admin", None))

    async def logout(self, request: Request) -> Response:
        if not self.enabled:
            return self._disabled()
        self.sessions.drop(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(BASE, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=BASE)
        return response

    # ---- GitHub OAuth (the App's user authorization) -------------------------------------------
    async def oauth_login(self, request: Request) -> Response:
        if not self.oauth:
            return self._disabled()
        state = secrets.token_urlsafe(24)
        query = urlencode(
            {"client_id": self.client_id, "state": state, "redirect_uri": str(request.url_for("oauth_callback"))}
        )
        response = RedirectResponse(f"{web_url(self.settings.github_api_url)}/login/oauth/authorize?{query}", 303)
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=600,
            path=BASE,
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="lax",
        )
        return response

    async def oauth_callback(self, request: Request) -> Response:
        import httpx

        if not self.oauth:
            return self._disabled()
        state, expected = request.query_params.get("state", ""), request.cookies.get(STATE_COOKIE, "")
        code = request.query_params.get("code", "")
        if not code or not expected or not hmac.compare_digest(state.encode(), expected.encode()):
            return self._login_page("The GitHub sign-in could not be verified; try again.", 400)
        try:
            viewer = await self._github_viewer(code)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("dashboard: GitHub sign-in failed: %s", exc.__class__.__name__)
            return self._login_page("GitHub did not confirm the sign-in; try again.", 400)
        response = self._with_session(RedirectResponse(BASE, status_code=303), request, viewer)
        response.delete_cookie(STATE_COOKIE, path=BASE)
        return response

    async def _github_viewer(self, code: str) -> Viewer:
        """Exchange the code for a user token; the repos are those the user and the App's installations share."""
        import httpx

        async with httpx.AsyncClient(transport=self.transport, timeout=15) as client:
            answer = await client.post(
                f"{web_url(self.settings.github_api_url)}/login/oauth/access_token",
                data={"client_id": self.client_id, "client_secret": self.client_secret, "code": code},
                headers={"Accept": "application/json"},
            )
            answer.raise_for_status()
            token = answer.json().get("access_token")
            if not token:
                raise ValueError("no access token")
            api = self.settings.github_api_url.rstrip("/")
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
            user = (await client.get(f"{api}/user", headers=headers)).raise_for_status().json()
            repos: set[str] = set()
            for installation in await _pages(client, f"{api}/user/installations", headers, "installations"):
                url = f"{api}/user/installations/{int(installation['id'])}/repositories"
                repos.update(str(r["full_name"]).lower() for r in await _pages(client, url, headers, "repositories"))
        return Viewer(str(user["login"]), frozenset(repos))


async def _pages(client: httpx.AsyncClient, url: str, headers: Mapping[str, str], key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in range(1, 31):
        response = (
            await client.get(url, headers=dict(headers), params={"per_page": 100, "page": page})
        ).raise_for_status()
        chunk: Iterable[dict[str, Any]] = response.json().get(key) or []
        chunk = list(chunk)
        items.extend(chunk)
        if len(chunk) < 100:
            break
    return items


def routes(settings: Settings) -> list[BaseRoute]:
    """The web_routes provider: the dashboard's routes (404s unless an admin token or OAuth is configured)."""
    return Dashboard(settings, token=admin_token()).routes()
