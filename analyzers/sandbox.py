"""Opt-in verification: run suggested tests in a sandboxed subprocess; falsified properties become findings."""

from __future__ import annotations

import ast
import contextlib
import ctypes
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Literal

from analyzers.base import Confidence, Finding, Severity
from analyzers.testgen import SuggestedTest, TestSuggestions

Status = Literal["passed", "failed", "error", "timeout", "blocked", "skipped"]
NOBODY = 65534
CLONE_NEWNET = 0x40000000
_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "node_modules", "__pycache__", ".hypothesis", ".tox", ".mypy_cache"
)
_OUTPUT_CAP = 200_000


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 120.0  # wall clock for one test file
    cpu_s: int = 120
    memory_bytes: int = 2 << 30  # address space
    file_bytes: int = 64 << 20  # the largest file a test may write
    open_files: int = 256
    mutants_per_test: int = 3  # mutants of the changed lines each kept test of a modified function meets


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # not a pytest test class

    name: str  # test function name
    status: Status
    message: str = ""
    example: str = ""  # Hypothesis's shrunk falsifying example, when there is one


@dataclass(frozen=True)
class RunResult:
    status: Literal["ok", "timeout", "blocked", "error"]
    outcomes: tuple[TestOutcome, ...]
    violations: tuple[str, ...]  # what the guard stopped (network, writes, processes)
    returncode: int
    output: str
    isolation: str  # "namespace+nobody", "namespace", "user namespace" or "guard" (the guard always runs)

    def by_status(self, status: Status) -> list[TestOutcome]:
        return [o for o in self.outcomes if o.status == status]


# ---- the guard: loaded in the child through sitecustomize, before any test code --------------------------

GUARD = r'''"""diffwise sandbox guard: refuses network, writes outside the scratch directory, and new processes."""
import os
import sys

_WRITABLE = os.path.realpath(os.environ.get("DIFFWISE_SANDBOX_WRITABLE", "/nonexistent"))
_LOG = os.environ.get("DIFFWISE_SANDBOX_LOG", "")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_NET = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
        "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.bind"}
_PROC = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
         "pty.spawn"}
_PATHS = {"os.remove": 0, "os.rename": 0, "os.replace": 0, "os.rmdir": 0, "os.mkdir": 0, "os.chmod": 0,
          "os.chown": 0, "os.symlink": 1, "os.link": 1, "os.truncate": 0, "shutil.rmtree": 0, "os.utime": 0}


class SandboxViolation(PermissionError):
    pass


def _writable(path):
    if isinstance(path, int):
        return True
    try:
        real = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return real == "/dev/null" or real == _WRITABLE or real.startswith(_WRITABLE + os.sep)


def _refuse(what):
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    line = f"{test}\t{what}\n".encode("utf-8", "replace")
    if _LOG:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    raise SandboxViolation(f"diffwise sandbox: {what}")


def _hook(event, args):
    if event in _NET:
        _refuse(f"network access ({event} {args[1:2]!r})")
    elif event in _PROC:
        _refuse(f"new process ({event})")
    elif event == "open":
        path, mode, flags = args
        if path == _LOG:
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
        if writing and not _writable(path):
            _refuse(f"write outside the sandbox ({path!r})")
    elif event in _PATHS:
        index = _PATHS[event]
        if len(args) > index and not _writable(args[index]):
            _refuse(f"file change outside the sandbox ({event} {args[index]!r})")


sys.addaudithook(_hook)
'''


# Deterministic runs: the same change gets the same verdict; no example database is written.
CONFTEST = """from hypothesis import settings

settings.register_profile("diffwise-sandbox", derandomize=True, database=None)
settings.load_profile("diffwise-sandbox")
"""


# Replaces the module under test by a mutant before any test imports it.
MUTANT_CONFTEST = """
from hypothesis import Phase

# against a mutant only "does a test fail" matters: no shrinking
settings.register_profile(
    "diffwise-mutant", derandomize=True, database=None, phases=[Phase.explicit, Phase.reuse, Phase.generate]
)
settings.load_profile("diffwise-mutant")

import importlib
import importlib.util
import pathlib
import sys

_name = {module!r}
_spec = importlib.util.find_spec(_name)
_mutant = importlib.util.module_from_spec(_spec)
_source = pathlib.Path(__file__).with_name("mutant_source.txt").read_text()
exec(compile(_source, _spec.origin, "exec"), _mutant.__dict__)
sys.modules[_name] = _mutant
_parent, _, _leaf = _name.rpartition(".")
if _parent:
    setattr(importlib.import_module(_parent), _leaf, _mutant)
"""


