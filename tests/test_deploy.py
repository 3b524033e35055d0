"""Deployment files: what can be checked without a Docker engine or helm (both unavailable here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def test_manifest_asks_for_least_privilege() -> None:
    manifest = yaml.safe_load((ROOT / "app.yml").read_text())
    assert manifest["default_permissions"] == {
        "pull_requests": "write",
        "checks": "write",
        "issues": "write",
        "contents": "read",
        "metadata": "read",
    }
    assert set(manifest["default_events"]) == {
        "pull_request",
        "issue_comment",
        "pull_request_review_comment",
        "pull_request_review",
        "installation",
        "installation_repositories",
    }


def test_compose_services_run_real_commands() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "worker", "redis"}
    for name in ("web", "worker"):
        assert services[name]["command"][0] in COMMANDS
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert services[name]["secrets"] == ["github_app_private_key"]
    assert "--no-worker" in services["web"]["command"]
    port = services["web"]["command"][services["web"]["command"].index("--port") + 1]
    assert services["web"]["ports"] == [f"{port}:{port}"]
    assert "github_app_private_key" in compose["secrets"]


def test_dockerfile_copies_existing_paths_and_runs_as_non_root() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, flags=re.M):
        for part in src.split():
            assert (ROOT / part).exists(), part
    assert "USER diffwise" in text
    assert "/healthz" in text
    assert 'ENTRYPOINT ["diffwise"]' in text
    assert text.count("FROM ") == 2  # multi-stage


def test_helm_chart_values_and_templates_agree() -> None:
    chart = ROOT / "deploy" / "helm" / "diffwise"
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["name"] == "diffwise"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    assert values["worker"]["replicas"] >= 1
    web = (chart / "templates" / "web.yaml").read_text()
    worker = (chart / "templates" / "worker.yaml").read_text()
    assert "path: /healthz" in web
    assert "path: /readyz" in web
    for text in (web, worker):
        args = re.search(r"args: \[(.+)\]", text)
        assert args is not None
        assert args.group(1).split(",")[0].strip('" ') in COMMANDS
    referenced = set(
        re.findall(r"\.Values\.([a-zA-Z]+)", "".join(p.read_text() for p in (chart / "templates").iterdir()))
    )
    assert referenced <= set(values), referenced - set(values)
