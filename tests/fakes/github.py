"""A faithful loopback fake of GitHub's REST API (plus a small GraphQL subset), for unit and end-to-end tests.

State lives in plain Python objects; tests seed it, run code against it, and inspect what it received.

Seeding::

    fake = FakeGitHub(app_id=1, public_key=keys.public_pem)    # prefix="/api/v3" to look like GHES
    repo = fake.add_repo("octo", "hello", installation_id=7)   # default_branch="main"
    fake.set_file(repo, "main", ".github/diffwise.yml", "llm:\\n  enabled: false\\n")
    pr = fake.add_pull(repo, 1, base={"a.py": "x = 1\\n"}, head={"a.py": "x = 2\\n"}, title="t", author="dev")
    repo.collaborators["dev"] = "write"
    fake.add_issue_comment(repo, 1, "/diffwise help", user="dev")
    root = fake.add_review_comment(repo, 1, "finding", path="a.py", line=1)   # the bot's, by default
    fake.add_review_comment(repo, 1, "thanks", path="a.py", line=1, user="dev", in_reply_to=root["id"])
    fake.add_reaction(repo, "pull_request_review_comment", root["id"], "-1", user="dev")
    fake.push(repo, 1, {"a.py": "x = 3\n"})                    # a new head commit (what `synchronize` says)
    fake.fail_next(2, status=502)                               # fault injection for the next N requests
    fake.fail_next(1, status=403, retry_after=3, secondary=True)

Serving: `fake.transport()` is an httpx ASGI transport (async clients, unit tests); `serve_fake(fake)` is a
context manager running it with uvicorn on 127.0.0.1:<free port> and yielding the base URL.

Inspecting: `fake.requests` (every request: method, path, query, headers, json), `fake.count(method,
path_regex)`, `repo.reviews`, `repo.review_comments`, `repo.issue_comments`, `repo.reactions`,
`repo.check_runs`, `fake.graphql_calls`, `fake.tokens`, `fake.pending_comments` (of PENDING reviews).

Endpoints (GitHub's shapes, trimmed): App JWT (RS256, iss=app id, exp ≤ 10 min) on /app/... (app,
installations, tokens, hook deliveries); /installation/repositories; installation
tokens with expires_at, required on repo endpoints (401 otherwise, 404 for repos outside the installation);
repo JSON; pull JSON and the diff media type (406 over 300 files); /pulls/{n}/files paginated with Link
(3,000 files max); contents API (JSON/base64, raw media type; 1 MB JSON cap like GitHub); reviews (422 with
GitHub's error for a comment outside the diff, or a body over 65,536 characters; PENDING reviews without an
event, one per PR, deletable and submittable); review comments list/create
(with in_reply_to)/edit/delete; issue comments CRUD; reactions; check runs create/update/list (≤ 50
annotations per request); compare; collaborator permission; GraphQL resolveReviewThread/minimizeComment;
app hook deliveries list/redeliver.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import difflib
import functools
import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DIFF_FILE_LIMIT = 300
FILES_API_LIMIT = 3000
CONTENTS_JSON_LIMIT = 1_000_000
ANNOTATIONS_PER_REQUEST = 50
BODY_LIMIT = 65_536
BOT_LOGIN = "diffwise[bot]"
DOCS = "https://docs.github.com/rest"


# ---- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppKeys:
    private_pem: str
    public_pem: str


@functools.cache
def shared_app_keys() -> AppKeys:
    """One key pair per test process (RSA generation costs ~50 ms)."""
    return generate_app_keys()


def generate_app_keys() -> AppKeys:
    """A fresh RSA key pair for a test App (the private half goes into Settings, the public into the fake)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return AppKeys(private, public)


# ---- state ------------------------------------------------------------------------------------


@dataclass
class FakePull:
    number: int
    title: str
    body: str
    author: str
    base_ref: str
    head_ref: str
    base_sha: str
    head_sha: str
    state: str = "open"
    draft: bool = False
    merged: bool = False
    labels: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)  # GitHub's /files items, with `patch`


@dataclass
class FakeRepo:
    owner: str
    name: str
    id: int
    installation_id: int
    default_branch: str = "main"
    private: bool = False
    refs: dict[str, str] = field(default_factory=dict)  # branch → sha
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha → {path: content}
    pulls: dict[int, FakePull] = field(default_factory=dict)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    review_comments: list[dict[str, Any]] = field(default_factory=list)
    issue_comments: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[dict[str, Any]] = field(default_factory=list)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    collaborators: dict[str, str] = field(default_factory=dict)  # login → admin|maintain|write|triage|read

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def tree(self, ref: str) -> dict[str, bytes] | None:
        sha = self.refs.get(ref, ref)
        return self.trees.get(sha)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the API prefix
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class Fault:
    remaining: int
    status: int
    retry_after: int | None = None
    secondary: bool = False
    path: str | None = None  # regex; None = any request
    delay: float = 0.0  # seconds to wait before answering (a slow or hanging GitHub)


@dataclass
class Delivery:
    id: int
    guid: str
    event: str
    action: str | None
    status_code: int = 200
    redelivery: bool = False


