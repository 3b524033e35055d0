"""`diffwise review` end to end on real git repositories, in a subprocess (exit codes, formats)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.output import review_to_json
from app.pipeline import Review

ROOT = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "app.py").write_text("import subprocess\n\n\ndef run(cmd):\n    return cmd\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    (tmp_path / "app.py").write_text(
        "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    )
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\x00\x00binary")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "head")
    return tmp_path


def diffwise(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=ROOT, env=env, check=False
    )


def test_json_output_follows_the_contract(repo: Path) -> None:
    proc = diffwise("review", str(repo), "--base", "HEAD~1", "--head", "HEAD", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["version"] == 1
    assert set(doc) >= {"findings", "tests", "skipped", "llm"}
    assert {"path": "logo.png", "reason": "binary file"} in doc["skipped"]
    assert doc["llm"]["used"] is False
    assert "app.py" in doc["reviewed_files"]
    for f in doc["findings"]:
        assert set(f) >= {"id", "rule", "analyzer", "severity", "cwe", "path", "start_line", "line", "message"}


def test_no_key_says_llm_was_skipped(repo: Path) -> None:
    proc = diffwise("review", str(repo), "--base", "HEAD~1")
    assert proc.returncode == 0, proc.stderr
    assert "no ANTHROPIC_API_KEY" in proc.stdout


def test_bad_inputs_exit_2_with_a_clear_line(tmp_path: Path, repo: Path) -> None:
    proc = diffwise("review", str(tmp_path / "nope"), "--base", "HEAD")
    assert proc.returncode == 2
    assert "not a git repository" in proc.stderr
    proc = diffwise("review", str(repo), "--base", "no-such-ref")
    assert proc.returncode == 2
    assert "git diff failed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_output_file_and_version(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    proc = diffwise("review", str(repo), "--base", "HEAD~1", "--format", "markdown", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("# diffwise review")
    assert diffwise("--version").stdout.startswith("diffwise ")


def test_empty_review_json_shape() -> None:
    doc = review_to_json(Review())
    assert doc == {
        "version": 1,
        "findings": [],
        "tests": [],
        "skipped": [],
        "llm": {"used": False, "model": None, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0},
        "failed_analyzers": [],
        "notes": [],
        "reviewed_files": [],
    }
