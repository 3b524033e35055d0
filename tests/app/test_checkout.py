"""The head on disk for tests.verify: GitHub's tarball or `git archive`, extracted after checking every member."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.checkout import CheckoutError, CheckoutLimits, extract_archive, fetch_github_checkout, git_checkout
from app.github import GitHubApp
from app.settings import Settings
from tests.fakes.github import FakeGitHub, shared_app_keys, tarball


def archive(tmp_path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            body = (data or {}).get(info.name)
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def test_a_github_tarball_is_extracted_without_its_top_directory(tmp_path: Path) -> None:
    path = tmp_path / "head.tar.gz"
    path.write_bytes(tarball({"pkg/mod.py": b"x = 1\n", "README.md": b"hi\n"}, top="octo-repo-abc1234"))
    root = extract_archive(path, tmp_path / "out", CheckoutLimits(), strip_top=True)
    assert root.name == "octo-repo-abc1234"
    assert (root / "pkg" / "mod.py").read_bytes() == b"x = 1\n"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([member("top/../../evil.py")], "unsafe path"),
        ([member("/etc/evil")], "unsafe path"),
        ([member("top/dev", tarfile.CHRTYPE)], "special file"),
        ([member("top/fifo", tarfile.FIFOTYPE)], "special file"),
        ([member("top"), member("top/link", tarfile.SYMTYPE, "../../../etc/passwd")], "could not be extracted"),
        ([member("top"), member("top/abs", tarfile.SYMTYPE, "/etc/passwd")], "could not be extracted"),
    ],
)
def test_hostile_archives_are_refused_and_nothing_escapes(
    tmp_path: Path, members: list[tarfile.TarInfo], message: str
) -> None:
    path = archive(tmp_path, members)
    with pytest.raises(CheckoutError, match=message):
        extract_archive(path, tmp_path / "out", CheckoutLimits(), strip_top=True)
    assert not (tmp_path / "evil.py").exists()
    assert not list(tmp_path.parent.glob("evil*"))


def test_caps_on_files_and_unpacked_size(tmp_path: Path) -> None:
    many = archive(tmp_path, [member(f"top/f{i}.py") for i in range(6)], {f"top/f{i}.py": b"1" for i in range(6)})
    with pytest.raises(CheckoutError, match="more than 5 files"):
        extract_archive(many, tmp_path / "a", CheckoutLimits(max_files=5), strip_top=True)
    big = archive(tmp_path, [member("top/big.bin")], {"top/big.bin": b"\0" * 4096})
    with pytest.raises(CheckoutError, match="larger than"):
        extract_archive(big, tmp_path / "b", CheckoutLimits(max_total_bytes=1024), strip_top=True)


def test_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "x.tar.gz"
    path.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(CheckoutError, match="could not be extracted"):
        extract_archive(path, tmp_path / "out", CheckoutLimits(), strip_top=True)


@settings(max_examples=40, deadline=None)
@given(
    names=st.lists(
        st.text(alphabet=st.sampled_from("ab./_-"), min_size=1, max_size=12), min_size=1, max_size=6, unique=True
    )
)
def test_whatever_the_member_names_nothing_lands_outside_the_destination(names: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        path = archive(base, [member("top/" + n) for n in names], {"top/" + n: b"x" for n in names})
        dest = base / "out"
        try:
            extract_archive(path, dest, CheckoutLimits(), strip_top=False)
        except CheckoutError:
            pass
        outside = [p for p in base.rglob("*") if p != path and p != dest and dest not in p.parents]
        assert outside == []


def test_git_checkout_exports_the_commit_not_the_work_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        env = {
            "GIT_AUTHOR_NAME": "a",
            "GIT_AUTHOR_EMAIL": "a@b",
            "GIT_COMMITTER_NAME": "a",
            "GIT_COMMITTER_EMAIL": "a@b",
            "PATH": os.environ["PATH"],
        }
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env)
        return out.stdout.strip()

    git("init", "-q")
    (repo / "mod.py").write_text("VALUE = 1\n")
    git("add", ".")
    git("commit", "-q", "-m", "one")
    sha = git("rev-parse", "HEAD")
    (repo / "mod.py").write_text("VALUE = 2  # uncommitted\n")
    root = git_checkout(repo, sha, tmp_path / "scratch")
    assert (root / "mod.py").read_text() == "VALUE = 1\n"
    with pytest.raises(CheckoutError, match="git archive"):
        git_checkout(repo, "0" * 40, tmp_path / "scratch2")


def test_the_tarball_comes_through_the_installation_client_and_the_archive_redirect(tmp_path: Path) -> None:
    fake = FakeGitHub(42, shared_app_keys().public_pem)
    repo = fake.add_repo("octo", "hello", installation_id=7)
    sha = fake.set_file(repo, "main", "lib/x.py", "X = 1\n")
    settings = Settings.for_tests(app_id=42, private_key=shared_app_keys().private_pem, github_api_url=fake.base_url())
    gh = GitHubApp(settings, transport=fake.transport()).installation_client(7, "d-1")

    root = asyncio.run(fetch_github_checkout(gh, "octo", "hello", sha, tmp_path))
    assert (root / "lib" / "x.py").read_text() == "X = 1\n"
    tarball_call = next(r for r in fake.requests if r.path.endswith(f"/tarball/{sha}"))
    assert tarball_call.headers["authorization"].startswith("token ")
    assert fake.count("GET", r"^/_codeload/") == 1

    with pytest.raises(CheckoutError, match="404"):
        asyncio.run(fetch_github_checkout(gh, "octo", "hello", "f" * 40, tmp_path / "missing"))
    limits = CheckoutLimits(max_archive_bytes=10)
    with pytest.raises(CheckoutError, match="larger than"):
        asyncio.run(fetch_github_checkout(gh, "octo", "hello", sha, tmp_path / "small", limits))
