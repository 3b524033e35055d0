"""The GitHub Action entry end to end: a real git checkout, a synthetic event payload, the fake GitHub."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from app import action
from app.comments import SUMMARY_MARKER, marker_ids
from tests.fakes.github import FakeGitHub, FakeRepo, serve_fake, shared_app_keys

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ghs_workflowtoken0123456789abcdef"
BASE = {
    "lib/util.py": "def add(a, b):\n    return a + b\n",
    ".github/diffwise.yml": "comments:\n  max_comments: 1\nanalyzers:\n  external:\n    enabled: false\n",
}
HEAD = {
    "app/run.py": (
        "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n\n\n"
        "def calc(expression):\n    return eval(expression)\n"
    ),
    # The PR tries to switch the review off; the base commit's policy still applies.
    ".github/diffwise.yml": "comments:\n  max_comments: 0\nanalyzers:\n  security:\n    enabled: false\n",
}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True, text=True)
    return out.stdout.strip()


def commit_files(repo: Path, files: dict[str, str], message: str) -> str:
    for path, text in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class Workflow:
    fake: FakeGitHub
    repo: FakeRepo
    checkout: Path
    env: dict[str, str]
    base_sha: str
    head_sha: str


@pytest.fixture
def workflow(tmp_path: Path) -> Iterator[Workflow]:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    git(checkout, "init", "-q", "-b", "main")
    git(checkout, "config", "user.email", "dev@example.com")
    git(checkout, "config", "user.name", "dev")
    base_sha = commit_files(checkout, BASE, "base")
    git(checkout, "checkout", "-q", "-b", "feature")
    head_sha = commit_files(checkout, HEAD, "feature")

    fake = FakeGitHub(1, shared_app_keys().public_pem)
    repo = fake.add_repo("octo", "action", installation_id=3)
    fake.add_pull(repo, 7, base=BASE, head=HEAD, author="dev", title="Add runner")  # same diff on the fake
    fake.tokens[TOKEN] = (3, datetime.now(UTC) + timedelta(hours=1))  # the workflow's GITHUB_TOKEN

    event = {
        "action": "opened",
        "number": 7,
        "pull_request": {
            "number": 7,
            "title": "Add runner",
            "body": "",
            "user": {"login": "dev"},
            "base": {"sha": base_sha, "ref": "main"},
            "head": {"sha": head_sha, "ref": "feature"},
        },
        "repository": {"full_name": "octo/action"},
    }
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    with serve_fake(fake) as api_url:
        env = {
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REPOSITORY": "octo/action",
            "GITHUB_API_URL": api_url,
            "GITHUB_SERVER_URL": "https://github.test",
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_WORKSPACE": str(checkout),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
        }
        yield Workflow(fake, repo, checkout, env, base_sha, head_sha)


def test_action_posts_the_review_summary_and_check_and_writes_sarif(workflow: Workflow, tmp_path: Path) -> None:
    sarif = tmp_path / "diffwise.sarif"
    code = action.run(["--no-llm", "--sarif", str(sarif)], env=workflow.env)
    assert code == 0

    repo = workflow.repo
    [review] = repo.reviews
    assert review["event"] == "COMMENT"
    assert review["commit_id"] == workflow.head_sha
    inline = [c for c in repo.review_comments if c["pull_request_review_id"] == review["id"]]
    assert len(inline) == 1  # the base commit's max_comments: 1, not the PR's 0
    assert inline[0]["path"] == "app/run.py"
    assert "<!-- diffwise:finding:" in inline[0]["body"]
    [summary] = [c for c in repo.issue_comments if SUMMARY_MARKER in c["body"]]
    assert "app/run.py" in summary["body"]
    [check] = repo.check_runs
    assert check["name"] == "diffwise"
    assert check["head_sha"] == workflow.head_sha
    assert check["status"] == "completed"
    assert check["conclusion"] == "failure"  # high-severity findings, default fail_on: high
    assert {r.headers["authorization"] for r in workflow.fake.requests} == {f"token {TOKEN}"}

    report = json.loads(sarif.read_text())
    assert report["version"] == "2.1.0"
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in report["runs"][0]["results"]} == {
        "app/run.py"
    }
    assert "app/run.py" in Path(workflow.env["GITHUB_STEP_SUMMARY"]).read_text()


def test_running_again_posts_no_duplicates(workflow: Workflow) -> None:
    assert action.run(["--no-llm"], env=workflow.env) == 0
    assert action.run(["--no-llm"], env=workflow.env) == 0
    repo = workflow.repo
    ids = [i for c in repo.review_comments for i in marker_ids(c["body"])]
    assert ids
    assert len(ids) == len(set(ids))  # no finding commented twice (the cap counts new comments per run)
    assert len([c for c in repo.issue_comments if SUMMARY_MARKER in c["body"]]) == 1


def test_fail_on_sets_the_exit_code_and_no_publish_posts_nothing(workflow: Workflow) -> None:
    assert action.run(["--no-llm", "--no-publish", "--fail-on", "high"], env=workflow.env) == 1
    assert workflow.fake.requests == []


def test_a_shallow_checkout_fetches_the_base_commit(workflow: Workflow, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    url = f"file://{workflow.checkout}"
    subprocess.run(
        ["git", "clone", "-q", "--depth=1", "--branch", "feature", url, str(shallow)], check=True, capture_output=True
    )
    env = {**workflow.env, "GITHUB_WORKSPACE": str(shallow)}
    assert action.run(["--no-llm", "--no-publish"], env=env) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"GITHUB_EVENT_PATH": ""}, "GITHUB_EVENT_PATH is not set"),
        ({"GITHUB_TOKEN": ""}, "GITHUB_TOKEN is not set"),
    ],
)
def test_configuration_mistakes_are_workflow_errors(
    workflow: Workflow, change: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {k: v for k, v in {**workflow.env, **change}.items() if v}
    assert action.run(["--no-llm"], env=env) == 2
    assert message in capsys.readouterr().err


def test_a_push_event_is_not_a_pull_request(workflow: Workflow, capsys: pytest.CaptureFixture[str]) -> None:
    Path(workflow.env["GITHUB_EVENT_PATH"]).write_text(json.dumps({"ref": "refs/heads/main"}))
    assert action.run(["--no-llm"], env=workflow.env) == 2
    assert "pull_request" in capsys.readouterr().err


def test_action_yml_installs_from_its_own_path_and_uploads_sarif() -> None:
    spec = yaml.safe_load((ROOT / "action.yml").read_text())
    assert spec["runs"]["using"] == "composite"
    steps = spec["runs"]["steps"]
    scripts = "\n".join(str(s.get("run", "")) for s in steps)
    assert '"$pip" install' in scripts
    assert '-e "${{ github.action_path }}"' in scripts
    assert "requirements.lock" in scripts
    assert "-m app.action" in scripts
    assert "--sarif" in scripts
    assert any(str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@") for s in steps)
    assert "github-token" in spec["inputs"]


def test_a_read_only_token_still_writes_sarif(
    workflow: Workflow, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow.fake.tokens[TOKEN] = (999, datetime.now(UTC) + timedelta(hours=1))  # cannot write to this repo
    sarif = tmp_path / "out.sarif"
    assert action.run(["--no-llm", "--sarif", str(sarif)], env=workflow.env) == 0
    assert "GitHub refused to post the review (404)" in capsys.readouterr().err
    assert json.loads(sarif.read_text())["runs"][0]["results"]
    assert workflow.repo.reviews == []


def test_verification_exports_the_head_commit_only_when_the_policy_opts_in(workflow: Workflow, tmp_path: Path) -> None:
    from types import SimpleNamespace

    notes: list[str] = []
    git(workflow.checkout, "checkout", "-q", "main")  # like actions/checkout's merge commit: not the head
    off = SimpleNamespace(tests=SimpleNamespace(enabled=True, verify=False))
    assert action.head_checkout(workflow.checkout, workflow.head_sha, off, tmp_path / "a", notes) is None
    on = SimpleNamespace(tests=SimpleNamespace(enabled=True, verify=True))
    root = action.head_checkout(workflow.checkout, workflow.head_sha, on, tmp_path / "b", notes)
    assert root is not None
    assert (root / "app" / "run.py").read_text() == HEAD["app/run.py"]
    assert not (workflow.checkout / "app" / "run.py").exists()  # the work tree was not touched
    assert action.head_checkout(workflow.checkout, "0" * 40, on, tmp_path / "c", notes) is None
    assert notes
    assert notes[0].startswith("Suggested tests were not run (tests.verify): git archive")
