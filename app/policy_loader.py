"""Loading the policy safely: YAML with limits and line numbers, validation that drops only bad keys, _extends."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from app.errors import RetryLater
from app.policy import POLICY_PATH, POLICY_PATHS, Policy, default_data, leaf_paths, merge

MAX_BYTES = 256 * 1024
MAX_NODES = 10_000  # after alias expansion: a "billion laughs" document stops here
MAX_DEPTH = 32
MAX_EXTENDS_DEPTH = 5
ORG_REPO = ".github"
DEFAULT_ORIGIN = "default"

KeyPath = tuple[str | int, ...]


class FileReader(Protocol):
    """Reads one file of a repository; `ref=None` means that repository's default branch; None if absent."""

    async def read_file(self, owner: str, repo: str, path: str, ref: str | None) -> bytes | None: ...


@dataclass(frozen=True)
class PolicyIssue:
    key_path: str  # dotted, e.g. "review.on[1]"; "" for the document as a whole
    line: int | None  # 1-based line in `source`
    message: str
    source: str = ""  # where the file came from, e.g. "acme/api:.github/diffwise.yml"


@dataclass(frozen=True)
class PolicyResult:
    policy: Policy
    errors: list[PolicyIssue] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # dotted leaf key -> origin ("default" or a file)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class ParsedFile:
    """One policy file as data, with the line of every key path and the issues found while reading it."""

    data: dict[str, Any]
    lines: dict[KeyPath, int]
    issues: list[PolicyIssue]
    source: str


# -- rendering (user-facing text) ------------------------------------------------------------------------


def _too_big(size: int) -> str:
    return f"the file is {size} bytes; the limit is {MAX_BYTES} bytes, so it was ignored"


def format_issue(issue: PolicyIssue, filename: str | None = None) -> str:
    """`file:line: key: message`, the form `diffwise config validate` prints and the comment lists."""
    where = filename or issue.source or POLICY_PATH
    if issue.line is not None:
        where = f"{where}:{issue.line}"
    key = f" {issue.key_path}:" if issue.key_path else ""
    return f"{where}:{key} {issue.message}"


POLICY_COMMENT_MARKER = "<!-- diffwise:policy -->"


def render_policy_comment(issues: Iterable[PolicyIssue]) -> str:
    """The one PR comment about an invalid policy file; the review ran with these keys at their defaults."""
    lines = [
        POLICY_COMMENT_MARKER,
        "**diffwise: the policy file has errors.** The keys below were ignored and their built-in defaults "
        "used; the rest of the policy applies.",
        "",
        "```text",
        *(format_issue(i) for i in issues),
        "```",
        "",
        "Check the file locally with `diffwise config validate .github/diffwise.yml`.",
    ]
    return "\n".join(lines)


def pending_policy_note() -> str:
    return (
        "This pull request changes the diffwise policy file. It was reviewed under the default branch's "
        "policy; the change takes effect once merged."
    )


def pending_policy_change(changeset_paths: Iterable[str]) -> bool:
    """True when the change edits the policy file (which then applies only after merging)."""
    return any(p.lstrip("/") in POLICY_PATHS for p in changeset_paths)


# -- reading YAML ----------------------------------------------------------------------------------------


