"""`/diffwise tests commit` end to end: webhook → command → synthesis → one commit through the git data API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from analyzers.testgen import suggested_test_path
from app.commands import REPLY_MARKER, commit_closed_text, commit_fork_text, commit_no_access_text
from app.delivery import Delivery
from app.dispatch import Outcome, dispatch
from app.github import GitHubApp
from app.handlers.commands import Services, commit_suggested_tests, make_router, suggest_tests
from app.settings import Settings
from app.tests_commit import HeadBranch, PlannedFile, head_branch, is_diffwise_file, plan_files, variants
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.github import FakeGitHub, FakePull, FakeRepo, _error, _sha, shared_app_keys

BASE = "def add(a: int, b: int) -> int:\n    return a + b\n"
HEAD = "def add(a: int, b: int) -> int:\n    return b + a\n\n\ndef clamp(x: int, lo: int, hi: int) -> int:\n"
HEAD += "    return max(lo, min(x, hi)) if lo <= hi else x\n"
NO_ACCESS = "Resource not accessible by integration"


class GitDataGitHub(FakeGitHub):
    """The fake plus GitHub's git data API (commits, trees, refs), forks and the `contents: write` permission."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contents_write = True
        self.commits: list[dict[str, Any]] = []
        self.git_trees: dict[str, dict[str, bytes]] = {}
        self.parents: dict[str, list[str]] = {}
        self.forks: dict[tuple[str, int], tuple[FakeRepo, bool]] = {}  # (base repo, PR) → (head repo, can modify)
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        self.messages: dict[str, str] = {}
        self._route("GET", repo + r"/commits", "token", self._list_commits)
        self._route("GET", repo + r"/git/commits/(?P<sha>[0-9a-f]+)", "token", self._get_commit)
        self._route("POST", repo + r"/git/trees", "token", self._create_tree)
        self._route("POST", repo + r"/git/commits", "token", self._create_commit)
        self._route("PATCH", repo + r"/git/refs/heads/(?P<ref>.+)", "token", self._update_ref)

    def commit(self, repo: FakeRepo, branch: str, files: dict[str, str | bytes | None]) -> str:
        """Seeded commits (pushes by people) join the history too, so `GET /commits?path=` can walk it."""
        parent = repo.refs.get(branch) or repo.refs.get(repo.default_branch)
        sha = super().commit(repo, branch, files)
        self.parents[sha] = [parent] if parent else []
        self.messages[sha] = "A person's change"
        return sha

    async def _list_commits(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        """The newest commit reachable from `sha` that changed `path` (GitHub lists them all; one is enough)."""
        r = self._repo(owner, repo)
        sha: str | None = request.query_params.get("sha") or r.refs[r.default_branch]
        path = request.query_params["path"]
        while sha is not None and sha in r.trees:
            parents = self.parents.get(sha) or []
            before = r.trees[parents[0]].get(path) if parents else None
            if r.trees[sha].get(path) != before:
                return JSONResponse([{"sha": sha, "commit": {"message": self.messages.get(sha, "")}}])
            sha = parents[0] if parents else None
        return JSONResponse([])

    def fork(self, base: FakeRepo, pull: FakePull, owner: str, *, can_modify: bool) -> FakeRepo:
        """Make `pull` come from a fork (same installation, so a maintainer's App may write to it)."""
        fork = self.add_repo(owner, base.name, installation_id=base.installation_id)
        fork.trees[pull.head_sha] = base.trees[pull.head_sha]
        fork.refs[pull.head_ref] = pull.head_sha
        self.forks[(base.full_name, pull.number)] = (fork, can_modify)
        return fork

    def _pull_json(self, r: FakeRepo, p: FakePull) -> dict[str, Any]:
        data = super()._pull_json(r, p)
        data["maintainer_can_modify"] = False
        fork = self.forks.get((r.full_name, p.number))
        if fork is not None:
            data["head"]["repo"] = self._repo_json(fork[0]) | {"fork": True}
            data["maintainer_can_modify"] = fork[1]
        return data

    def _tree(self, r: FakeRepo, sha: str) -> dict[str, bytes] | None:
        if sha.startswith("tree-"):
            return r.trees.get(sha[5:])
        return self.git_trees.get(sha)

    async def _get_commit(self, request: Request, body: Any, owner: str, repo: str, sha: str) -> Response:
        r = self._repo(owner, repo)
        if sha not in r.trees:
            return _error(404, "Not Found")
        return JSONResponse({"sha": sha, "tree": {"sha": f"tree-{sha}"}, "parents": []})

    async def _create_tree(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        if not self.contents_write:
            return _error(403, NO_ACCESS)
        r = self._repo(owner, repo)
        base = self._tree(r, str(body.get("base_tree") or ""))
        if base is None:
            return _error(422, "base_tree not found")
        tree = dict(base)
        for entry in body["tree"]:
            assert (entry["mode"], entry["type"]) == ("100644", "blob")
            tree[entry["path"]] = entry["content"].encode()
        sha = _sha(repr(sorted(tree.items())))
        self.git_trees[sha] = tree
        return JSONResponse({"sha": sha, "tree": []}, status_code=201)

    async def _create_commit(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        if not self.contents_write:
            return _error(403, NO_ACCESS)
        r = self._repo(owner, repo)
        tree = self._tree(r, body["tree"])
        if tree is None or any(p not in r.trees for p in body["parents"]):
            return _error(422, "Tree or parent not found")
        sha = _sha(f"{body['tree']}:{body['parents']}:{body['message']}:{self.next_id()}")
        r.trees[sha] = tree
        self.parents[sha] = list(body["parents"])
        self.messages[sha] = body["message"]
        self.commits.append({"repo": r.full_name, "sha": sha, "message": body["message"], "parents": body["parents"]})
        return JSONResponse({"sha": sha, "tree": {"sha": body["tree"]}}, status_code=201)

    async def _update_ref(self, request: Request, body: Any, owner: str, repo: str, ref: str) -> Response:
        if not self.contents_write:
            return _error(403, NO_ACCESS)
        r = self._repo(owner, repo)
        current, new = r.refs.get(ref), body["sha"]
        if current is None:
            return _error(422, "Reference does not exist")
        if not body.get("force") and current not in self.parents.get(new, []):
            return _error(422, "Update is not a fast forward")
        r.refs[ref] = new
        for pull in r.pulls.values():  # a push to a PR's branch moves the PR's head
            if pull.head_ref == ref:
                pull.head_sha = new
                pull.files = self._files_between(r.trees[pull.base_sha], r.trees[new])
        return JSONResponse({"ref": f"refs/heads/{ref}", "object": {"sha": new, "type": "commit"}})


@dataclass
class World:
    fake: GitDataGitHub
    repo: FakeRepo
    pull: FakePull
    settings: Settings
    app: GitHubApp
    services: Services = field(
        default_factory=lambda: Services(tests=suggest_tests, commit_tests=commit_suggested_tests)
    )
    last_comment_id: int = 0

    def replies(self) -> list[str]:
        return [c["body"] for c in self.repo.issue_comments if c["body"].startswith(REPLY_MARKER)]

    def comment(self, body: str, user: str = "maint") -> Outcome:
        stored = self.fake.add_issue_comment(self.repo, 5, body, user=user)
        self.last_comment_id = stored["id"]
        payload = {
            "action": "created",
            "repository": {
                "id": self.repo.id,
                "name": "shop",
                "full_name": "octo/shop",
                "owner": {"login": "octo", "type": "Organization"},
                "default_branch": "main",
            },
            "installation": {"id": 7},
            "sender": self.fake._user(user),
            "issue": {"number": 5, "pull_request": {"url": "https://api.github.test/repos/octo/shop/pulls/5"}},
            "comment": {"id": stored["id"], "body": body, "user": self.fake._user(user)},
        }
        delivery = Delivery(f"d-{stored['id']}", "issue_comment", json.dumps(payload).encode(), "", 0.0)
        return asyncio.run(dispatch(self.settings, delivery, router=make_router(self.services), github_app=self.app))

    def reactions(self) -> list[str]:
        return [r["content"] for r in self.repo.reactions if r["subject_id"] == self.last_comment_id]

    def head_tree(self) -> dict[str, bytes]:
        return self.repo.trees[self.repo.refs[self.pull.head_ref]]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "DIFFWISE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    keys = shared_app_keys()
    fake = GitDataGitHub(42, keys.public_pem)
    repo = fake.add_repo("octo", "shop", installation_id=7)
    pull = fake.add_pull(repo, 5, base={"app.py": BASE}, head={"app.py": HEAD}, author="dev")
    repo.collaborators.update({"maint": "write", "reader": "read"})
    settings = Settings.for_tests(
        app_id=42, private_key=keys.private_pem, github_api_url="http://github.test", state_dir=tmp_path / "state"
    )
    return World(fake, repo, pull, settings, GitHubApp(settings, transport=fake.transport()))


def new_files(world: World, before: dict[str, bytes]) -> dict[str, str]:
    return {p: c.decode() for p, c in world.head_tree().items() if before.get(p) != c}


def test_commit_pushes_the_suggested_tests_as_one_commit_and_they_pass(world: World, tmp_path: Path) -> None:
    old_head, before = world.pull.head_sha, dict(world.head_tree())
    world.comment("/diffwise tests commit")
    [commit] = world.fake.commits
    assert commit["parents"] == [old_head]
    assert commit["message"].startswith("Add property tests suggested by diffwise")
    assert "@maint" in commit["message"]
    assert world.repo.refs["feature-5"] == commit["sha"] == world.pull.head_sha
    added = new_files(world, before)
    assert added
    assert all(p.startswith("tests/test_diffwise_app_") for p in added)
    assert all(is_diffwise_file(c) for c in added.values())
    reply = world.replies()[-1]
    assert f"in commit `{commit['sha'][:7]}`" in reply
    assert all(f"- `{p}`" in reply for p in added)
    assert world.reactions() == ["eyes", "rocket"]
    # The committed files are what `/diffwise tests` suggests, and they pass against the head's code.
    run_pytest(world, tmp_path, list(added))


def run_pytest(world: World, tmp_path: Path, paths: list[str]) -> None:
    """Check the head branch out into a directory and run `paths` there with pytest; they must pass."""
    checkout = tmp_path / "checkout"
    for path, content in world.head_tree().items():
        (checkout / path).parent.mkdir(parents=True, exist_ok=True)
        (checkout / path).write_bytes(content)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(checkout)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_second_commit_request_changes_nothing(world: World) -> None:
    world.comment("/diffwise tests commit")
    world.comment("/diffwise tests commit")
    assert len(world.fake.commits) == 1
    assert "already on `feature-5`; there is nothing new to commit" in world.replies()[-1]


def test_an_existing_file_of_a_person_is_never_overwritten(world: World) -> None:
    path = suggested_test_path("app", "clamp")
    mine = "def test_mine():\n    assert True\n"
    world.fake.push(world.repo, 5, {path: mine})
    world.comment("/diffwise tests commit app.py::clamp")
    tree = world.head_tree()
    assert tree[path].decode() == mine
    variant = path.removesuffix(".py") + "_2.py"
    assert is_diffwise_file(tree[variant])
    assert f"- `{variant}`" in world.replies()[-1]


def test_our_own_file_is_updated_in_place_but_a_persons_copy_is_kept(world: World) -> None:
    path = suggested_test_path("app", "clamp")
    world.comment("/diffwise tests commit app.py::clamp")
    first = world.head_tree()[path]
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "tests:\n  max_examples: 20\n")
    world.comment("/diffwise tests commit app.py::clamp")
    assert len(world.fake.commits) == 2
    second = world.head_tree()[path]
    assert second != first
    assert b"max_examples=20" in second
    assert path.removesuffix(".py") + "_2.py" not in world.head_tree()
    # A person copies the file by hand and edits it: it keeps our docstring but is theirs now.
    world.fake.push(world.repo, 5, {path: second.decode() + "# my edit\n"})
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "tests:\n  max_examples: 30\n")
    world.comment("/diffwise tests commit app.py::clamp")
    assert world.head_tree()[path].decode().endswith("# my edit\n")
    assert b"max_examples=30" in world.head_tree()[path.removesuffix(".py") + "_2.py"]


def test_commit_needs_write_access_even_when_the_policy_opens_tests(world: World) -> None:
    world.comment("/diffwise tests commit", user="reader")
    assert "Sorry @reader, `/diffwise tests commit` needs write access" in world.replies()[-1]
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "commands:\n  write_required: [review]\n")
    world.comment("/diffwise tests", user="reader")
    assert "<!-- diffwise:tests -->" in world.repo.issue_comments[-1]["body"]  # suggesting is open now
    world.comment("/diffwise tests commit", user="reader")
    assert "Sorry @reader, `/diffwise tests commit` needs write access" in world.replies()[-1]
    world.comment("/diffwise tests commit", user="stranger")
    assert "(yours is `none`)" in world.replies()[-1]
    assert world.fake.commits == []
    assert world.fake.count("POST", r"/git/") == 0