# ---- running ---------------------------------------------------------------------------------------------


@cache
def _user_namespace_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@cache
def _isolation() -> str:
    """The strongest isolation this host allows, probed once with a trivial child."""
    if os.geteuid() == 0:
        for isolation in ("namespace+nobody", "namespace"):
            try:
                probe = subprocess.run(
                    [sys.executable, "-c", "pass"],
                    preexec_fn=_preexec(Limits(), isolation),
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError):
                continue
            if probe.returncode == 0:
                return isolation
    return "user namespace" if _user_namespace_works() else "guard"


def _preexec(limits: Limits, isolation: str) -> Callable[[], None]:
    def setup() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if isolation.startswith("namespace"):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                os._exit(97)  # never run unisolated when isolation was promised
        if isolation == "namespace+nobody":
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

    return setup


def _make_read_only(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(dirpath, name), 0o444, follow_symlinks=False)
        os.chmod(dirpath, 0o555)


def _hand_to_nobody(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chown(dirpath, NOBODY, NOBODY)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)


@contextlib.contextmanager
def _workspace(checkout: Path) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="diffwise-sandbox-"))
    try:
        os.chmod(work, 0o755)
        shutil.copytree(checkout, work / "repo", symlinks=True, ignore=_IGNORE)
        _make_read_only(work / "repo")
        yield work
    finally:
        for dirpath, _dirs, _files in os.walk(work):
            with contextlib.suppress(OSError):
                os.chmod(dirpath, 0o755)
        shutil.rmtree(work, ignore_errors=True)


def run_tests(
    checkout: Path,
    files: Mapping[str, str],
    *,
    import_root: str = "",
    limits: Limits | None = None,
    workspace: Path | None = None,
    mutant: tuple[str, str] | None = None,
) -> RunResult:
    """Run test modules {relative path: content} against a read-only copy of `checkout`, sandboxed.

    `mutant` is (dotted module, source): that module is replaced by the source for this run.
    """
    limits = limits or Limits()
    if workspace is None:
        with _workspace(checkout) as work:
            return _run(work, files, import_root, limits, mutant)
    return _run(workspace, files, import_root, limits, mutant)


