"""`/diffwise tests commit`: the suggested tests pushed to a pull request's head branch as one new commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import quote

from githubkit.exception import RequestFailed

DIFFWISE_SIGNATURE = "suggested by diffwise"
MAX_NAME_TRIES = 5
COMMIT_MESSAGE = "Add property tests suggested by diffwise\n\nRequested by @{login} with `/diffwise tests commit`."

Status = Literal["committed", "unchanged", "nothing", "fork", "gone", "no-permission", "moved"]
ReadFile = Callable[[str], Awaitable[bytes | None]]  # a path at the head commit → its bytes, None if absent
WrittenByUs = Callable[[str], Awaitable[bool]]  # did the last commit touching a path come from this command?


@dataclass(frozen=True)
class HeadBranch:
    """Where a pull request's commits go: the head repository (a fork, maybe) and branch."""

    owner: str
    repo: str
    ref: str
    sha: str
    fork: bool
    maintainer_can_modify: bool

    @property
    def writable(self) -> bool:
        return not self.fork or self.maintainer_can_modify


@dataclass(frozen=True)
class PlannedFile:
    path: str  # where the file goes (the suggested path, or a free variant of it)
    content: str
    suggested: str  # the path the suggestion asked for


@dataclass(frozen=True)
class CommitResult:
    status: Status
    branch: str = ""
    sha: str = ""
    files: tuple[PlannedFile, ...] = ()
    detail: str = ""


def head_branch(pull: Mapping[str, Any]) -> HeadBranch | None:
    """The head branch of a pull request's raw JSON; None when the head repository was deleted."""
    head = pull.get("head") or {}
    base = pull.get("base") or {}
    repo = head.get("repo")
    if not isinstance(repo, Mapping) or not head.get("ref") or not head.get("sha"):
        return None
    full = str(repo.get("full_name") or "")
    owner, _, name = full.partition("/")
    if not owner or not name:
        return None
    base_full = str((base.get("repo") or {}).get("full_name") or "")
    return HeadBranch(
        owner=owner,
        repo=name,
        ref=str(head["ref"]),
        sha=str(head["sha"]),
        fork=bool(repo.get("fork")) or full.lower() != base_full.lower(),
        maintainer_can_modify=bool(pull.get("maintainer_can_modify")),
    )


def is_diffwise_file(content: bytes | str) -> bool:
    """A test file this App wrote (its docstring says so), which a new commit may replace."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    return DIFFWISE_SIGNATURE in text[:400]


def variants(path: str) -> list[str]:
    """`tests/test_diffwise_x.py`, then `tests/test_diffwise_x_2.py`, ... : never an existing person's file."""
    pure = PurePosixPath(path)
    return [path] + [str(pure.with_name(f"{pure.stem}_{n}{pure.suffix}")) for n in range(2, MAX_NAME_TRIES + 1)]


async def plan_files(
    tests: Sequence[Any], read: ReadFile, written_by_us: WrittenByUs
) -> tuple[list[PlannedFile], list[str]]:
    """(files to write, notes): each test at its path or a free variant; identical files are not rewritten.

    An existing file is replaced only when it carries our docstring AND its last commit is one of ours: a
    person who copied a suggested file by hand and edited it keeps their version.
    """
    planned: list[PlannedFile] = []
    notes: list[str] = []
    taken: set[str] = set()
    for test in tests:
        chosen: str | None = None
        for candidate in variants(test.path):
            if candidate in taken:
                continue
            existing = await read(candidate)
            if existing is not None and existing.decode("utf-8", "replace") == test.content:
                chosen = ""  # already there, byte for byte
                break
            if existing is None or (is_diffwise_file(existing) and await written_by_us(candidate)):
                chosen = candidate
                break
        if chosen is None:
            notes.append(f"`{test.path}` and its variants exist and were not written by diffwise; not committed")
            continue
        if chosen:
            taken.add(chosen)
            planned.append(PlannedFile(chosen, test.content, test.path))
    return planned, notes


class GitData:
    """The git data API calls of one commit: read the head's tree, add a tree, a commit, move the branch."""

    def __init__(self, gh: Any, head: HeadBranch) -> None:
        self.gh = gh
        self.head = head

    @property
    def _base(self) -> str:
        return f"/repos/{self.head.owner}/{self.head.repo}/git"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.gh.arequest(method, self._base + path, json=body)
        return response.json()

    async def written_by_us(self, path: str) -> bool:
        """Whether the last commit on the head touching `path` is one this command made (by its message)."""
        url = f"/repos/{self.head.owner}/{self.head.repo}/commits"
        params = {"sha": self.head.sha, "path": path, "per_page": 1}
        commits = (await self.gh.arequest("GET", url, params=params)).json()
        if not commits:
            return False
        message = str((commits[0].get("commit") or {}).get("message") or "")
        return message.startswith(COMMIT_MESSAGE.split("\n", 1)[0])

    async def head_tree(self) -> str:
        """The tree of the head commit (readable with `contents: read`)."""
        parent = await self._call("GET", f"/commits/{self.head.sha}")
        return str(parent["tree"]["sha"])

    async def commit(self, base_tree: str, files: Sequence[PlannedFile], message: str) -> str:
        """The new commit's sha; raises RequestFailed as GitHub answered (403/404 without `contents: write`)."""
        entries = [{"path": f.path, "mode": "100644", "type": "blob", "content": f.content} for f in files]
        tree = await self._call("POST", "/trees", {"base_tree": base_tree, "tree": entries})
        commit = await self._call(
            "POST", "/commits", {"message": message, "tree": tree["sha"], "parents": [self.head.sha]}
        )
        ref = quote(self.head.ref, safe="/")
        await self._call("PATCH", f"/refs/heads/{ref}", {"sha": commit["sha"], "force": False})
        return str(commit["sha"])


async def commit_tests(gh: Any, head: HeadBranch, tests: Sequence[Any], read: ReadFile, login: str) -> CommitResult:
    """Push `tests` (SuggestedTest-like: path, content) to the head branch in one commit, if allowed."""
    if not head.writable:
        return CommitResult("fork", head.ref)
    if not tests:
        return CommitResult("nothing", head.ref)
    git = GitData(gh, head)
    files, notes = await plan_files(tests, read, git.written_by_us)
    detail = "; ".join(notes)
    if not files:
        return CommitResult("unchanged" if not notes else "nothing", head.ref, detail=detail)
    try:
        base_tree = await git.head_tree()
    except RequestFailed as exc:
        if exc.response.status_code in (404, 409, 422):  # the head commit is gone (force-pushed away)
            return CommitResult("moved", head.ref, detail=detail)
        raise
    try:
        sha = await git.commit(base_tree, files, COMMIT_MESSAGE.format(login=login))
    except RequestFailed as exc:
        status = exc.response.status_code
        if status in (409, 422):  # the branch moved on: not a fast forward
            return CommitResult("moved", head.ref, detail=detail)
        if status in (403, 404):  # "Resource not accessible by integration": no contents: write
            return CommitResult("no-permission", head.ref, detail=detail)
        raise
    return CommitResult("committed", head.ref, sha, tuple(files), detail)