def test_without_contents_write_the_reply_says_how_to_copy_the_tests(world: World) -> None:
    world.fake.contents_write = False
    head = world.pull.head_sha
    world.comment("/diffwise tests commit")
    assert world.replies()[-1] == commit_no_access_text()
    assert "`contents: write`" in world.replies()[-1]
    assert world.pull.head_sha == head
    assert world.fake.commits == []
    assert world.reactions() == ["eyes", "confused"]


def test_a_fork_without_maintainer_edits_is_refused(world: World) -> None:
    world.fake.fork(world.repo, world.pull, "dev", can_modify=False)
    world.comment("/diffwise tests commit")
    assert world.replies()[-1] == commit_fork_text()
    assert world.fake.count(path=r"/git/") == 0


def test_a_fork_that_allows_maintainer_edits_gets_the_commit(world: World) -> None:
    fork = world.fake.fork(world.repo, world.pull, "dev", can_modify=True)
    world.comment("/diffwise tests commit")
    [commit] = world.fake.commits
    assert commit["repo"] == "dev/shop"
    assert fork.refs["feature-5"] == commit["sha"]
    assert any(p.startswith("tests/test_diffwise_") for p in fork.trees[commit["sha"]])


def test_a_branch_that_moved_meanwhile_is_left_alone(world: World) -> None:
    world.fake.fail_next(1, status=422, path=r"/git/refs/heads/")
    head = world.pull.head_sha
    world.comment("/diffwise tests commit")
    assert "`feature-5` changed while I was committing" in world.replies()[-1]
    assert world.pull.head_sha == head


