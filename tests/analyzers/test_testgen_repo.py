"""End to end on fixture repositories: the suggested modules run under pytest and pass; a planted bug is found."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analyzers import sandbox, testgen
from analyzers.diff import ChangeSet

FIXTURES = Path(__file__).parent.parent / "fixtures" / "testgen"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _repo(tmp_path: Path, name: str) -> Path:
    repo = tmp_path / name
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    shutil.copytree(FIXTURES / name / "base", repo, dirs_exist_ok=True)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    shutil.copytree(FIXTURES / name / "head", repo, dirs_exist_ok=True)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "head")
    return repo


def _request(repo: Path, **kwargs: object) -> testgen.TestRequest:
    def read_head(path: str) -> str | None:
        file = repo / path
        return file.read_text() if file.is_file() else None

    def read_base(path: str) -> str | None:
        proc = subprocess.run(["git", "-C", str(repo), "show", f"HEAD~1:{path}"], capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else None

    changeset = ChangeSet.from_git(repo, "HEAD~1", "HEAD")
    return testgen.TestRequest(changeset, read_head, read_base, max_functions=20, max_examples=25, **kwargs)  # type: ignore[arg-type]


def test_generated_modules_run_and_pass(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "shop")
    result = testgen.synthesize_tests(_request(repo))
    targets = {t.targets[0].function for t in result.tests}
    assert {"total", "clamp", "gcd", "insertion_sort", "encode_record", "decode_record"} <= targets
    assert {"describe", "add_money", "normalize_whitespace"} <= targets
    assert "_private_helper" not in targets
    families = {f for t in result.tests for f in t.properties}
    assert {"equivalence", "roundtrip", "idempotent", "sorted", "clamp", "commutative", "no-crash"} <= families
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".git"))
    for test in result.tests:
        (copy / test.path).parent.mkdir(exist_ok=True)
        (copy / test.path).write_text(test.content)
    command = testgen.default_run_command(result.tests)
    assert command.startswith("PYTHONPATH=src python -m pytest tests/test_diffwise_shop_")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(t.path for t in result.tests)],
        cwd=copy,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy / "src")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert " passed" in proc.stdout
    assert "failed" not in proc.stdout


def test_planted_bug_becomes_a_finding_with_a_reproducer(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "buggy")
    verifier = sandbox.make_verifier(repo, sandbox.Limits(timeout_s=120, mutants_per_test=0))
    result = testgen.synthesize_tests(_request(repo, verifier=verifier))
    assert result.findings, result.notes
    by_family = {f.extra["family"]: f for f in result.findings if f.symbol == "rle_decode"}
    assert set(by_family) == {"roundtrip", "equivalence"}
    assert "pairs=[('0', 2)]" in by_family["equivalence"].extra["example"]
    finding = by_family["roundtrip"]
    assert finding.rule == "tests/falsified"
    assert finding.path == "rle/codec.py"
    assert finding.start_line == 16
    example = finding.extra["example"]
    assert "test_rle_encode_roundtrip_rle_decode(" in example
    assert "    text='00'," in example  # shrunk to the smallest run that loses a character
    assert "Reproducer" in finding.message
    kept = {t.targets[0].function: t for t in result.tests}
    assert "roundtrip" not in kept["rle_decode"].properties  # the falsified test is not suggested
    assert "test_rle_encode_roundtrip" not in kept["rle_decode"].content


@pytest.mark.parametrize("name", ["shop", "buggy"])
def test_every_suggestion_is_statically_valid(tmp_path: Path, name: str) -> None:
    from analyzers.testcheck import check_test_module

    repo = _repo(tmp_path, name)
    request = _request(repo)
    candidates, _ = testgen.find_candidates(request)
    names = testgen.module_names_reader(candidates)
    for test in testgen.synthesize_tests(request).tests:
        assert check_test_module(test.content, module_names=names) == []
        compile(test.content, test.path, "exec")


def test_verification_prefers_tests_that_kill_mutants_of_the_changed_lines(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "shop")
    only = (testgen.TestTarget("src/shop/mathx.py", "total"), testgen.TestTarget("src/shop/mathx.py", "gcd"))
    verifier = sandbox.make_verifier(repo, sandbox.Limits(timeout_s=120))
    result = testgen.synthesize_tests(_request(repo, verifier=verifier, only=only))
    assert result.findings == ()
    assert [t.targets[0].function for t in result.tests] == ["total", "gcd"]
    (total,) = [t for t in result.tests if t.targets[0].function == "total"]
    assert total.mutation_lines == (7,)
    assert any("kills 1 of 1 mutant(s) of the changed lines" in n for n in result.notes), result.notes


def test_the_tree_sitter_syntax_map_selects_the_same_targets(tmp_path: Path) -> None:
    syntax = pytest.importorskip("analyzers.syntax")
    repo = _repo(tmp_path, "shop")
    request = _request(repo)
    syntax_map = syntax.build_syntax_map(request.changeset, request.read_head)
    with_map = testgen.synthesize_tests(_request(repo, syntax=syntax_map))
    without = testgen.synthesize_tests(request)
    assert sorted(t.targets[0].function for t in with_map.tests) == sorted(t.targets[0].function for t in without.tests)
