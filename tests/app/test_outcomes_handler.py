"""The closed-PR handler end to end: seeded comments, replies, reactions and threads → dispatch → stored outcomes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from analyzers.base import Confidence, Finding, Severity
from app.comments import finding_body, suggestion_block
from app.db import database_url, get_engine
from app.delivery import Delivery
from app.dispatch import Outcome, dispatch
from app.github import GitHubApp
from app.handlers import routers
from app.outcome_store import OutcomeStore
from app.pr_state import PrState
from app.review_state import ReviewState
from app.routing import Router
from app.settings import Settings
from tests.fakes.github import FakeGitHub, FakePull, FakeRepo, shared_app_keys

BEFORE = (
    "import os\n\n\n"
    "def load(x):\n"
    "    return eval(x)\n"  # 5: security/eval, suggestion applied
    "\n\n"
    "def run(cmd, data, s):\n"
    "    try:\n"
    "        os.remove('tmp')\n"  # 10: security/os-remove, 👎
    "    except:\n"  # 11: quality/bare-except, changed and no longer fires
    "        pass\n"
    "    subprocess.call(cmd, shell=True)\n"  # 13: security/shell, thread resolved
    "    pickle.loads(data)\n"  # 14: security/pickle, a human disagrees
    "    yaml.load(s)\n"  # 15: security/yaml, nothing happens
    "    print(s)\n"  # 16: quality/print, ignored with /diffwise ignore
)
AFTER = BEFORE.replace("return eval(x)", "return ast.literal_eval(x)").replace("    except:\n", "    except OSError:\n")


class OutcomesFakeGitHub(FakeGitHub):
    """The shared fake plus reactions listing and GraphQL reviewThreads (with isResolved)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resolved: set[int] = set()
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        self._route("GET", repo + r"/pulls/comments/(?P<cid>\d+)/reactions", "token", self._list_reactions)

    async def _list_reactions(self, request: Request, body: Any, owner: str, repo: str, cid: str) -> Response:
        r = self._repo(owner, repo)
        items = [
            x for x in r.reactions if x["subject"] == "pull_request_review_comment" and x["subject_id"] == int(cid)
        ]
        return self._paginate(request, items)

    async def _graphql(self, request: Request, body: Any) -> Response:
        query = str((body or {}).get("query") or "")
        if "reviewThreads" not in query:
            return await super()._graphql(request, body)
        variables = (body or {}).get("variables") or {}
        self.graphql_calls.append({"query": query, "variables": variables})
        r = self.repo(f"{variables['owner']}/{variables['name']}")
        roots = [c for c in r.review_comments if c["pull_number"] == variables["number"] and not c["in_reply_to_id"]]
        nodes = [
            {
                "id": f"PRRT_{c['id']}",
                "isResolved": c["id"] in self.resolved,
                "comments": {"nodes": [{"databaseId": c["id"]}]},
            }
            for c in roots
        ]
        page = {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}
        return JSONResponse({"data": {"repository": {"pullRequest": {"reviewThreads": page}}}})


def finding(rule: str, line: int, severity: Severity = Severity.HIGH, source: str = "analyzer") -> Finding:
    return Finding(
        rule,
        rule.split("/")[0],
        severity,
        Confidence.HIGH,
        f"{rule}.",
        "app.py",
        line,
        line,
        code=f"{rule}:{line}",
        source=source,  # type: ignore[arg-type]
    )


EVAL = finding("security/eval", 5)
REMOVE = finding("security/os-remove", 10, Severity.MEDIUM)
EXCEPT = finding("quality/bare-except", 11, Severity.MEDIUM)
SHELL = finding("security/shell", 13)
PICKLE = finding("security/pickle", 14, source="llm")
YAML = finding("security/yaml", 15)
PRINT = finding("quality/print", 16, Severity.MEDIUM)