def test_nothing_to_commit_when_no_function_is_testable(world: World) -> None:
    world.fake.push(world.repo, 5, {"app.py": BASE, "README.md": "docs\n"})
    world.comment("/diffwise tests commit")
    assert "There are no suggested tests to commit" in world.replies()[-1]
    assert world.fake.commits == []


def test_a_closed_pull_request_gets_no_commit(world: World) -> None:
    world.pull.state = "closed"
    world.comment("/diffwise tests commit")
    assert world.replies()[-1] == commit_closed_text()
    assert world.fake.commits == []


def test_commit_unavailable_or_disabled(world: World) -> None:
    world.services = Services(tests=suggest_tests)
    world.comment("/diffwise tests commit")
    assert "committing suggested tests is not available" in world.replies()[-1]
    world.services = Services(tests=suggest_tests, commit_tests=commit_suggested_tests)
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "tests:\n  enabled: false\n")
    world.comment("/diffwise tests commit")
    assert "`tests.enabled: false`" in world.replies()[-1]


# -- with the LLM writer (app.testgen_llm) against the fake Anthropic ----------------------------------------

LLM_MODULE = '''"""Property tests for app.clamp, suggested by diffwise: invariant."""

from hypothesis import given, settings
from hypothesis import strategies as st

import app as mod


@settings(max_examples=50)
@given(st.integers(), st.integers(), st.integers())
def test_clamp_stays_within_its_bounds(x, lo, hi):
    result = mod.clamp(x, lo, hi)
    if lo <= hi:
        assert lo <= result <= hi
    else:
        assert result == x
'''