def _run(
    work: Path, files: Mapping[str, str], import_root: str, limits: Limits, mutant: tuple[str, str] | None = None
) -> RunResult:
    isolation = _isolation()
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "tmp").mkdir(parents=True)
    guard = work / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD)
    names: list[str] = []
    (scratch / "suite").mkdir()
    conftest = CONFTEST
    if mutant is not None:
        conftest += MUTANT_CONFTEST.format(module=mutant[0])
        (scratch / "suite" / "mutant_source.txt").write_text(mutant[1])
    (scratch / "suite" / "conftest.py").write_text(conftest)
    for rel, content in files.items():
        target = scratch / "suite" / Path(rel).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        names.append(str(target.relative_to(scratch)))
    log = scratch / "sandbox.log"
    report = scratch / "report.xml"
    if isolation == "namespace+nobody":
        _hand_to_nobody(scratch)
    repo = work / "repo"
    path_entries = [str(guard), str(repo / import_root) if import_root else str(repo)]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(path_entries),
        "HOME": str(scratch),
        "TMPDIR": str(scratch / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "DIFFWISE_SANDBOX_WRITABLE": str(scratch),
        "DIFFWISE_SANDBOX_LOG": str(log),
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    command += ["--rootdir", str(scratch), "-o", "addopts=", "-W", "ignore", f"--junitxml={report}", *names]
    if isolation == "user namespace":
        command = ["unshare", "-rn", "--", *command]
    proc = subprocess.Popen(
        command,
        cwd=scratch,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_preexec(limits, isolation),  # limits are set in the child
    )
    timed_out = False
    try:
        raw, _ = proc.communicate(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raw, _ = proc.communicate()
    output = raw.decode("utf-8", "replace")[-_OUTPUT_CAP:]
    violations = tuple(_read_log(log))
    outcomes = _outcomes(report, violations)
    returncode = proc.returncode
    cpu_killed = returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not timed_out
    if timed_out or cpu_killed:
        status: Literal["ok", "timeout", "blocked", "error"] = "timeout"
    elif violations:
        status = "blocked"
    elif returncode not in (0, 1) or not outcomes:
        status = "error"
    else:
        status = "ok"
    return RunResult(status, outcomes, violations, returncode, output, isolation)


def _read_log(log: Path) -> list[str]:
    try:
        text = log.read_text("utf-8", "replace")[:_OUTPUT_CAP]
    except OSError:
        return []
    return list(dict.fromkeys(line for line in text.splitlines() if line.strip()))[:50]


_EXAMPLE = re.compile(r"(Falsifying example|Failing test case): ")


def falsifying_example(text: str) -> str:
    """The shrunk example Hypothesis printed ("Falsifying example: f(x=1)"), without pytest's `E` prefixes."""
    lines = [re.sub(r"^E {0,7}", "", line) for line in text.splitlines()]
    for i, line in enumerate(lines):
        found = _EXAMPLE.search(line)
        if not found:
            continue
        out = [line[found.end() :].strip()]
        depth = out[0].count("(") - out[0].count(")")
        for follow in lines[i + 1 :]:
            if depth <= 0:
                break
            out.append(follow.rstrip())
            depth += follow.count("(") - follow.count(")")
        return out[0] + ("\n" + textwrap.dedent("\n".join(out[1:])) if len(out) > 1 else "")
    return ""


def _outcomes(report: Path, violations: Sequence[str]) -> tuple[TestOutcome, ...]:
    try:
        if report.stat().st_size > 20 << 20:
            return ()
        root = ET.parse(report).getroot()  # our pytest report, size-capped
    except (OSError, ET.ParseError):
        return ()
    blocked = {line.split("\t", 1)[0].rsplit("::", 1)[-1] for line in violations}
    out: list[TestOutcome] = []
    for case in root.iter("testcase"):
        name = case.get("name", "")
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if name in blocked:
            detail = next((v.split("\t", 1)[-1] for v in violations if v.split("\t", 1)[0].endswith(name)), "")
            out.append(TestOutcome(name, "blocked", detail))
        elif failure is not None:
            text = (failure.text or "") + "\n" + (failure.get("message") or "")
            out.append(TestOutcome(name, "failed", failure.get("message", "")[:2000], falsifying_example(text)))
        elif error is not None:
            out.append(TestOutcome(name, "error", (error.get("message") or "")[:2000]))
        elif skipped is not None:
            out.append(TestOutcome(name, "skipped"))
        else:
            out.append(TestOutcome(name, "passed"))
    return tuple(out)


# ---- from run results to suggestions and findings ----------------------------------------------------------

_FAMILY_BY_SUFFIX = (
    ("_matches_base", "equivalence"),
    ("_roundtrip_", "roundtrip"),
    ("_idempotent", "idempotent"),
    ("_sorted_permutation", "sorted"),
    ("_within_bounds", "clamp"),
    ("_keeps_length", "length"),
    ("_commutative", "commutative"),
    ("_associative", "associative"),
    ("_within_input_range", "bounds"),
    ("_selects_in_order", "selection"),
    ("_parts_concatenate", "parts"),
    ("_fits_width", "width"),
    ("_no_crash", "no-crash"),
)
_TITLES = {
    "equivalence": "behaves differently from the base version",
    "roundtrip": "round trip does not return the input",
    "idempotent": "not idempotent",
    "sorted": "output not sorted or not a permutation",
    "clamp": "result outside the bounds",
    "length": "length not preserved",
    "commutative": "argument order changes the result",
    "associative": "grouping changes the result",
    "no-crash": "crashes on a valid input",
    "bounds": "result outside the range of its input",
    "selection": "wrong selection of items",
    "parts": "parts do not concatenate back to the input",
    "width": "output wider than the width",
}


def family_of(test_name: str) -> str:
    return next((family for suffix, family in _FAMILY_BY_SUFFIX if suffix in test_name), "property")


def remove_tests(content: str, names: set[str]) -> str:
    """The module without the named top-level test functions (decorators included)."""
    tree = ast.parse(content)
    lines = content.splitlines(keepends=True)
    drop: list[tuple[int, int]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            drop.append((start, node.end_lineno or node.lineno))
    for start, end in sorted(drop, reverse=True):
        del lines[start - 1 : end]
    return re.sub(r"\n{4,}", "\n\n\n", "".join(lines))


def falsified_finding(path: str, function: str, line: int, end_line: int, outcome: TestOutcome) -> Finding:
    family = family_of(outcome.name)
    example = outcome.example or "(no example printed)"
    confidence = Confidence.HIGH if family in ("no-crash", "equivalence", "roundtrip") else Confidence.MEDIUM
    severity = Severity.LOW if family == "equivalence" else Severity.MEDIUM
    message = (
        f"`{function}` {_TITLES.get(family, 'violates a property')}: the suggested property test "
        f"`{outcome.name}` fails on this change. Reproducer:\n\n```python\n{example}\n```\n\n{outcome.message[:500]}"
    )
    return Finding(
        rule="tests/falsified",
        analyzer="tests",
        severity=severity,
        confidence=confidence,
        message=message,
        path=path,
        start_line=line or 1,
        end_line=end_line or line or 1,
        title=f"{function}: {_TITLES.get(family, 'property falsified')}",
        symbol=function,
        code=f"{outcome.name}:{example}",
        source="tests",
        extra={"example": example, "test": outcome.name, "family": family},
    )


def verify_suggestions(
    suggestions: TestSuggestions, checkout: Path, *, limits: Limits | None = None
) -> TestSuggestions:
    """Keep the tests that pass on the head; a test that fails becomes a finding with its reproducer.

    Files that time out, touch the network or write outside their directory are dropped and reported.
    """
    kept: list[SuggestedTest] = []
    notes = list(suggestions.notes)
    findings = list(suggestions.findings)
    with _workspace(checkout) as work:
        for test in suggestions.tests:
            result = run_tests(
                checkout, {test.path: test.content}, import_root=test.import_root, limits=limits, workspace=work
            )
            target = test.targets[0]
            if result.status == "timeout":
                notes.append(f"{test.path}: stopped after the sandbox's time limit (an input may loop forever)")
                continue
            if result.status == "blocked":
                notes.append(f"{test.path}: stopped by the sandbox: {'; '.join(sorted(set(result.violations)))[:300]}")
                continue
            if result.status == "error":
                notes.append(f"{test.path}: could not run in the sandbox (exit {result.returncode})")
                continue
            failed = [o for o in result.outcomes if o.status in ("failed", "error")]
            for outcome in failed:
                if outcome.status == "failed":
                    findings.append(
                        falsified_finding(target.path, target.function, target.line, target.end_line, outcome)
                    )
            if not failed:
                kept.append(test)
                continue
            passed = {o.name for o in result.outcomes if o.status == "passed"}
            if passed:
                content = remove_tests(test.content, {o.name for o in failed})
                families = tuple(f for f in test.properties if any(family_of(n) == f for n in passed))
                kept.append(replace(test, content=content, properties=families))
        kept = _rank_by_mutants(kept, checkout, work, limits, notes)
    return TestSuggestions(tuple(kept), tuple(notes), tuple(findings))


def _rank_by_mutants(
    kept: list[SuggestedTest], checkout: Path, work: Path, limits: Limits | None, notes: list[str]
) -> list[SuggestedTest]:
    """Tests of modified functions that kill mutants of the changed lines first; say which kill none."""
    kills: dict[str, int] = {}
    for test in kept:
        if not test.mutation_lines or not test.module:
            continue
        target = test.targets[0]
        try:
            source = (checkout / target.path).read_text()
            limit = (limits or Limits()).mutants_per_test
            found = mutants(source, target.function, lines=set(test.mutation_lines), limit=limit) if limit else []
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
            continue
        if not found:
            continue
        killed = 0
        for mutant in found:
            result = run_tests(
                checkout,
                {test.path: test.content},
                import_root=test.import_root,
                limits=limits,
                workspace=work,
                mutant=(test.module, mutant.source),
            )
            if result.status != "ok" or any(o.status in ("failed", "error") for o in result.outcomes):
                killed += 1
        kills[test.path] = killed
        if killed == 0:
            notes.append(f"{test.path}: kills none of {len(found)} mutant(s) of the changed lines (a weak test)")
        else:
            notes.append(f"{test.path}: kills {killed} of {len(found)} mutant(s) of the changed lines")
    return sorted(kept, key=lambda t: -kills.get(t.path, 0))


def make_verifier(checkout: Path, limits: Limits | None = None) -> Callable[[TestSuggestions], TestSuggestions]:
    """The `verifier` for a TestRequest when the policy opts in (tests.verify: true)."""

    def verify(suggestions: TestSuggestions) -> TestSuggestions:
        return verify_suggestions(suggestions, checkout, limits=limits)

    return verify


# ---- mutants: single-site AST changes of one function (operators, comparisons, constants, returns) --------

_BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
_CMP_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True)
class Mutant:
    description: str
    line: int
    source: str  # the whole mutated module


def _sites(fn: ast.AST) -> list[tuple[ast.AST, str]]:
    docstring = None
    if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) and fn.body:
        first = fn.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            docstring = first.value
    out: list[tuple[ast.AST, str]] = []
    for node in ast.walk(fn):
        if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINOP_SWAPS:
            out.append((node, "op"))
        elif isinstance(node, ast.Compare):
            out.extend((node, f"cmp{i}") for i, op in enumerate(node.ops) if type(op) in _CMP_SWAPS)
        elif isinstance(node, ast.BoolOp):
            out.append((node, "bool"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
            out.append((node, "unary"))
        elif isinstance(node, ast.Constant) and node is not docstring:
            if isinstance(node.value, bool | int | float) or (isinstance(node.value, str) and len(node.value) < 40):
                out.append((node, "const"))
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                out.append((node, "return"))
    return out


def _mutate(node: ast.AST, kind: str) -> str:
    if kind == "op" and isinstance(node, ast.BinOp | ast.AugAssign):
        new = _BINOP_SWAPS[type(node.op)]
        node.op = new()
        return f"operator -> {new.__name__}"
    if kind.startswith("cmp") and isinstance(node, ast.Compare):
        i = int(kind[3:])
        swapped = _CMP_SWAPS[type(node.ops[i])]
        node.ops[i] = swapped()
        return f"comparison -> {swapped.__name__}"
    if kind == "bool" and isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return "boolean operator swapped"
    if kind == "unary" and isinstance(node, ast.UnaryOp):
        node.op = ast.UAdd() if isinstance(node.op, ast.USub) else ast.Not()
        if isinstance(node.op, ast.Not):  # `not x` -> `not not x`, i.e. the negation dropped
            node.operand = ast.UnaryOp(ast.Not(), node.operand)
        return "unary operator dropped"
    if kind == "const" and isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            node.value = not value
        elif isinstance(value, int | float):
            node.value = value + 1
        else:
            node.value = "" if value else "X"
        return f"constant {value!r} -> {node.value!r}"
    if kind == "return" and isinstance(node, ast.Return):
        node.value = ast.Constant(None)
        return "return None"
    raise ValueError(kind)


def _find_function(tree: ast.Module, qualname: str) -> ast.AST | None:
    scope: list[ast.stmt] = tree.body
    parts = qualname.split(".")
    for i, part in enumerate(parts):
        found = next(
            (
                n
                for n in scope
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n.name == part
            ),
            None,
        )
        if found is None:
            return None
        if i == len(parts) - 1:
            return found
        scope = found.body
    return None


def mutants(source: str, qualname: str, *, lines: set[int] | None = None, limit: int = 50) -> list[Mutant]:
    """Single-site mutants of one function (only sites on `lines` when given), in source order."""
    tree = ast.parse(source)
    fn = _find_function(tree, qualname)
    if fn is None:
        return []
    count = len(_sites(fn))
    out: list[Mutant] = []
    for index in range(count):
        fresh = ast.parse(source)
        target = _find_function(fresh, qualname)
        assert target is not None
        node, kind = _sites(target)[index]
        line = getattr(node, "lineno", 0)
        if lines is not None and line not in lines:
            continue
        description = _mutate(node, kind)
        ast.fix_missing_locations(fresh)
        try:
            text = ast.unparse(fresh)
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError):
            continue
        out.append(Mutant(f"line {line}: {description}", line, text))
        if len(out) >= limit:
            break
    return out
