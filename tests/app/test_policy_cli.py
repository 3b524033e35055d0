"""`diffwise config validate|schema` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.policy import schema_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policy"


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(FIXTURES / "full.yml")]) == 0
    assert capsys.readouterr().out.endswith("full.yml: OK\n")


def test_validate_prints_file_line_key_message_and_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES.parents[2])
    assert main(["config", "validate", "tests/fixtures/policy/invalid.yml"]) == 1
    captured = capsys.readouterr()
    assert captured.out == (FIXTURES / "invalid.expected.txt").read_text(encoding="utf-8")
    assert captured.err == "tests/fixtures/policy/invalid.yml: 5 problems\n"


def test_validate_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["config", "validate", str(tmp_path / "nope.yml")]) == 1
    assert "cannot read the file" in capsys.readouterr().out


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    out = capsys.readouterr().out
    assert out == schema_text()
    assert json.loads(out)["additionalProperties"] is False


def test_validate_notes_extends_it_cannot_follow(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy = tmp_path / "diffwise.yml"
    policy.write_text("_extends: acme/.github\nreview:\n  drafts: true\n", encoding="utf-8")
    assert main(["config", "validate", str(policy)]) == 0
    captured = capsys.readouterr()
    assert captured.out.endswith("diffwise.yml: OK\n")
    assert "`_extends: acme/.github` is read from GitHub by the app" in captured.err