@pytest.fixture(scope="module")
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def with_llm(world: World, anthropic: FakeAnthropic) -> None:
    anthropic.reset()
    world.settings = world.settings.replace(
        anthropic_api_key="sk-ant-api03-TESTKEY-0123456789", anthropic_base_url=anthropic.base_url
    )
    world.app = GitHubApp(world.settings, transport=world.fake.transport())


def test_tests_command_uses_the_llm_writer_when_a_key_is_set(world: World, anthropic: FakeAnthropic) -> None:
    with_llm(world, anthropic)
    anthropic.push(Reply(tool_input={"module": LLM_MODULE, "properties": ["invariant"]}))
    world.comment("/diffwise tests app.py::clamp")
    comment = world.repo.issue_comments[-1]["body"]
    assert "def test_clamp_stays_within_its_bounds" in comment
    [request] = anthropic.messages_requests()
    assert "def clamp" in request.text
    world.fake.set_file(world.repo, "main", ".github/diffwise.yml", "llm:\n  enabled: false\n")
    world.comment("/diffwise tests app.py::clamp")
    assert "test_clamp_stays_within_its_bounds" not in world.repo.issue_comments[-1]["body"]
    assert len(anthropic.messages_requests()) == 1  # the policy turned the LLM off


def test_commit_pushes_the_llm_module_and_it_passes(world: World, anthropic: FakeAnthropic, tmp_path: Path) -> None:
    with_llm(world, anthropic)
    anthropic.push(Reply(tool_input={"module": LLM_MODULE, "properties": ["invariant"]}))
    world.comment("/diffwise tests commit app.py::clamp")
    path = suggested_test_path("app", "clamp")
    assert world.head_tree()[path].decode() == LLM_MODULE
    run_pytest(world, tmp_path, [path])


