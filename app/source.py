"""The GitHub Source: PR metadata (uncached), changed files (paginated), file contents at a ref, listings."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from githubkit import GitHub
from githubkit.exception import RequestFailed

from analyzers.diff import GITHUB_FILES_API_LIMIT, ChangeSet, FileStatus, Skipped
from app.errors import PermanentError
from app.events import PullRequest
from app.pipeline import PullInfo

RAW = "application/vnd.github.raw"
DIFF = "application/vnd.github.diff"
JSON = "application/vnd.github+json"
PER_PAGE = 100
MAX_FILE_BYTES = 1_000_000  # the pipeline's own limit; larger files are listed as skipped
MAX_READ_FILES = 300  # contents reads per review (one API call each)
BINARY_SNIFF = 8000
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass(frozen=True)
class FileText:
    """One file at one ref: its text, or why it could not be read (absent → both None)."""

    path: str
    ref: str
    text: str | None
    skipped: str | None = None


@dataclass(frozen=True)
class PullFiles:
    changeset: ChangeSet
    listed: int  # items GitHub returned
    total: int  # the PR's changed_files (may exceed GitHub's 3,000-file listing cap)

    @property
    def truncated(self) -> bool:
        return self.total > self.listed


class DiffTooLarge(Exception):
    """GitHub refuses the diff media type for PRs over 300 files: use the files API."""


def pull_info(owner: str, repo: str, pr: PullRequest) -> PullInfo:
    return PullInfo(
        owner=owner,
        repo=repo,
        number=pr.number,
        title=pr.title,
        body=pr.body or "",
        base_sha=pr.base.sha,
        head_sha=pr.head.sha,
        author=pr.user.login,
    )


def classify_bytes(data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str | None, str | None]:
    """(text, None) for readable text, (None, reason) for a file we do not analyze."""
    if len(data) > limit:
        return None, f"too large ({len(data):,} bytes; limit {limit:,})"
    if b"\0" in data[:BINARY_SNIFF]:
        return None, "binary file"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text"


class GitHubSource:
    """Reads one repository through an installation client. Every call is a single, uncached request."""

    def __init__(
        self,
        gh: GitHub[Any],
        owner: str,
        repo: str,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        concurrency: int = 8,
    ) -> None:
        self.gh = gh
        self.owner = owner
        self.repo = repo
        self.max_file_bytes = max_file_bytes
        self._semaphore = asyncio.Semaphore(concurrency)

    @property
    def _base(self) -> str:
        return f"/repos/{self.owner}/{self.repo}"

    async def _get(self, path: str, *, params: dict[str, Any] | None = None, accept: str = JSON) -> Any:
        return await self.gh.arequest("GET", path, params=params, headers={"Accept": accept})

    async def _paginate(
        self, path: str, *, limit: int | None = None, params: dict[str, Any] | None = None
    ) -> list[Any]:
        items: list[Any] = []
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": PER_PAGE, **(params or {})}
        while url is not None:
            response = await self._get(url, params=query)
            page = response.json()
            if not isinstance(page, list):
                raise PermanentError(f"GET {path}: expected a list, got {type(page).__name__}")
            items.extend(page)
            if limit is not None and len(items) >= limit:
                return items[:limit]
            match = _NEXT.search(response.headers.get("link", ""))
            url, query = (match.group(1), None) if match else (None, None)
        return items

    # ---- pull requests ------------------------------------------------------------------
    async def pull(self, number: int) -> tuple[PullRequest, dict[str, Any]]:
        """The PR as it is now (never from an HTTP cache): tolerant model plus the raw JSON."""
        try:
            response = await self._get(f"{self._base}/pulls/{number}")
        except RequestFailed as exc:
            if exc.response.status_code in (404, 410):
                raise PermanentError(f"{self.owner}/{self.repo}#{number} not found") from exc
            raise
        raw = response.json()
        return PullRequest.model_validate(raw), raw

    async def files(self, number: int, *, total: int | None = None) -> PullFiles:
        """Changed files through the paginated files API (up to GitHub's 3,000), as a ChangeSet."""
        items = await self._paginate(f"{self._base}/pulls/{number}/files", limit=GITHUB_FILES_API_LIMIT)
        changeset = ChangeSet.from_github_files(items)
        return PullFiles(changeset, len(items), max(total or 0, len(items)))

    async def diff(self, number: int) -> str:
        """The diff media type (refused by GitHub over 300 files: DiffTooLarge)."""
        try:
            response = await self._get(f"{self._base}/pulls/{number}", accept=DIFF)
        except RequestFailed as exc:
            if exc.response.status_code in (406, 422):
                raise DiffTooLarge(
                    f"{self.owner}/{self.repo}#{number}: diff too large for the diff media type"
                ) from exc
            raise
        return str(response.text)

    async def compare(self, base: str, head: str) -> ChangeSet:
        response = await self._get(f"{self._base}/compare/{base}...{head}")
        return ChangeSet.from_github_files(response.json().get("files") or [])

    # ---- contents -----------------------------------------------------------------------
    async def read_bytes(
        self, path: str, ref: str | None = None, *, owner: str | None = None, repo: str | None = None
    ) -> bytes | None:
        """A file's bytes at `ref` (None: the default branch) through the raw media type; None if absent."""
        base = f"/repos/{owner or self.owner}/{repo or self.repo}"
        params = {"ref": ref} if ref else None
        try:
            async with self._semaphore:
                response = await self._get(f"{base}/contents/{_quote_path(path)}", params=params, accept=RAW)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        if response.headers.get("content-type", "").startswith("application/json"):
            return None  # a directory listing, not a file
        return bytes(response.content)

    async def read_text(self, path: str, ref: str) -> FileText:
        data = await self.read_bytes(path, ref)
        if data is None:
            return FileText(path, ref, None)
        text, reason = classify_bytes(data, self.max_file_bytes)
        return FileText(path, ref, text, reason)

    async def read_many(self, paths: Iterable[str], ref: str) -> dict[str, FileText]:
        """Concurrent reads (bounded), one request per file."""
        unique = list(dict.fromkeys(paths))
        results = await asyncio.gather(*(self.read_text(p, ref) for p in unique))
        return {r.path: r for r in results}

    async def read_file(self, owner: str, repo: str, path: str, ref: str | None) -> bytes | None:
        """app.policy_loader's FileReader: any repository of this installation; ref None → its default branch."""
        return await self.read_bytes(path, ref, owner=owner, repo=repo)

    async def head_files(
        self,
        changeset: ChangeSet,
        ref: str,
        *,
        wanted: Callable[[str], bool] | None = None,
        max_files: int = MAX_READ_FILES,
    ) -> tuple[dict[str, str], list[Skipped]]:
        """Texts of the changed files at `ref` and the files that will not be analyzed, with the reason.

        Removed files and paths `wanted` refuses (e.g. excluded by the policy) are not fetched at all; past
        `max_files` reads the rest are skipped, so one huge PR cannot spend the installation's rate limit.
        """
        paths = [
            f.path
            for f in changeset.files
            if f.status is not FileStatus.REMOVED and f.hunks and (wanted is None or wanted(f.path))
        ]
        over = [Skipped(p, f"over the {max_files}-file limit of one review") for p in paths[max_files:]]
        texts = await self.read_many(paths[:max_files], ref)
        contents = {p: t.text for p, t in texts.items() if t.text is not None}
        skipped = [Skipped(p, t.skipped) for p, t in texts.items() if t.skipped is not None]
        return contents, skipped + over

    # ---- conversation -------------------------------------------------------------------
    async def reviews(self, number: int) -> list[dict[str, Any]]:
        return await self._paginate(f"{self._base}/pulls/{number}/reviews")

    async def review_comments(self, number: int) -> list[dict[str, Any]]:
        return await self._paginate(f"{self._base}/pulls/{number}/comments")

    async def issue_comments(self, number: int) -> list[dict[str, Any]]:
        return await self._paginate(f"{self._base}/issues/{number}/comments")

    async def permission(self, login: str) -> str:
        """The user's repository permission (admin|maintain|write|triage|read|none) via the collaborator API."""
        try:
            response = await self._get(f"{self._base}/collaborators/{login}/permission")
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return "none"
            raise
        data = response.json()
        return str(data.get("role_name") or data.get("permission") or "none")


def _quote_path(path: str) -> str:
    from urllib.parse import quote

    return quote(path.lstrip("/"), safe="/")