class World:
    def __init__(self, tmp_path: Path) -> None:
        keys = shared_app_keys()
        self.fake = OutcomesFakeGitHub(42, keys.public_pem)
        self.repo: FakeRepo = self.fake.add_repo("octo", "shop", installation_id=7)
        self.pull: FakePull = self.fake.add_pull(self.repo, 5, base={"app.py": "import os\n"}, head={"app.py": BEFORE})
        self.settings = Settings.for_tests(
            app_id=42, private_key=keys.private_pem, github_api_url="http://github.test", state_dir=tmp_path
        )
        self.app = GitHubApp(self.settings, transport=self.fake.transport())
        self.engine = get_engine(database_url(self.settings.state_dir))
        self.first_head = self.pull.head_sha

    def post(self, f: Finding, body: str | None = None) -> int:
        stored = self.fake._store_review_comment(
            self.repo,
            self.pull,
            {"body": body or finding_body(f), "path": f.path, "line": f.end_line},
            1,
            self.first_head,
        )
        return int(stored["id"])

    def reply(self, root: int, user: str, body: str) -> None:
        self.fake._store_review_comment(
            self.repo,
            self.pull,
            {"body": body, "in_reply_to": root, "_user": user, "path": "app.py", "line": 1},
            None,
            self.first_head,
        )

    def react(self, comment_id: int, content: str, user: str) -> None:
        self.repo.reactions.append(
            {
                "id": self.fake.next_id(),
                "content": content,
                "subject": "pull_request_review_comment",
                "subject_id": comment_id,
                "user": self.fake._user(user),
            }
        )

    def close(self, merged: bool = True, router: Router | None = None) -> Outcome:
        payload = {
            "action": "closed",
            "number": 5,
            "pull_request": {
                "number": 5,
                "state": "closed",
                "merged": merged,
                "head": {"sha": self.pull.head_sha},
                "closed_at": "2026-11-20T12:00:00Z",
                "created_at": "2026-11-19T12:00:00Z",
            },
            "repository": {
                "id": self.repo.id,
                "name": "shop",
                "full_name": "octo/shop",
                "owner": {"login": "octo", "type": "Organization"},
                "default_branch": "main",
            },
            "installation": {"id": 7},
            "sender": self.fake._user("dev"),
        }
        delivery = Delivery("d-close", "pull_request", json.dumps(payload).encode(), "", 0.0)
        return asyncio.run(dispatch(self.settings, delivery, router=router, github_app=self.app))


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_closed_pr_classifies_every_posted_finding(world: World) -> None:
    world.post(EVAL, finding_body(EVAL, suggestion_block("    return ast.literal_eval(x)\n", ["    return eval(x)"])))
    world.react(world.post(REMOVE), "-1", "dev")
    world.post(EXCEPT)
    world.fake.resolved.add(world.post(SHELL))
    pickle = world.post(PICKLE)
    world.reply(pickle, "dev", "The data comes from our own cache; this is fine.")
    yaml = world.post(YAML)
    world.react(yaml, "+1", "dev")
    world.reply(yaml, "diffwise[bot]", "An explanation.")
    world.post(PRINT)
    PrState(world.engine).suppress("octo/shop", 5, "rule", "quality/print", by="maint")

    head = world.fake.push(world.repo, 5, {"app.py": AFTER})  # the author applies one fix, edits another line
    still = [REMOVE.id, SHELL.id, PICKLE.id, YAML.id, PRINT.id]
    ReviewState(world.engine).record("octo/shop", 5, head, posted_ids=still, opened_at=1.0)

    for when, login in (("2026-11-19T12:05:00Z", "diffwise[bot]"), ("2026-11-19T12:01:00Z", "other[bot]")):
        world.repo.reviews.append(
            {
                "id": world.fake.next_id(),
                "pull_number": 5,
                "user": world.fake._user(login),
                "body": "review",
                "state": "COMMENTED",
                "commit_id": world.first_head,
                "submitted_at": when,
            }
        )

    outcome = world.close(merged=True)  # through the default router: handlers/__init__ lists "outcomes"
    assert outcome.status == "handled", outcome

    rows = {r.rule: r for r in OutcomeStore(world.engine).rows("octo/shop")}
    assert {rule: r.outcome for rule, r in rows.items()} == {
        "security/eval": "applied",
        "quality/bare-except": "applied",
        "security/os-remove": "dismissed",
        "security/shell": "dismissed",
        "quality/print": "dismissed",
        "security/pickle": "disputed",
        "security/yaml": "unaddressed",
    }
    assert rows["security/pickle"].source == "llm"
    assert rows["security/eval"].severity == "high"
    [closure] = OutcomeStore(world.engine).closures("octo/shop")
    assert closure["merged"] is True
    assert closure["first_review_at"] - closure["opened_at"] == 300  # ours, not the other bot's
    # read-only at close time: reactions and threads were read, nothing was written to GitHub
    assert world.fake.count("GET", r"/pulls/comments/\d+/reactions") == 7
    assert world.fake.count("POST", r"/repos/") == 0
    assert any("reviewThreads" in call["query"] for call in world.fake.graphql_calls)


def test_closing_again_replaces_the_outcomes(world: World) -> None:
    from app.handlers.outcomes import router

    yaml = world.post(YAML)
    world.close(merged=False, router=Router(router))
    assert [r.outcome for r in OutcomeStore(world.engine).rows()] == ["unaddressed"]
    world.react(yaml, "-1", "maint")
    world.close(merged=False, router=Router(router))
    assert [r.outcome for r in OutcomeStore(world.engine).rows()] == ["dismissed"]
    assert [c["merged"] for c in OutcomeStore(world.engine).closures()] == [False]


def test_a_pr_without_findings_stores_only_its_closure(world: World) -> None:
    world.reply(world.post(YAML), "dev", "unrelated")  # ensure replies alone do not create findings
    world.repo.review_comments[:] = [c for c in world.repo.review_comments if c["in_reply_to_id"]]
    outcome = world.close()
    assert outcome.status == "handled"
    assert OutcomeStore(world.engine).rows() == []
    assert len(OutcomeStore(world.engine).closures()) == 1


def test_the_outcomes_router_is_composed() -> None:
    assert any(r.handles("pull_request", "closed") for r in routers())


def test_on_demand_classification_of_an_open_pr(world: World) -> None:
    from app.handlers.outcomes import classify_pull

    seen: list[str] = []
    on_demand = Router()

    @on_demand.on("pull_request.closed")  # any delivery gives a Context; the PR itself stays open here
    async def run(ctx: Any) -> None:
        seen.extend(c.outcome.value for c in await classify_pull(ctx, 5))

    world.react(world.post(YAML), "-1", "dev")
    assert world.close(router=on_demand).status == "handled"
    assert seen == ["dismissed"]
    assert [r.outcome for r in OutcomeStore(world.engine).rows()] == ["dismissed"]
    assert OutcomeStore(world.engine).closures() == []
