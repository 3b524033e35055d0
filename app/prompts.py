"""Prompt templates from prompts/*.md: a version header, `{{ name }}` slots, strict rendering."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.errors import ConfigError

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

_HEADER = re.compile(r"\A<!--\s*prompt:\s*(?P<name>[\w.-]+)\s+version:\s*(?P<version>[\w.-]+)\s*-->\n")
_SLOT = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


class PromptError(ConfigError):
    """A template that cannot be loaded, or rendered with missing or unexpected variables."""


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    template: str

    @property
    def id(self) -> str:
        """What the audit records: `review.system@3`."""
        return f"{self.name}@{self.version}"

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(_SLOT.findall(self.template))

    def render(self, **values: str) -> str:
        """Fill every slot in one pass (values are never re-scanned); missing or extra names are errors."""
        missing = self.variables - values.keys()
        extra = values.keys() - self.variables
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(sorted(missing))}")
            if extra:
                parts.append(f"unexpected {', '.join(sorted(extra))}")
            raise PromptError(f"prompt {self.id}: {'; '.join(parts)}")
        for key, value in values.items():
            if not isinstance(value, str):
                raise PromptError(f"prompt {self.id}: {key} must be a string, not {type(value).__name__}")
        return _SLOT.sub(lambda m: values[m.group(1)], self.template)


def parse(text: str, expected_name: str | None = None) -> Prompt:
    match = _HEADER.match(text)
    if match is None:
        raise PromptError(f"prompt {expected_name or '?'}: first line must be <!-- prompt: NAME version: V -->")
    name = match.group("name")
    if expected_name is not None and name != expected_name:
        raise PromptError(f"prompt file {expected_name}.md declares name {name!r}")
    return Prompt(name, match.group("version"), text[match.end() :])


@lru_cache(maxsize=64)
def load(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    """`load("review.system")` reads prompts/review.system.md."""
    if not re.fullmatch(r"[\w.-]+", name) or ".." in name:
        raise PromptError(f"invalid prompt name {name!r}")
    path = directory / f"{name}.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"prompt {name}: cannot read {path}: {exc.strerror}") from exc
    return parse(text, name)


def versions(*names: str) -> str:
    """The combined version string recorded with a review, e.g. `review.system@3+review.user@2`."""
    return "+".join(load(n).id for n in names)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    version: str
    description: str
    input_schema: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def param(self) -> dict[str, Any]:
        """The `tools=[...]` entry of a Messages request."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


@lru_cache(maxsize=16)
def load_tool(name: str, directory: Path = PROMPTS_DIR) -> ToolSpec:
    """`load_tool("review.tool")` reads prompts/review.tool.json: a tool's name, description and schema."""
    if not re.fullmatch(r"[\w.-]+", name) or ".." in name:
        raise PromptError(f"invalid tool name {name!r}")
    path = directory / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ToolSpec(str(data["name"]), str(data["version"]), str(data["description"]), dict(data["input_schema"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PromptError(f"tool {name}: cannot load {path}: {exc}") from exc