class _Limits(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


_PLAIN_TAGS = ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")


class _Builder:
    """Turns a composed node graph into plain data, counting nodes after alias expansion."""

    def __init__(self) -> None:
        self.constructor = SafeConstructor()
        self.count = 0
        self.lines: dict[KeyPath, int] = {}
        self.issues: list[tuple[KeyPath, int, str]] = []

    def build(self, node: Node, path: KeyPath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Limits(f"the document expands to more than {MAX_NODES} values (YAML alias bomb?)", None)
        if depth > MAX_DEPTH:
            raise _Limits(f"nesting deeper than {MAX_DEPTH} levels", node.start_mark.line + 1)
        if isinstance(node, ScalarNode):
            return self.constructor.construct_object(node, deep=True)
        if node.tag not in _PLAIN_TAGS:
            raise _Limits(f"unsupported YAML tag {node.tag!r}", node.start_mark.line + 1)
        if isinstance(node, SequenceNode):
            out_list = []
            for index, item in enumerate(node.value):
                item_path = (*path, index)
                self.lines.setdefault(item_path, item.start_mark.line + 1)
                out_list.append(self.build(item, item_path, depth + 1))
            return out_list
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, ScalarNode):
                    self.issues.append((path, line, "keys must be plain strings"))
                    continue
                # The raw text, not the resolved value: YAML 1.1 would turn a key like `on` into True.
                key = str(key_node.value)
                if key == "<<":
                    self.issues.append((path, line, "YAML merge keys (<<) are not supported"))
                    continue
                key_path = (*path, key)
                if key in out:
                    self.issues.append((key_path, line, "duplicate key; the last one wins"))
                self.lines[key_path] = line
                out[key] = self.build(value_node, key_path, depth + 1)
            return out
        raise _Limits("unsupported YAML node", node.start_mark.line + 1)


def parse_policy_text(raw: bytes | str, source: str = POLICY_PATH) -> ParsedFile:
    """Safe YAML (SafeLoader, size and node limits) to a mapping; problems become issues, never exceptions."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > MAX_BYTES:
        return ParsedFile({}, {}, [PolicyIssue("", None, _too_big(size), source)], source)
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return ParsedFile({}, {}, [PolicyIssue("", None, "the file is not UTF-8 text", source)], source)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return ParsedFile({}, {}, [], source)
        builder = _Builder()
        data = builder.build(node, (), 0)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        return ParsedFile({}, {}, [PolicyIssue("", line, f"invalid YAML: {problem}", source)], source)
    except yaml.YAMLError as exc:
        return ParsedFile({}, {}, [PolicyIssue("", None, f"invalid YAML: {exc}", source)], source)
    except _Limits as exc:
        return ParsedFile({}, {}, [PolicyIssue("", exc.line, str(exc), source)], source)
    except RecursionError:  # PyYAML's composer recurses per nesting level: thousands of levels exhaust the stack
        message = "invalid YAML: nested too deeply to read safely"
        return ParsedFile({}, {}, [PolicyIssue("", None, message, source)], source)
    finally:
        loader.dispose()
    if data is None:
        return ParsedFile({}, {}, [], source)
    if not isinstance(data, dict):
        line = node.start_mark.line + 1
        message = "the file must be a mapping of keys (like `review:`), so it was ignored"
        return ParsedFile({}, {}, [PolicyIssue("", line, message, source)], source)
    issues = [PolicyIssue(dotted(p), line, msg, source) for p, line, msg in builder.issues]
    return ParsedFile(data, builder.lines, issues, source)


# -- validating ------------------------------------------------------------------------------------------


def dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _line_for(path: KeyPath, lines: Mapping[KeyPath, int]) -> int | None:
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Policy
    for part in path:
        if model is None or not isinstance(part, str):
            return None
        info = _fields_by_alias(model).get(part)
        annotation = info.annotation if info is not None else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return model


def _fields_by_alias(model: type[BaseModel]) -> dict[str, Any]:
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _message(error: Mapping[str, Any], loc: KeyPath) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = sorted(_fields_by_alias(parent)) if parent is not None else []
        if parent is Policy:
            allowed = [a for a in allowed if a != "_extends"]
        import difflib  # only for a misspelt key: not on every load

        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean `{near[0]}`?" if near else ""
        return f"unknown key{hint} (allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"got {error.get('input')!r}; expected one of {expected}"
    message = str(error.get("msg", "invalid value"))
    got = error.get("input")
    if kind.endswith("_type") and not isinstance(got, dict | list):
        message += f" (got {got!r})"
    return message


def _drop(data: dict[str, Any], path: KeyPath) -> bool:
    """Remove the key at `path` (a path of str keys) from nested dicts; False if it is not there."""
    node: Any = data
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    if isinstance(node, dict) and path and path[-1] in node:
        del node[path[-1]]
        return True
    return False


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def validate_data(
    data: Mapping[str, Any],
    lines: Mapping[KeyPath, int] | None = None,
    origins: Mapping[KeyPath, str] | None = None,
    source: str = POLICY_PATH,
) -> tuple[Policy, list[PolicyIssue], dict[str, Any]]:
    """Validate merged file data; each invalid key is reported (with its line) and dropped to its default."""
    lines = lines or {}
    origins = origins or {}
    work = _copy(dict(data))
    issues: list[PolicyIssue] = []
    for _ in range(50):
        try:
            return Policy.model_validate(work), issues, work
        except ValidationError as exc:
            dropped = False
            for error in exc.errors():
                loc: KeyPath = tuple(error["loc"])
                # A bad list item or a missing field inside an item drops the whole list (back to default).
                cut = next((i for i, part in enumerate(loc) if isinstance(part, int)), len(loc))
                key: KeyPath = loc[:cut] if cut else loc
                origin = _origin_for(key, origins, source)
                issues.append(PolicyIssue(dotted(loc), _line_for(loc, lines), _message(error, loc), origin))
                dropped = _drop(work, key) or dropped
            if not dropped:
                break
    issues.append(PolicyIssue("", None, "the policy could not be repaired; using the built-in defaults", source))
    return Policy.default(), issues, {}


def _origin_for(path: KeyPath, origins: Mapping[KeyPath, str], fallback: str) -> str:
    for end in range(len(path), 0, -1):
        if path[:end] in origins:
            return origins[path[:end]]
    return fallback


# -- _extends --------------------------------------------------------------------------------------------

_EXTENDS = re.compile(
    r"^(?:(?P<owner>[a-z\d](?:[a-z\d]|-(?=[a-z\d])){0,38})/)?(?P<repo>[-_.\w]+)(?::(?P<path>[-_./\w]+\.ya?ml))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FileRef:
    owner: str
    repo: str
    path: str
    ref: str | None  # None: that repository's default branch

    @property
    def label(self) -> str:
        return f"{self.owner}/{self.repo}:{self.path}"


def parse_extends(value: str, owner: str) -> FileRef | None:
    match = _EXTENDS.match(value.strip())
    if match is None or ".." in (match["path"] or "") or (match["path"] or "").startswith("/"):
        return None
    return FileRef(match["owner"] or owner, match["repo"], match["path"] or POLICY_PATH, None)


@dataclass
class _Chain:
    layers: list[ParsedFile] = field(default_factory=list)  # base first
    issues: list[PolicyIssue] = field(default_factory=list)


async def _read_chain(reader: FileReader, first: FileRef, first_raw: bytes) -> _Chain:
    chain = _Chain()
    seen: set[tuple[str, str, str]] = set()
    ref, raw = first, first_raw
    while True:
        seen.add((ref.owner.lower(), ref.repo.lower(), ref.path))
        parsed = parse_policy_text(raw, ref.label)
        chain.issues.extend(parsed.issues)
        extends = parsed.data.pop("_extends", None)
        chain.layers.insert(0, parsed)
        if extends is None:
            return chain
        line = parsed.lines.get(("_extends",))
        target = parse_extends(extends, ref.owner) if isinstance(extends, str) else None
        if target is None:
            message = f"cannot read {extends!r}; expected `repo`, `org/repo` or `[org/]repo:path.yml`"
            chain.issues.append(PolicyIssue("_extends", line, message, ref.label))
            return chain
        if (target.owner.lower(), target.repo.lower(), target.path) in seen:
            chain.issues.append(PolicyIssue("_extends", line, f"{target.label} extends itself (a cycle)", ref.label))
            return chain
        if len(chain.layers) > MAX_EXTENDS_DEPTH:
            message = f"more than {MAX_EXTENDS_DEPTH} levels of _extends; {target.label} was not read"
            chain.issues.append(PolicyIssue("_extends", line, message, ref.label))
            return chain
        try:
            next_raw = await reader.read_file(target.owner, target.repo, target.path, target.ref)
        except RetryLater:
            raise
        except Exception as exc:  # e.g. 403 for a repository outside the installation
            message = f"{target.label} could not be read ({type(exc).__name__})"
            chain.issues.append(PolicyIssue("_extends", line, message, ref.label))
            return chain
        if next_raw is None:
            chain.issues.append(PolicyIssue("_extends", line, f"{target.label} was not found", ref.label))
            return chain
        ref, raw = target, next_raw


def _combine(layers: list[ParsedFile]) -> tuple[dict[str, Any], dict[KeyPath, int], dict[KeyPath, str]]:
    data: dict[str, Any] = {}
    lines: dict[KeyPath, int] = {}
    origins: dict[KeyPath, str] = {}
    for layer in layers:
        data = merge(data, layer.data)
        for path in _leaf_paths(layer.data):
            origins[path] = layer.source
        for path, line in layer.lines.items():
            lines[path] = line
    return data, lines, origins


def _leaf_paths(data: Mapping[str, Any], prefix: KeyPath = ()) -> Iterable[KeyPath]:
    for key, value in data.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and value:
            yield from _leaf_paths(value, path)
        else:
            yield path


def _all_paths(data: Mapping[str, Any], prefix: KeyPath = ()) -> Iterable[KeyPath]:
    for key, value in data.items():
        path = (*prefix, key)
        yield path
        if isinstance(value, Mapping):
            yield from _all_paths(value, path)


def _sources(policy: Policy, origins: Mapping[KeyPath, str]) -> dict[str, str]:
    """Where each effective value came from; `origins` must only hold key paths that survived validation."""
    return {".".join(path): _origin_for(path, origins, DEFAULT_ORIGIN) for path in leaf_paths(policy.to_data())}


def resolve_layers(layers: list[ParsedFile], read_issues: list[PolicyIssue]) -> PolicyResult:
    data, lines, origins = _combine(layers)
    data.pop("_extends", None)
    source = layers[-1].source if layers else POLICY_PATH
    policy, issues, kept = validate_data(data, lines, origins, source)
    kept_paths = set(_all_paths(kept))
    surviving = {path: origin for path, origin in origins.items() if path in kept_paths}
    errors = sorted([*read_issues, *issues], key=lambda e: (e.source, e.line or 0))
    return PolicyResult(policy, errors, _sources(policy, surviving))


async def load_policy(
    reader: FileReader,
    owner: str,
    repo: str,
    default_branch: str,
    *,
    cache: PolicyCache | None = None,
    installation_id: int | None = None,
) -> PolicyResult:
    """The policy a pull request is judged by: the DEFAULT branch's file (never the PR head), else the org's.

    Pass the default branch's head SHA as `default_branch` together with a cache so results are reused per
    installation + repository + SHA; a branch name is fine without a cache.
    """
    key = (installation_id, owner.lower(), repo.lower(), default_branch)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    result = await _load(reader, owner, repo, default_branch)
    if cache is not None:
        cache.put(key, result)
    return result


async def _load(reader: FileReader, owner: str, repo: str, default_branch: str) -> PolicyResult:
    first = FileRef(owner, repo, POLICY_PATH, default_branch)
    raw = await reader.read_file(owner, repo, POLICY_PATH, default_branch)
    if raw is None and repo.lower() != ORG_REPO:
        first = FileRef(owner, ORG_REPO, POLICY_PATH, None)
        raw = await reader.read_file(owner, ORG_REPO, POLICY_PATH, None)
    if raw is None:
        return PolicyResult(Policy.default(), [], _sources(Policy.default(), {}))
    chain = await _read_chain(reader, first, raw)
    return resolve_layers(chain.layers, chain.issues)


def load_policy_file(path: str | Path) -> PolicyResult:
    """A local policy file (CLI `--config`, `config validate`); `_extends` is not followed offline."""
    file = Path(path)
    try:
        size = file.stat().st_size
        # Never read a huge file into memory just to reject it.
        raw = file.read_bytes() if size <= MAX_BYTES else b""
    except OSError as exc:
        issue = PolicyIssue("", None, f"cannot read the file: {exc.strerror or exc}", str(path))
        return PolicyResult(Policy.default(), [issue], _sources(Policy.default(), {}))
    if size > MAX_BYTES:
        issue = PolicyIssue("", None, _too_big(size), str(path))
        return PolicyResult(Policy.default(), [issue], _sources(Policy.default(), {}))
    parsed = parse_policy_text(raw, str(path))
    parsed.data.pop("_extends", None)
    return resolve_layers([parsed], list(parsed.issues))


def load_policy_bytes(raw: bytes | str, source: str = POLICY_PATH) -> PolicyResult:
    parsed = parse_policy_text(raw, source)
    parsed.data.pop("_extends", None)
    return resolve_layers([parsed], list(parsed.issues))


# -- cache -----------------------------------------------------------------------------------------------


class PolicyCache:
    """A bounded LRU of load results keyed by installation + repo + default-branch SHA, with an age limit
    because an `_extends` base in another repository can change without the key changing."""

    def __init__(self, maxsize: int = 256, ttl_seconds: float = 300.0) -> None:
        self.maxsize = maxsize
        self.ttl_seconds = ttl_seconds
        self._items: OrderedDict[Any, tuple[float, PolicyResult]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> PolicyResult | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            stored, result = item
            if time.monotonic() - stored > self.ttl_seconds:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return result

    def put(self, key: Any, result: PolicyResult) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), result)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


_shared: PolicyCache | None = None
_shared_lock = threading.Lock()


def shared_cache() -> PolicyCache:
    """The process-wide cache (created on first use) for callers that have nowhere better to keep one."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PolicyCache()
        return _shared


__all__ = [
    "MAX_BYTES",
    "FileReader",
    "ParsedFile",
    "PolicyCache",
    "PolicyIssue",
    "PolicyResult",
    "default_data",
    "format_issue",
    "load_policy",
    "load_policy_bytes",
    "load_policy_file",
    "parse_policy_text",
    "pending_policy_change",
    "render_policy_comment",
    "shared_cache",
    "validate_data",
]
