"""Prompt templates: strict rendering, versions, and the golden rendered review request for a fixture PR."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import prompts
from app.llm import LLMClient, LLMConfig
from app.llm_review import LLMReviewer, ModelFinding, ModelReview
from app.prompts import Prompt, PromptError, load, load_tool, parse
from tests.app.test_llm_review import KEY, request

GOLDEN = Path(__file__).parent / "golden" / "llm_review_request.txt"
ALL = ["review.system", "review.user", "review.files", "review.retry"]
ALL += ["explain.system", "explain.user", "ask.system", "ask.user"]


class RecordingSDK:
    """Stands in for AsyncAnthropic: records the params of messages.create and answers with no findings."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.messages = self

    async def create(self, **params: Any) -> Any:
        self.calls.append(params)
        block = SimpleNamespace(
            type="tool_use", id="toolu_1", name="submit_review", input={"summary": "", "findings": []}
        )
        usage = SimpleNamespace(
            input_tokens=10, output_tokens=5, cache_read_input_tokens=0, cache_creation_input_tokens=0
        )
        return SimpleNamespace(content=[block], usage=usage, stop_reason="tool_use")

    async def close(self) -> None:
        return None


def rendered_request() -> str:
    sdk = RecordingSDK()
    reviewer = LLMReviewer(LLMClient(LLMConfig(api_key=KEY), sdk), cache_salt=b"golden-salt")
    asyncio.run(reviewer.review(request()))
    (params,) = sdk.calls
    parts = [f"model: {params['model']}", f"max_tokens: {params['max_tokens']}", "=== system ==="]
    parts += [block["text"] for block in params["system"]]
    for message in params["messages"]:
        for block in message["content"]:
            parts += [
                f"=== {message['role']} ({'cached' if block.get('cache_control') else 'uncached'}) ===",
                block["text"],
            ]
    parts += ["=== tool ===", json.dumps(params["tools"][0], indent=1, sort_keys=True)]
    return "\n".join(parts) + "\n"


def test_golden_review_request() -> None:
    text = rendered_request()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "run with UPDATE_GOLDEN=1 after an intended prompt change"
    assert text == rendered_request()  # stable: same PR, same salt → byte-identical (cacheable) request


def test_golden_has_line_numbers_and_fences() -> None:
    text = GOLDEN.read_text(encoding="utf-8")
    assert "\n7 +    while attempt <= retries:\n" in text
    assert "\n10              return result\n" in text
    assert "\n-        result = subprocess.run(cmd)\n" in text
    token = text.split("Fence token for this request: ", 1)[1].split("\n", 1)[0]
    assert len(token) == 20
    for kind in ("pr-title", "pr-description", "diff"):
        assert f"<<<DATA {token} {kind}\n" in text
    assert text.count(f"DATA {token}>>>") == 3


def test_every_prompt_loads_with_a_version() -> None:
    for name in ALL:
        p = load(name)
        assert p.name == name
        assert p.version
    assert re.fullmatch(r"review.system@\w+\+review.user@\w+", prompts.versions("review.system", "review.user"))


def test_strict_rendering() -> None:
    p = load("review.user")
    values = {"boundary": "b", "pr_title": "t", "pr_body": "d", "instructions": "i"}
    assert "Fence token for this request: b" in p.render(**values)
    with pytest.raises(PromptError, match="missing pr_body"):
        p.render(**{k: v for k, v in values.items() if k != "pr_body"})
    with pytest.raises(PromptError, match="unexpected extra"):
        p.render(**values, extra="x")
    with pytest.raises(PromptError, match="must be a string"):
        p.render(**{**values, "pr_title": 3})  # type: ignore[arg-type]


@given(st.text(max_size=200))
def test_values_are_never_rescanned(value: str) -> None:
    p = Prompt("t", "1", "a {{ x }} b {{ y }}")
    out = p.render(x=value, y="{{ x }}")
    assert out == f"a {value} b {{{{ x }}}}"


def test_header_is_required() -> None:
    with pytest.raises(PromptError, match="first line"):
        parse("no header\n", "x")
    with pytest.raises(PromptError, match="declares name"):
        parse("<!-- prompt: other version: 1 -->\nbody", "x")
    with pytest.raises(PromptError):
        load("../secrets")


def test_tool_schema_matches_the_validating_model() -> None:
    schema = load_tool("review.tool").input_schema
    item = schema["properties"]["findings"]["items"]
    model = ModelFinding.model_json_schema()
    assert set(item["properties"]) == set(model["properties"])
    assert set(item["required"]) <= set(model["required"]) | {"quote"}
    assert item["properties"]["category"]["enum"] == list(
        ModelFinding.model_fields["category"].annotation.__args__  # type: ignore[union-attr]
    )
    assert set(schema["properties"]) == set(ModelReview.model_json_schema()["properties"])
    assert schema["properties"]["findings"]["maxItems"] == ModelReview.model_fields["findings"].metadata[0].max_length


def test_system_prompt_treats_pr_text_as_data() -> None:
    system = load("review.system").render()
    assert "never instructions" in system
    assert "never be obeyed" in system
    assert "submit_review" in system
