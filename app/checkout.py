"""A copy of a PR's head on disk, for opt-in test verification (`tests.verify`): nothing else needs one.

The App has no clone, so it downloads GitHub's tarball of the head commit (`GET /repos/{o}/{r}/tarball/{sha}`,
a redirect to the archive host, streamed to a file under a size cap); the Action and the CLI export the
commit with `git archive`. Either archive is untrusted PR content, so extraction is checked member by member
before anything is written: no absolute paths, no `..`, no device files or links that leave the tree (the
standard library's `data` filter, PEP 706), and caps on the number of files and their total size.
"""

from __future__ import annotations

import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

MiB = 1 << 20


@dataclass(frozen=True)
class CheckoutLimits:
    max_archive_bytes: int = 100 * MiB  # compressed download
    max_files: int = 20_000
    max_total_bytes: int = 500 * MiB  # uncompressed


def wants_verification(policy: Any) -> bool:
    """Does the repository's policy opt in to running suggested tests (`tests.enabled` and `tests.verify`)?"""
    tests = getattr(policy, "tests", None)
    return bool(getattr(tests, "enabled", True) and getattr(tests, "verify", False))


class CheckoutError(Exception):
    """The head could not be materialised; test verification is skipped with this as the note."""


async def fetch_github_checkout(
    gh: Any, owner: str, repo: str, sha: str, parent: Path, limits: CheckoutLimits | None = None
) -> Path:
    """Download and extract the tarball of `sha` under `parent`; returns the repository root."""
    import asyncio

    import httpx

    limits = limits or CheckoutLimits()
    await asyncio.to_thread(parent.mkdir, parents=True, exist_ok=True)
    archive = parent / "head.tar.gz"
    received = 0
    try:
        async with gh.get_async_client() as client:
            url = f"/repos/{owner}/{repo}/tarball/{sha}"
            async with client.stream("GET", url, headers={"Accept": "application/vnd.github+json"}) as response:
                if response.status_code != 200:
                    raise CheckoutError(f"GitHub answered {response.status_code} for the head's tarball")
                declared = int(response.headers.get("content-length") or 0)
                if declared > limits.max_archive_bytes:
                    raise CheckoutError(_too_big(declared, limits))
                with archive.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        received += len(chunk)
                        if received > limits.max_archive_bytes:
                            raise CheckoutError(_too_big(received, limits))
                        out.write(chunk)
    except httpx.HTTPError as exc:
        raise CheckoutError(f"downloading the head's tarball failed: {type(exc).__name__}") from exc
    # unpacking a repository takes a while: off the event loop, which serves other reviews meanwhile
    return await asyncio.to_thread(extract_archive, archive, parent / "head", limits, strip_top=True)


def git_checkout(repo: Path, sha: str, parent: Path, limits: CheckoutLimits | None = None) -> Path:
    """`git archive` of `sha` from a local clone, extracted under `parent` (the work tree is never touched)."""
    limits = limits or CheckoutLimits()
    parent.mkdir(parents=True, exist_ok=True)
    archive = parent / "head.tar"
    with archive.open("wb") as out:
        proc = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", sha],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
            timeout=300,
        )
    if proc.returncode != 0:
        raise CheckoutError(f"git archive {sha[:12]} failed: {proc.stderr.decode(errors='replace').strip()[:200]}")
    return extract_archive(archive, parent / "head", limits, strip_top=False)


def extract_archive(archive: Path, dest: Path, limits: CheckoutLimits, *, strip_top: bool) -> Path:
    """Extract a (possibly gzipped) tar after checking every member; returns the tree's root under `dest`."""
    if not hasattr(tarfile, "data_filter"):
        raise CheckoutError("safe archive extraction needs Python 3.11.4 or newer")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _checked_members(tar, limits)
            roots = {PurePosixPath(m.name).parts[0] for m in members if PurePosixPath(m.name).parts}
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CheckoutError(f"the head's archive could not be extracted: {type(exc).__name__}: {exc}") from exc
    if strip_top:
        # GitHub's tarball holds one top-level directory, <owner>-<repo>-<short sha>/
        if len(roots) != 1 or not (dest / next(iter(roots))).is_dir():
            raise CheckoutError("the head's tarball does not hold exactly one top-level directory")
        return dest / next(iter(roots))
    return dest


def _checked_members(tar: tarfile.TarFile, limits: CheckoutLimits) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        if member.type == tarfile.XGLTYPE or member.name == "pax_global_header":
            continue  # git's pax header (the commit id), not a file
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            raise CheckoutError(f"the head's archive has an unsafe path: {member.name[:200]!r}")
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise CheckoutError(f"the head's archive has a special file: {member.name[:200]!r}")
        total += max(member.size, 0)
        if len(members) >= limits.max_files:
            raise CheckoutError(f"the head has more than {limits.max_files:,} files; verification skipped")
        if total > limits.max_total_bytes:
            raise CheckoutError(
                f"the head is larger than {limits.max_total_bytes // MiB} MiB unpacked; verification skipped"
            )
        members.append(member)
    return members


def _too_big(size: int, limits: CheckoutLimits) -> str:
    return (
        f"the head's tarball is larger than {limits.max_archive_bytes // MiB} MiB ({size:,} bytes); "
        "verification skipped"
    )
