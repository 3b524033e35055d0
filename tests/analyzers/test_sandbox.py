"""The sandbox stops tests that reach the network, write outside their directory or never end; the caller goes on."""

from __future__ import annotations

import time
from pathlib import Path

from analyzers import sandbox, testgen

CHECKOUT = Path(__file__).parent.parent / "fixtures" / "testgen" / "shop" / "head"

HOSTILE = """
import os
import socket
import subprocess

import shop.mathx


def test_network():
    socket.create_connection(("93.184.216.34", 80), timeout=2)


def test_write_outside():
    with open("/tmp/diffwise-sandbox-escape.txt", "w") as handle:
        handle.write("escaped")


def test_write_into_the_checkout():
    with open(shop.mathx.__file__, "a") as handle:
        handle.write("# tampered")


def test_new_process():
    subprocess.run(["true"], check=False)


def test_inside_is_fine(tmp_path):
    (tmp_path / "ok.txt").write_text("fine")
    assert shop.mathx.gcd(12, 18) == 6
"""

LOOP = """
def test_forever():
    while True:
        pass
"""

MEMORY = """
def test_memory():
    blocks = []
    while True:
        blocks.append(bytearray(64 << 20))
"""


def _env_dump() -> str:
    return "import os\n\ndef test_env():\n    assert sorted(os.environ) == []\n"


def test_violations_are_stopped_and_reported() -> None:
    escape = Path("/tmp/diffwise-sandbox-escape.txt")
    escape.unlink(missing_ok=True)
    before = (CHECKOUT / "src/shop/mathx.py").read_text()
    result = sandbox.run_tests(CHECKOUT, {"tests/test_hostile.py": HOSTILE}, import_root="src")
    assert result.status == "blocked"
    status = {o.name: o.status for o in result.outcomes}
    assert status == {
        "test_network": "blocked",
        "test_write_outside": "blocked",
        "test_write_into_the_checkout": "blocked",
        "test_new_process": "blocked",
        "test_inside_is_fine": "passed",
    }
    text = "\n".join(result.violations)
    assert "network access" in text
    assert "write outside the sandbox" in text
    assert "new process" in text
    assert not escape.exists()
    assert (CHECKOUT / "src/shop/mathx.py").read_text() == before


def test_endless_loop_is_stopped_in_time() -> None:
    started = time.monotonic()
    result = sandbox.run_tests(CHECKOUT, {"tests/test_loop.py": LOOP}, limits=sandbox.Limits(timeout_s=3, cpu_s=10))
    assert result.status == "timeout"
    assert time.monotonic() - started < 30


def test_memory_is_limited() -> None:
    limits = sandbox.Limits(memory_bytes=512 << 20, timeout_s=60)
    result = sandbox.run_tests(CHECKOUT, {"tests/test_memory.py": MEMORY}, limits=limits)
    assert [(o.name, o.status) for o in result.outcomes] == [("test_memory", "failed")]
    assert "MemoryError" in result.outcomes[0].message


def test_environment_is_empty_but_path() -> None:
    result = sandbox.run_tests(CHECKOUT, {"tests/test_env.py": _env_dump()})
    assert result.outcomes[0].status == "failed"
    message = result.outcomes[0].message
    for secret_like in ("ANTHROPIC", "GITHUB", "PRIVATE_KEY", "WEBHOOK_SECRET"):
        assert secret_like not in message
    assert result.isolation in ("namespace+nobody", "namespace", "user namespace", "guard")


def _suggestion(name: str, content: str) -> testgen.SuggestedTest:
    target = testgen.TestTarget("src/shop/mathx.py", "gcd", 15, 19)
    return testgen.SuggestedTest(f"tests/{name}.py", content, (target,), ("no-crash",), "shop.mathx", "src")


GOOD = """
from hypothesis import given, settings, strategies as st

import shop.mathx as mod


@settings(max_examples=20, deadline=None)
@given(a=st.integers(), b=st.integers())
def test_gcd_commutative(a, b):
    assert mod.gcd(a, b) == mod.gcd(b, a)


@settings(max_examples=20, deadline=None)
@given(a=st.integers(), b=st.integers())
def test_gcd_no_crash(a, b):
    assert mod.gcd(a, b) < 1000
"""


def test_verifier_keeps_passing_tests_and_reports_the_rest() -> None:
    suggestions = testgen.TestSuggestions(
        (
            _suggestion("test_hostile", HOSTILE),
            _suggestion("test_loop", LOOP),
            _suggestion("test_good", GOOD),
        )
    )
    result = sandbox.verify_suggestions(suggestions, CHECKOUT, limits=sandbox.Limits(timeout_s=5))
    assert [t.path for t in result.tests] == ["tests/test_good.py"]  # the caller keeps working after both
    kept = result.tests[0].content
    assert "test_gcd_commutative" in kept
    assert "test_gcd_no_crash" not in kept
    assert any("stopped by the sandbox" in n and "network access" in n for n in result.notes)
    assert any("time limit" in n for n in result.notes)
    (finding,) = result.findings
    assert finding.rule == "tests/falsified"
    assert finding.start_line == 15
    assert finding.extra["family"] == "no-crash"
    assert "test_gcd_no_crash(" in finding.extra["example"]


def test_falsifying_example_parsing() -> None:
    text = "E   AssertionError\nE       Falsifying example: test_x(\nE           a=1,\nE           b='x',\nE       )\n"
    assert sandbox.falsifying_example(text) == "test_x(\n    a=1,\n    b='x',\n)"
    assert sandbox.falsifying_example("nothing here") == ""


def test_mutants_change_one_site_of_the_function() -> None:
    source = (CHECKOUT / "src/shop/mathx.py").read_text()
    found = sandbox.mutants(source, "clamp")
    descriptions = [m.description for m in found]
    assert any("comparison -> GtE" in d for d in descriptions)
    assert any("return None" in d for d in descriptions)
    assert all(m.source != source for m in found)
    for mutant in found:
        compile(mutant.source, "mutant", "exec")
        assert "def gcd(a: int, b: int) -> int:\n    a, b = (abs(a), abs(b))" in mutant.source  # others untouched
    only_line = sandbox.mutants(source, "clamp", lines={13})
    assert only_line
    assert {m.line for m in only_line} == {13}
    assert sandbox.mutants(source, "missing") == []