def tarball(files: dict[str, bytes], *, top: str | None = None) -> bytes:
    """A gzipped tar of `files` under one top-level directory, as GitHub's archive host serves a commit."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _sha(material: str) -> str:
    import hashlib

    return hashlib.sha1(material.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def file_patch(old: bytes | None, new: bytes | None) -> str | None:
    """GitHub's per-file `patch`: unified hunks (3 lines of context) without the ---/+++ header."""
    if (old is not None and b"\0" in old) or (new is not None and b"\0" in new):
        return None
    a = (old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    b = (new or b"").decode("utf-8", "replace").splitlines(keepends=True)
    lines: list[str] = []
    for line in itertools.islice(difflib.unified_diff(a, b, n=3), 2, None):
        if line.endswith("\n"):
            lines.append(line)
        else:
            lines.append(line + "\n\\ No newline at end of file\n")
    return "".join(lines).rstrip("\n") if lines else ""


def commentable_lines(patch: str) -> list[tuple[set[int], set[int]]]:
    """Per hunk: (RIGHT lines, LEFT lines) that GitHub accepts review comments on."""
    hunks: list[tuple[set[int], set[int]]] = []
    old = new = 0
    for line in patch.splitlines():
        m = re.match(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@", line)
        if m:
            old, new = int(m.group(1)), int(m.group(2))
            hunks.append((set(), set()))
            continue
        if not hunks or line.startswith("\\"):
            continue
        right, left = hunks[-1]
        if line.startswith("+"):
            right.add(new)
            new += 1
        elif line.startswith("-"):
            left.add(old)
            old += 1
        else:
            right.add(new)
            left.add(old)
            new += 1
            old += 1
    return hunks


# ---- the fake ---------------------------------------------------------------------------------


Handler = Callable[..., Awaitable[Response]]


class FakeGitHub:
    """GitHub's REST API as plain Python state behind a Starlette app. See the module docstring."""

    def __init__(self, app_id: int | str, public_key: str, *, prefix: str = "", token_ttl: int = 3600) -> None:
        self.app_id = str(app_id)
        self.public_key = public_key
        self.prefix = prefix.rstrip("/")
        self.token_ttl = token_ttl
        self.app_slug = "diffwise"
        self.repos: dict[str, FakeRepo] = {}
        self.tokens: dict[str, tuple[int, datetime]] = {}  # token → (installation id, expires)
        self.requests: list[RecordedRequest] = []
        self.graphql_calls: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        self.redelivered: list[int] = []
        self.faults: list[Fault] = []
        self.pending_comments: dict[int, list[dict[str, Any]]] = {}  # PENDING review id → its comments
        self.archive_tokens: dict[str, str] = {}  # one-time archive-host token → "owner/repo/sha"
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._register()
        self.app = Starlette(
            routes=[Route("/{path:path}", self._dispatch, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])]
        )

    # ---- seeding --------------------------------------------------------------------------
    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def add_repo(
        self, owner: str, name: str, *, installation_id: int = 1, default_branch: str = "main", private: bool = False
    ) -> FakeRepo:
        repo = FakeRepo(owner, name, self.next_id(), installation_id, default_branch, private)
        repo.trees[_sha(f"{owner}/{name}:empty")] = {}
        repo.refs[default_branch] = _sha(f"{owner}/{name}:empty")
        self.repos[repo.full_name.lower()] = repo
        return repo

    def commit(self, repo: FakeRepo, branch: str, files: dict[str, str | bytes | None]) -> str:
        """Apply `files` (None deletes) on top of `branch` (or the default branch) as a new commit."""
        base = dict(repo.tree(branch) or repo.tree(repo.default_branch) or {})
        for path, content in files.items():
            if content is None:
                base.pop(path, None)
            else:
                base[path] = content.encode() if isinstance(content, str) else content
        sha = _sha(f"{repo.full_name}:{branch}:{sorted(base.items())!r}:{self.next_id()}")
        repo.trees[sha] = base
        repo.refs[branch] = sha
        return sha

    def set_file(self, repo: FakeRepo, ref: str, path: str, content: str | bytes | None) -> str:
        """Write one file on a branch (a new commit); returns the new head sha of that branch."""
        return self.commit(repo, ref, {path: content})

    def add_pull(
        self,
        repo: FakeRepo,
        number: int,
        *,
        base: dict[str, str | bytes] | None = None,
        head: dict[str, str | bytes | None] | None = None,
        title: str = "A change",
        body: str = "",
        author: str = "octocat",
        draft: bool = False,
        state: str = "open",
        base_ref: str | None = None,
        head_ref: str | None = None,
        labels: list[str] | None = None,
    ) -> FakePull:
        """A PR whose base branch holds `base` and whose head adds `head` on top (None deletes a file)."""
        base_ref = base_ref or repo.default_branch
        head_ref = head_ref or f"feature-{number}"
        base_sha = self.commit(repo, base_ref, dict(base or {})) if base else repo.refs[base_ref]
        base_tree = repo.trees[base_sha]
        repo.refs[head_ref] = base_sha
        head_sha = self.commit(repo, head_ref, dict(head or {}))
        pull = FakePull(number, title, body, author, base_ref, head_ref, base_sha, head_sha, state, draft)
        pull.labels = list(labels or [])
        pull.files = self._files_between(base_tree, repo.trees[head_sha])
        repo.pulls[number] = pull
        return pull

    def push(self, repo: FakeRepo, number: int, files: dict[str, str | bytes | None]) -> str:
        """A new commit on the PR's head branch (what `synchronize` reports); returns the new head sha."""
        pull = repo.pulls[number]
        pull.head_sha = self.commit(repo, pull.head_ref, files)
        pull.files = self._files_between(repo.trees[pull.base_sha], repo.trees[pull.head_sha])
        return pull.head_sha

    def add_delivery(self, guid: str, event: str, action: str | None = None, status_code: int = 200) -> Delivery:
        delivery = Delivery(self.next_id(), guid, event, action, status_code)
        self.deliveries.append(delivery)
        return delivery

    def fail_next(
        self,
        count: int,
        *,
        status: int = 502,
        retry_after: int | None = None,
        secondary: bool = False,
        path: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `count` matching requests with `status` (403+secondary, 429, 5xx...) after `delay` s.

        `status=200` with a delay makes the requests slow but otherwise normal (client timeouts).
        """
        self.faults.append(Fault(count, status, retry_after, secondary, path, delay))

    # ---- inspecting -----------------------------------------------------------------------
    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and (path is None or re.search(path, r.path))
        )

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name.lower()]

    # ---- serving --------------------------------------------------------------------------
    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    def base_url(self, root: str = "http://github.test") -> str:
        return root.rstrip("/") + self.prefix

    # ---- dispatch -------------------------------------------------------------------------
    def _register(self) -> None:
        R = self._route
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        R("GET", r"/app", "jwt", self._get_app)
        R("POST", r"/app/installations/(?P<iid>\d+)/access_tokens", "jwt", self._create_token)
        R("GET", repo + r"/installation", "jwt", self._repo_installation)
        R("GET", r"/app/hook/deliveries", "jwt", self._list_deliveries)
        R("POST", r"/app/hook/deliveries/(?P<did>\d+)/attempts", "jwt", self._redeliver)
        R("GET", r"/app/installations", "jwt", self._list_installations)
        R("GET", r"/installation/repositories", "token", self._installation_repos)
        R("GET", repo, "token", self._get_repo)
        R("GET", repo + r"/pulls/(?P<n>\d+)", "token", self._get_pull)
        R("GET", repo + r"/pulls/(?P<n>\d+)/files", "token", self._pull_files)
        R("GET", repo + r"/pulls/(?P<n>\d+)/reviews", "token", self._list_reviews)
        R("POST", repo + r"/pulls/(?P<n>\d+)/reviews", "token", self._create_review)
        R("GET", repo + r"/pulls/(?P<n>\d+)/reviews/(?P<rid>\d+)", "token", self._get_review)
        R("DELETE", repo + r"/pulls/(?P<n>\d+)/reviews/(?P<rid>\d+)", "token", self._delete_review)
        R("POST", repo + r"/pulls/(?P<n>\d+)/reviews/(?P<rid>\d+)/events", "token", self._submit_review)
        R("GET", repo + r"/pulls/(?P<n>\d+)/comments", "token", self._list_review_comments)
        R("POST", repo + r"/pulls/(?P<n>\d+)/comments", "token", self._create_review_comment)
        R("PATCH", repo + r"/pulls/comments/(?P<cid>\d+)", "token", self._edit_review_comment)
        R("DELETE", repo + r"/pulls/comments/(?P<cid>\d+)", "token", self._delete_review_comment)
        R("POST", repo + r"/pulls/comments/(?P<cid>\d+)/reactions", "token", self._react_review_comment)
        R("GET", repo + r"/issues/(?P<n>\d+)/comments", "token", self._list_issue_comments)
        R("POST", repo + r"/issues/(?P<n>\d+)/comments", "token", self._create_issue_comment)
        R("GET", repo + r"/issues/comments/(?P<cid>\d+)", "token", self._get_issue_comment)
        R("PATCH", repo + r"/issues/comments/(?P<cid>\d+)", "token", self._edit_issue_comment)
        R("DELETE", repo + r"/issues/comments/(?P<cid>\d+)", "token", self._delete_issue_comment)
        R("POST", repo + r"/issues/comments/(?P<cid>\d+)/reactions", "token", self._react_issue_comment)
        R("POST", repo + r"/issues/(?P<n>\d+)/reactions", "token", self._react_issue)
        R("GET", repo + r"/contents/(?P<path>.+)", "token", self._get_contents)
        R("GET", repo + r"/tarball/(?P<ref>[^/]+)", "token", self._tarball)
        R("GET", r"/_codeload/(?P<token>[^/]+)/legacy\.tar\.gz", "none", self._codeload)
        R("GET", repo + r"/compare/(?P<base>.+)\.\.\.(?P<head>[^/]+)", "token", self._compare)
        R("GET", repo + r"/collaborators/(?P<user>[^/]+)/permission", "token", self._permission)
        R("POST", repo + r"/check-runs", "token", self._create_check_run)
        R("PATCH", repo + r"/check-runs/(?P<rid>\d+)", "token", self._update_check_run)
        R("GET", repo + r"/commits/(?P<ref>[^/]+)/check-runs", "token", self._list_check_runs)
        R("POST", r"/graphql", "token", self._graphql)

    def _route(self, method: str, pattern: str, auth: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern + r"/?$"), auth, handler))

    async def _dispatch(self, request: Request) -> Response:
        raw_path = "/" + request.path_params["path"]
        path = raw_path
        if self.prefix:
            graphql_prefix = self.prefix.rsplit("/", 1)[0]  # GHES: /api/v3 → /api/graphql
            if raw_path == graphql_prefix + "/graphql":
                path = "/graphql"
            elif raw_path.startswith(self.prefix + "/"):
                path = raw_path[len(self.prefix) :]
            else:
                return _error(404, "Not Found")
        body = await request.body()
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return _error(400, "Problems parsing JSON")
        self.requests.append(
            RecordedRequest(request.method, path, dict(request.query_params), dict(request.headers), payload)
        )
        fault = self._take_fault(path)
        if fault is not None:
            delay, response = fault
            if delay:
                await asyncio.sleep(delay)
            if response is not None:
                return response
        for method, pattern, auth, handler in self._routes:
            m = pattern.match(path)
            if m is None or method != request.method:
                continue
            params = m.groupdict()
            denied = self._authorize(request, auth, params)
            if denied is not None:
                return denied
            return await handler(request, payload, **params)
        return _error(404, "Not Found")

    def _take_fault(self, path: str) -> tuple[float, Response | None] | None:
        with self._lock:
            for fault in self.faults:
                if fault.remaining > 0 and (fault.path is None or re.search(fault.path, path)):
                    fault.remaining -= 1
                    break
            else:
                return None
        return fault.delay, (None if fault.status < 400 else self._fault_response(fault))

    def _fault_response(self, fault: Fault) -> Response:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.status in (403, 429) and fault.secondary:
            message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        elif fault.status in (403, 429):
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Reset"] = str(int(time.time()) + (fault.retry_after or 60))
            message = "API rate limit exceeded for installation."
        elif fault.status >= 500:
            return Response("<html>Bad Gateway</html>", status_code=fault.status, headers=headers)
        else:
            message = "Injected failure"
        return _error(fault.status, message, headers=headers)

    def _authorize(self, request: Request, kind: str, params: dict[str, str]) -> Response | None:
        if kind == "none":
            return None  # the archive host: the signed URL is the credential
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if kind == "jwt":
            if scheme.lower() != "bearer":
                return _error(401, "A JSON web token could not be decoded")
            try:
                claims = jwt.decode(
                    credential, self.public_key, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]}
                )
            except jwt.PyJWTError as exc:
                return _error(401, f"A JSON web token could not be decoded ({exc})")
            if str(claims["iss"]) != self.app_id:
                return _error(401, "'Issuer' claim ('iss') must be an Integer")
            if claims["exp"] - claims["iat"] > 600:
                return _error(401, "'Expiration time' claim ('exp') is too far in the future")
            return None
        if scheme.lower() not in ("token", "bearer") or credential not in self.tokens:
            return _error(401, "Bad credentials")
        installation_id, expires = self.tokens[credential]
        if expires <= _now():
            return _error(401, "Bad credentials")
        if "owner" in params:
            repo = self.repos.get(f"{params['owner']}/{params['repo']}".lower())
            if repo is None or repo.installation_id != installation_id:
                return _error(404, "Not Found")
        return None

    def _repo(self, owner: str, repo: str) -> FakeRepo:
        return self.repos[f"{owner}/{repo}".lower()]

    def _pull(self, owner: str, repo: str, n: str) -> tuple[FakeRepo, FakePull | None]:
        r = self._repo(owner, repo)
        return r, r.pulls.get(int(n))

    def _url(self, request: Request, path: str) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{self.prefix}{path}"

    # ---- JSON shapes ----------------------------------------------------------------------
    def _user(self, login: str) -> dict[str, Any]:
        bot = login.endswith("[bot]")
        return {"login": login, "id": abs(hash(login)) % 10**8, "type": "Bot" if bot else "User"}

    def _repo_json(self, r: FakeRepo) -> dict[str, Any]:
        return {
            "id": r.id,
            "name": r.name,
            "full_name": r.full_name,
            "private": r.private,
            "owner": self._user(r.owner) | {"type": "Organization"},
            "default_branch": r.default_branch,
            "html_url": f"https://github.test/{r.full_name}",
        }

    def _pull_json(self, r: FakeRepo, p: FakePull) -> dict[str, Any]:
        return {
            "number": p.number,
            "id": r.id * 1000 + p.number,
            "state": p.state,
            "draft": p.draft,
            "merged": p.merged,
            "title": p.title,
            "body": p.body or None,
            "user": self._user(p.author),
            "labels": [{"name": name} for name in p.labels],
            "head": {"ref": p.head_ref, "sha": p.head_sha, "repo": self._repo_json(r), "label": f"{r.owner}:x"},
            "base": {"ref": p.base_ref, "sha": p.base_sha, "repo": self._repo_json(r), "label": f"{r.owner}:y"},
            "changed_files": len(p.files),
            "additions": sum(f["additions"] for f in p.files),
            "deletions": sum(f["deletions"] for f in p.files),
            "html_url": f"https://github.test/{r.full_name}/pull/{p.number}",
        }

    def _files_between(self, old: dict[str, bytes], new: dict[str, bytes]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for path in sorted(set(old) | set(new)):
            a, b = old.get(path), new.get(path)
            if a == b:
                continue
            status = "added" if a is None else "removed" if b is None else "modified"
            patch = file_patch(a, b)
            adds = sum(1 for ln in (patch or "").splitlines() if ln.startswith("+"))
            dels = sum(1 for ln in (patch or "").splitlines() if ln.startswith("-"))
            item: dict[str, Any] = {
                "sha": _sha(repr(b)),
                "filename": path,
                "status": status,
                "additions": adds,
                "deletions": dels,
                "changes": adds + dels,
            }
            if patch is not None:
                item["patch"] = patch
            items.append(item)
        return items

    # ---- handlers: app --------------------------------------------------------------------
    async def _get_app(self, request: Request, body: Any) -> Response:
        return JSONResponse({"id": int(self.app_id), "slug": self.app_slug, "name": "diffwise"})

    async def _create_token(self, request: Request, body: Any, iid: str) -> Response:
        installation_id = int(iid)
        if not any(r.installation_id == installation_id for r in self.repos.values()):
            return _error(404, "Not Found")
        token = "ghs_" + secrets.token_hex(16)
        expires = _now() + timedelta(seconds=self.token_ttl)
        self.tokens[token] = (installation_id, expires)
        payload = {
            "token": token,
            "expires_at": _iso(expires),
            "permissions": {"pull_requests": "write", "contents": "read", "checks": "write"},
            "repository_selection": "all",
        }
        return JSONResponse(payload, status_code=201)

    async def _repo_installation(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        r = self.repos.get(f"{owner}/{repo}".lower())
        if r is None:
            return _error(404, "Not Found")
        return JSONResponse({"id": r.installation_id, "app_id": int(self.app_id)})

    async def _list_installations(self, request: Request, body: Any) -> Response:
        ids = sorted({r.installation_id for r in self.repos.values()})
        owners = {r.installation_id: r.owner for r in self.repos.values()}
        return self._paginate(
            request, [{"id": i, "app_id": int(self.app_id), "account": self._user(owners[i])} for i in ids]
        )

    async def _installation_repos(self, request: Request, body: Any) -> Response:
        installation_id, _ = self.tokens[request.headers["authorization"].partition(" ")[2]]
        repos = [self._repo_json(r) for r in self.repos.values() if r.installation_id == installation_id]
        return JSONResponse({"total_count": len(repos), "repositories": repos})

    async def _list_deliveries(self, request: Request, body: Any) -> Response:
        items = [
            {
                "id": d.id,
                "guid": d.guid,
                "event": d.event,
                "action": d.action,
                "status_code": d.status_code,
                "status": "OK" if d.status_code < 400 else "Failed",
                "redelivery": d.redelivery,
                "delivered_at": _iso(_now()),
                "duration": 0.1,
                "installation_id": None,
                "repository_id": None,
            }
            for d in reversed(self.deliveries)
        ]
        return JSONResponse(items)

    async def _redeliver(self, request: Request, body: Any, did: str) -> Response:
        if not any(d.id == int(did) for d in self.deliveries):
            return _error(404, "Not Found")
        self.redelivered.append(int(did))
        return JSONResponse({}, status_code=202)

    # ---- handlers: repo and pulls ---------------------------------------------------------
    async def _get_repo(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        return JSONResponse(self._repo_json(self._repo(owner, repo)))

    async def _get_pull(self, request: Request, body: Any, owner: str, repo: str, n: str) -> Response:
        r, p = self._pull(owner, repo, n)
        if p is None:
            return _error(404, "Not Found")
        accept = request.headers.get("accept", "")
        if ".diff" in accept or ".patch" in accept:
            if len(p.files) > DIFF_FILE_LIMIT:
                return _error(
                    406,
                    "Sorry, the diff exceeded the maximum number of files (300). Consider using 'List pull "
                    "requests files' API or locally cloning the repository instead.",
                    errors=[{"resource": "PullRequest", "field": "diff", "code": "too_large"}],
                )
            return Response(self._diff_text(p), media_type="text/plain; charset=utf-8")
        return JSONResponse(self._pull_json(r, p), headers={"Cache-Control": "private, max-age=60, s-maxage=60"})

    def _diff_text(self, p: FakePull) -> str:
        parts: list[str] = []
        for f in p.files:
            path = f["filename"]
            parts.append(f"diff --git a/{path} b/{path}\n")
            if f["status"] == "added":
                parts.append("new file mode 100644\n")
            elif f["status"] == "removed":
                parts.append("deleted file mode 100644\n")
            if "patch" not in f:
                parts.append(f"Binary files a/{path} and b/{path} differ\n")
                continue
            src = "/dev/null" if f["status"] == "added" else f"a/{path}"
            dst = "/dev/null" if f["status"] == "removed" else f"b/{path}"
            parts.append(f"--- {src}\n+++ {dst}\n{f['patch']}\n")
        return "".join(parts)

    async def _pull_files(self, request: Request, body: Any, owner: str, repo: str, n: str) -> Response:
        _r, p = self._pull(owner, repo, n)
        if p is None:
            return _error(404, "Not Found")
        return self._paginate(request, p.files[:FILES_API_LIMIT])

    def _paginate(self, request: Request, items: list[Any]) -> Response:
        per_page = max(1, min(100, int(request.query_params.get("per_page", 30))))
        page = max(1, int(request.query_params.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        base = self._url(request, request.url.path[len(self.prefix) :])

        def link(pg: int, rel: str) -> str:
            query = dict(request.query_params) | {"per_page": str(per_page), "page": str(pg)}
            return f'<{base}?{urlencode(query)}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return JSONResponse(chunk, headers=headers)

    async def _list_reviews(self, request: Request, body: Any, owner: str, repo: str, n: str) -> Response:
        r = self._repo(owner, repo)
        return self._paginate(request, [rv for rv in r.reviews if rv["pull_number"] == int(n)])

    def _check_comment_position(self, p: FakePull, c: dict[str, Any]) -> str | None:
        path, line = c.get("path"), c.get("line")
        side = c.get("side") or "RIGHT"
        start_line = c.get("start_line")
        start_side = c.get("start_side") or side
        item = next((f for f in p.files if f["filename"] == path), None)
        if item is None or "patch" not in item or not isinstance(line, int):
            return "Pull request review thread path is invalid" if item is None else "line must be part of the diff"
        hunks = commentable_lines(item["patch"])
        index = 0 if side == "RIGHT" else 1
        hunk = next((h for h in hunks if line in h[index]), None)
        if hunk is None:
            return "line must be part of the diff"
        if start_line is not None:
            if not isinstance(start_line, int) or start_line >= line:
                return "start_line must precede the end line"
            if start_line not in hunk[0 if start_side == "RIGHT" else 1]:
                return "start_line must be part of the same hunk as the line."
        return None

    async def _create_review(self, request: Request, body: Any, owner: str, repo: str, n: str) -> Response:
        r, p = self._pull(owner, repo, n)
        if p is None:
            return _error(404, "Not Found")
        body = body or {}
        event = body.get("event")
        if event not in (None, "COMMENT", "APPROVE", "REQUEST_CHANGES"):
            return _error(422, "Unprocessable Entity", errors=[f"Invalid event {event!r}"])
        if len(body.get("body") or "") > BODY_LIMIT:
            return _error(422, "Unprocessable Entity", errors=["Body is too long (maximum is 65536 characters)"])
        if event in ("COMMENT", "REQUEST_CHANGES") and not body.get("body") and not body.get("comments"):
            return _error(422, "Unprocessable Entity", errors=["Review Body can't be blank"])
        comments = list(body.get("comments") or [])
        for c in comments:
            if self._check_comment_position(p, c) is not None:
                return _error(
                    422, "Unprocessable Entity", errors=["Pull request review thread line must be part of the diff"]
                )
            if len(c.get("body") or "") > BODY_LIMIT:
                return _error(422, "Unprocessable Entity", errors=["Body is too long (maximum is 65536 characters)"])
        review_id = self.next_id()
        state = {"COMMENT": "COMMENTED", "APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}
        review = {
            "id": review_id,
            "node_id": f"PRR_{review_id}",
            "pull_number": p.number,
            "user": self._user(BOT_LOGIN),
            "body": body.get("body") or "",
            "state": state.get(event or "", "PENDING"),
            "event": event,
            "commit_id": body.get("commit_id") or p.head_sha,
            "submitted_at": _iso(_now()),
            "html_url": f"https://github.test/{r.full_name}/pull/{p.number}#pullrequestreview-{review_id}",
        }
        if event is None:
            if any(rv["state"] == "PENDING" and rv["pull_number"] == p.number for rv in r.reviews):
                return _error(
                    422, "Unprocessable Entity", errors=["User can only have one pending review per pull request"]
                )
            review["submitted_at"] = None
            r.reviews.append(review)
            self.pending_comments[review_id] = comments
            return JSONResponse(review)
        r.reviews.append(review)
        for c in comments:
            self._store_review_comment(r, p, c, review_id, review["commit_id"])
        return JSONResponse(review)

    def _review(self, r: FakeRepo, n: str, rid: str) -> dict[str, Any] | None:
        return next((rv for rv in r.reviews if rv["id"] == int(rid) and rv["pull_number"] == int(n)), None)

    async def _get_review(self, request: Request, body: Any, owner: str, repo: str, n: str, rid: str) -> Response:
        review = self._review(self._repo(owner, repo), n, rid)
        return JSONResponse(review) if review else _error(404, "Not Found")

    async def _delete_review(self, request: Request, body: Any, owner: str, repo: str, n: str, rid: str) -> Response:
        r = self._repo(owner, repo)
        review = self._review(r, n, rid)
        if review is None:
            return _error(404, "Not Found")
        if review["state"] != "PENDING":
            return _error(422, "Unprocessable Entity", errors=["Can not delete a non-pending pull request review"])
        r.reviews.remove(review)
        self.pending_comments.pop(review["id"], None)
        return JSONResponse(review)

    async def _submit_review(self, request: Request, body: Any, owner: str, repo: str, n: str, rid: str) -> Response:
        r, p = self._pull(owner, repo, n)
        review = self._review(r, n, rid)
        if review is None or p is None:
            return _error(404, "Not Found")
        event = (body or {}).get("event")
        states = {"COMMENT": "COMMENTED", "APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}
        if review["state"] != "PENDING" or event not in states:
            return _error(422, "Unprocessable Entity", errors=["Can not submit this review"])
        review.update(
            {"state": states[event], "event": event, "submitted_at": _iso(_now())}
            | ({"body": body["body"]} if (body or {}).get("body") else {})
        )
        for c in self.pending_comments.pop(review["id"], []):
            self._store_review_comment(r, p, c, review["id"], review["commit_id"])
        return JSONResponse(review)

    def _store_review_comment(
        self, r: FakeRepo, p: FakePull, c: dict[str, Any], review_id: int | None, commit_id: str
    ) -> dict[str, Any]:
        cid = self.next_id()
        comment = {
            "id": cid,
            "node_id": f"PRRC_{cid}",
            "pull_request_review_id": review_id,
            "pull_number": p.number,
            "path": c.get("path"),
            "line": c.get("line"),
            "side": c.get("side") or "RIGHT",
            "start_line": c.get("start_line"),
            "start_side": c.get("start_side"),
            "body": c.get("body") or "",
            "commit_id": commit_id,
            "in_reply_to_id": c.get("in_reply_to"),
            "user": self._user(c.get("_user") or BOT_LOGIN),
            "created_at": _iso(_now()),
            "html_url": f"https://github.test/{r.full_name}/pull/{p.number}#discussion_r{cid}",
        }
        r.review_comments.append(comment)
        return comment

    async def _list_review_comments(self, request: Request, body: Any, owner: str, repo: str, n: str) -> Response:
        r = self._repo(owner, repo)
        return self._paginate(request, [c for c in r.review_comments if c["pull_number"] == int(n)])

    async def _create_review_comment(self, request: Request, body: Any, owner: str, repo: str, n: str) -> Response:
        r, p = self._pull(owner, repo, n)
        if p is None:
            return _error(404, "Not Found")
        body = body or {}
        if not body.get("body"):
            return _error(422, "Unprocessable Entity", errors=["Body can't be blank"])
        if len(body["body"]) > BODY_LIMIT:
            return _error(422, "Unprocessable Entity", errors=["Body is too long (maximum is 65536 characters)"])
        reply_to = body.get("in_reply_to")
        if reply_to is not None:
            parent = next((c for c in r.review_comments if c["id"] == int(reply_to)), None)
            if parent is None or parent["pull_number"] != p.number:
                return _error(404, "Not Found")
            fields = {k: parent[k] for k in ("path", "line", "side", "start_line", "start_side")}
            root = parent["in_reply_to_id"] or parent["id"]
            comment = self._store_review_comment(
                r, p, fields | {"body": body["body"], "in_reply_to": root}, None, parent["commit_id"]
            )
            return JSONResponse(comment, status_code=201)
        if self._check_comment_position(p, body) is not None:
            return _error(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "PullRequestReviewComment",
                        "code": "custom",
                        "field": "pull_request_review_thread.line",
                        "message": "could not be resolved",
                    }
                ],
            )
        comment = self._store_review_comment(r, p, body, None, body.get("commit_id") or p.head_sha)
        return JSONResponse(comment, status_code=201)

    def _find(self, items: list[dict[str, Any]], cid: str) -> dict[str, Any] | None:
        return next((c for c in items if c["id"] == int(cid)), None)

    async def _edit_review_comment(self, request: Request, body: Any, owner: str, repo: str, cid: str) -> Response:
        comment = self._find(self._repo(owner, repo).review_comments, cid)
        if comment is None:
            return _error(404, "Not Found")
        comment["body"] = (body or {}).get("body", comment["body"])
        return JSONResponse(comment)

    async def _delete_review_comment(self, request: Request, body: Any, owner: str, repo: str, cid: str) -> Response:
        r = self._repo(owner, repo)
        comment = self._find(r.review_comments, cid)
        if comment is None:
            return _error(404, "Not Found")
        r.review_comments.remove(comment)
        return Response(status_code=204)

    async def _react(self, r: FakeRepo, kind: str, target: int, body: Any) -> Response:
        content = (body or {}).get("content")
        if content not in ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"):
            return _error(422, "Validation Failed")
        reaction = {
            "id": self.next_id(),
            "content": content,
            "subject": kind,
            "subject_id": target,
            "user": self._user(BOT_LOGIN),
        }
        r.reactions.append(reaction)
        return JSONResponse(reaction, status_code=201)

    async def _react_review_comment(self, request: Request, body: Any, owner: str, repo: str, cid: str) -> Response:
        r = self._repo(owner, repo)
        if self._find(r.review_comments, cid) is None:
            return _error(404, "Not Found")
        return await self._react(r, "pull_request_review_comment", int(cid), body)

    async def _react_issue_comment(self, request: Request, body: Any, owner: str, repo: str, cid: str) -> Response:
        r = self._repo(owner, repo)
        if self._find(r.issue_comments, cid) is None:
            return _error(404, "Not Found")
        return await self._react(r, "issue_comment", int(cid), body)

    async def _react_issue(self, request: Request, body: Any, owner: str, repo: str, n: str) -> Response:
        return await self._react(self._repo(owner, repo), "issue", int(n), body)

    # ---- handlers: issue comments ---------------------------------------------------------
    async def _list_issue_comments(self, request: Request, body: Any, owner: str, repo: str, n: str) -> Response:
        r = self._repo(owner, repo)
        return self._paginate(request, [c for c in r.issue_comments if c["issue_number"] == int(n)])

    def add_issue_comment(self, repo: FakeRepo, number: int, body: str, user: str = BOT_LOGIN) -> dict[str, Any]:
        """Seed (or record) an issue/PR conversation comment."""
        cid = self.next_id()
        comment = {
            "id": cid,
            "node_id": f"IC_{cid}",
            "issue_number": number,
            "body": body,
            "user": self._user(user),
            "created_at": _iso(_now()),
            "updated_at": _iso(_now()),
            "html_url": f"https://github.test/{repo.full_name}/pull/{number}#issuecomment-{cid}",
        }
        repo.issue_comments.append(comment)
        return comment

    def user(self, login: str) -> dict[str, Any]:
        """GitHub's user object for `login` (a `[bot]` suffix makes it a Bot)."""
        return self._user(login)

    def add_review_comment(
        self,
        repo: FakeRepo,
        number: int,
        body: str,
        *,
        path: str,
        line: int,
        side: str = "RIGHT",
        user: str = BOT_LOGIN,
        in_reply_to: int | None = None,
        review_id: int | None = None,
        commit_id: str | None = None,
    ) -> dict[str, Any]:
        """Seed a review comment (or a reply in its thread) as if `user` had written it; no position check."""
        pull = repo.pulls[number]
        fields = {"body": body, "path": path, "line": line, "side": side, "in_reply_to": in_reply_to, "_user": user}
        return self._store_review_comment(repo, pull, fields, review_id, commit_id or pull.head_sha)

    def add_reaction(
        self, repo: FakeRepo, subject: str, subject_id: int, content: str, user: str = "octocat"
    ) -> dict[str, Any]:
        """Seed a reaction; subject is "issue", "issue_comment" or "pull_request_review_comment"."""
        reaction = {"id": self.next_id(), "content": content, "subject": subject, "subject_id": subject_id}
        reaction["user"] = self._user(user)
        repo.reactions.append(reaction)
        return reaction

    async def _create_issue_comment(self, request: Request, body: Any, owner: str, repo: str, n: str) -> Response:
        text = (body or {}).get("body")
        if not text:
            return _error(
                422,
                "Validation Failed",
                errors=[{"resource": "IssueComment", "code": "missing_field", "field": "body"}],
            )
        if len(text) > BODY_LIMIT:
            return _error(422, "Validation Failed", errors=["Body is too long (maximum is 65536 characters)"])
        comment = self.add_issue_comment(self._repo(owner, repo), int(n), text)
        return JSONResponse(comment, status_code=201)

    async def _get_issue_comment(self, request: Request, body: Any, owner: str, repo: str, cid: str) -> Response:
        comment = self._find(self._repo(owner, repo).issue_comments, cid)
        return JSONResponse(comment) if comment else _error(404, "Not Found")

    async def _edit_issue_comment(self, request: Request, body: Any, owner: str, repo: str, cid: str) -> Response:
        comment = self._find(self._repo(owner, repo).issue_comments, cid)
        if comment is None:
            return _error(404, "Not Found")
        text = (body or {}).get("body")
        if not text or len(text) > BODY_LIMIT:
            return _error(422, "Validation Failed")
        comment["body"] = text
        comment["updated_at"] = _iso(_now())
        return JSONResponse(comment)

    async def _delete_issue_comment(self, request: Request, body: Any, owner: str, repo: str, cid: str) -> Response:
        r = self._repo(owner, repo)
        comment = self._find(r.issue_comments, cid)
        if comment is None:
            return _error(404, "Not Found")
        r.issue_comments.remove(comment)
        return Response(status_code=204)

    # ---- handlers: contents, compare, permissions -----------------------------------------
    async def _get_contents(self, request: Request, body: Any, owner: str, repo: str, path: str) -> Response:
        r = self._repo(owner, repo)
        ref = request.query_params.get("ref") or r.default_branch
        tree = r.tree(ref)
        if tree is None:
            return _error(404, f"No commit found for the ref {ref}")
        path = path.strip("/")
        content = tree.get(path)
        if content is None:
            children = sorted({p[len(path) + 1 :].split("/")[0] for p in tree if p.startswith(path + "/")})
            if not children:
                return _error(404, "Not Found")
            entries = [
                {"name": c, "path": f"{path}/{c}", "type": "file" if f"{path}/{c}" in tree else "dir"} for c in children
            ]
            return JSONResponse(entries)
        accept = request.headers.get("accept", "")
        if "raw" in accept:
            return Response(content, media_type="application/vnd.github.raw")
        too_big = len(content) > CONTENTS_JSON_LIMIT
        return JSONResponse(
            {
                "type": "file",
                "encoding": "none" if too_big else "base64",
                "size": len(content),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "sha": _sha(repr(content)),
                "content": "" if too_big else base64.encodebytes(content).decode(),
            }
        )

    async def _tarball(self, request: Request, body: Any, owner: str, repo: str, ref: str) -> Response:
        """GitHub answers 302 to its archive host with a short-lived signed URL (codeload.github.com)."""
        r = self._repo(owner, repo)
        sha = r.refs.get(ref, ref)
        if r.trees.get(sha) is None:
            return _error(404, "Not Found")
        token = secrets.token_urlsafe(16)
        self.archive_tokens[token] = f"{r.full_name}/{sha}"
        return Response(status_code=302, headers={"Location": self._url(request, f"/_codeload/{token}/legacy.tar.gz")})

    async def _codeload(self, request: Request, body: Any, token: str) -> Response:
        target = self.archive_tokens.pop(token, None)  # one use, like GitHub's signed archive URLs
        if target is None:
            return _error(404, "Not Found")
        full_name, sha = target.rsplit("/", 1)
        r = self.repos[full_name.lower()]
        data = tarball(r.trees[sha], top=f"{r.owner}-{r.name}-{sha[:7]}")
        return Response(data, media_type="application/x-gzip")

    async def _compare(self, request: Request, body: Any, owner: str, repo: str, base: str, head: str) -> Response:
        r = self._repo(owner, repo)
        old, new = r.tree(base), r.tree(head)
        if old is None or new is None:
            return _error(404, "Not Found")
        files = self._files_between(old, new)
        return JSONResponse(
            {
                "status": "identical" if not files else "ahead",
                "ahead_by": 0 if not files else 1,
                "behind_by": 0,
                "total_commits": 0 if not files else 1,
                "commits": [],
                "files": files[:300],
                "base_commit": {"sha": r.refs.get(base, base)},
                "merge_base_commit": {"sha": r.refs.get(base, base)},
            }
        )

    async def _permission(self, request: Request, body: Any, owner: str, repo: str, user: str) -> Response:
        r = self._repo(owner, repo)
        permission = r.collaborators.get(user)
        if permission is None:
            return _error(404, f"{user} is not a user")
        legacy = {"maintain": "write", "triage": "read"}.get(permission, permission)
        return JSONResponse({"permission": legacy, "role_name": permission, "user": self._user(user)})

    # ---- handlers: checks -----------------------------------------------------------------
    def _annotations_ok(self, body: dict[str, Any]) -> bool:
        return len(((body.get("output") or {}).get("annotations")) or []) <= ANNOTATIONS_PER_REQUEST

    async def _create_check_run(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        body = body or {}
        if not body.get("name") or not body.get("head_sha"):
            return _error(422, "Invalid request.", errors=["name and head_sha are required"])
        if not self._annotations_ok(body):
            return _error(422, "Invalid request.", errors=["Only 50 annotations may be sent per request"])
        rid = self.next_id()
        run = {
            "id": rid,
            "name": body["name"],
            "head_sha": body["head_sha"],
            "status": body.get("status", "queued"),
            "conclusion": body.get("conclusion"),
            "output": dict(body.get("output") or {}),
            "annotations": list((body.get("output") or {}).get("annotations") or []),
            "external_id": body.get("external_id"),
            "details_url": body.get("details_url"),
            "updates": [],
        }
        run["output"].pop("annotations", None)
        self._repo(owner, repo).check_runs.append(run)
        return JSONResponse(run, status_code=201)

    async def _update_check_run(self, request: Request, body: Any, owner: str, repo: str, rid: str) -> Response:
        run = self._find(self._repo(owner, repo).check_runs, rid)
        if run is None:
            return _error(404, "Not Found")
        body = body or {}
        if not self._annotations_ok(body):
            return _error(422, "Invalid request.", errors=["Only 50 annotations may be sent per request"])
        run["updates"].append(body)
        for key in ("status", "conclusion", "name", "details_url", "external_id"):
            if key in body:
                run[key] = body[key]
        if "output" in body:
            output = dict(body["output"] or {})
            run["annotations"].extend(output.pop("annotations", None) or [])
            run["output"] = output
        return JSONResponse(run)

    async def _list_check_runs(self, request: Request, body: Any, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        sha = r.refs.get(ref, ref)
        runs = [run for run in r.check_runs if run["head_sha"] == sha]
        return JSONResponse({"total_count": len(runs), "check_runs": runs})

    # ---- handlers: graphql ----------------------------------------------------------------
    async def _graphql(self, request: Request, body: Any) -> Response:
        body = body or {}
        query = str(body.get("query") or "")
        variables = body.get("variables") or {}
        self.graphql_calls.append({"query": query, "variables": variables})
        if "resolveReviewThread" in query:
            thread = variables.get("threadId") or variables.get("id")
            return JSONResponse({"data": {"resolveReviewThread": {"thread": {"id": thread, "isResolved": True}}}})
        if "minimizeComment" in query:
            subject = variables.get("subjectId") or variables.get("id")
            return JSONResponse(
                {"data": {"minimizeComment": {"minimizedComment": {"isMinimized": True, "subjectId": subject}}}}
            )
        return JSONResponse({"errors": [{"message": "this fake only knows resolveReviewThread/minimizeComment"}]})


def _error(
    status: int, message: str, *, errors: list[Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    payload: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors is not None:
        payload["errors"] = errors
    return JSONResponse(payload, status_code=status, headers=headers)


# ---- loopback server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_asgi(app: Any, *, port: int | None = None, lifespan: str = "off") -> Iterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 in a thread; yield its root URL; stop it on exit."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def serve_fake(fake: FakeGitHub) -> Iterator[str]:
    """The fake on loopback; yields the API base URL (with the GHES prefix when the fake has one)."""
    with serve_asgi(fake.app) as root:
        yield root + fake.prefix