# -- the pure parts ---------------------------------------------------------------------------------------


def test_head_branch_of_same_repo_fork_and_deleted_fork() -> None:
    def pull(head_repo: Any, can: bool = False) -> dict[str, Any]:
        return {
            "head": {"ref": "f", "sha": "abc", "repo": head_repo},
            "base": {"ref": "main", "repo": {"full_name": "o/r"}},
            "maintainer_can_modify": can,
        }

    assert head_branch(pull({"full_name": "o/r"})) == HeadBranch("o", "r", "f", "abc", False, False)
    fork = head_branch(pull({"full_name": "x/r", "fork": True}))
    assert fork is not None
    assert fork.fork
    assert not fork.writable
    allowed = head_branch(pull({"full_name": "x/r", "fork": True}, can=True))
    assert allowed is not None
    assert allowed.writable
    assert head_branch(pull(None)) is None


def test_variants_and_plan_files() -> None:
    assert variants("tests/test_diffwise_m.py")[:3] == [
        "tests/test_diffwise_m.py",
        "tests/test_diffwise_m_2.py",
        "tests/test_diffwise_m_3.py",
    ]

    @dataclass
    class T:
        path: str
        content: str

    ours = '"""Property tests for m.f, suggested by diffwise: no-crash."""\n'
    existing = {
        "tests/a.py": b"# a person's file\n",
        "tests/b.py": ours.encode(),
        "tests/c.py": b"x",
        **{p: b"theirs" for p in variants("tests/d.py")},
    }

    existing["tests/e.py"] = (ours + "# edited by a person\n").encode()

    async def read(path: str) -> bytes | None:
        return existing.get(path)

    async def written_by_us(path: str) -> bool:
        return path != "tests/e.py"

    tests = [T("tests/a.py", ours), T("tests/b.py", ours), T("tests/c.py", ours + "#"), T("tests/d.py", ours)]
    tests += [T("tests/e.py", ours), T("tests/b.py", ours + "# new\n")]
    planned, notes = asyncio.run(plan_files(tests, read, written_by_us))
    assert planned == [
        PlannedFile("tests/a_2.py", ours, "tests/a.py"),
        PlannedFile("tests/c_2.py", ours + "#", "tests/c.py"),
        PlannedFile("tests/e_2.py", ours, "tests/e.py"),
        PlannedFile("tests/b.py", ours + "# new\n", "tests/b.py"),  # ours and changed: replaced in place
    ]
    assert notes == ["`tests/d.py` and its variants exist and were not written by diffwise; not committed"]
