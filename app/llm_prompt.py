"""The LLM review's request: the fenced, redacted prompt parts, the Messages parameters, the retry after bad output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from app import prompts
from app.llm_context import (
    MAX_PR_BODY_CHARS,
    FileContext,
    choose_boundary,
    fence,
    path_instruction_text,
    redactor,
    render_prior,
)

if TYPE_CHECKING:
    from app.llm_plan import Budget
    from app.llm_review import LLMRequest

REVIEW_PROMPTS = ("review.system", "review.user", "review.files", "review.retry")
TOOL = "review.tool"
EPHEMERAL = {"type": "ephemeral"}


def review_parts(
    request: LLMRequest, contexts: Sequence[FileContext], known_secrets: Sequence[str], salt: bytes | None
) -> tuple[str, str, str]:
    """(boundary, system text, preamble text)."""
    redact = redactor(known_secrets)
    title = redact(request.pr_title.strip()) or "(no title)"
    body = redact(request.pr_body.strip()[:MAX_PR_BODY_CHARS])
    prior = render_prior(request.prior_findings, [c.path for c in contexts])
    scope = f"{request.repo}#{request.pr_number}"
    untrusted = [title, body, prior, *(c.text for c in contexts)]
    boundary = choose_boundary(untrusted, salt, scope)
    system = prompts.load("review.system").render()
    preamble = prompts.load("review.user").render(
        boundary=boundary,
        pr_title=fence(title, boundary, "pr-title"),
        pr_body=fence(body, boundary, "pr-description") if body else "(no description)",
        instructions=request.instructions.strip() or "(none)",
    )
    return boundary, system, preamble


def render_files(
    request: LLMRequest, group: Sequence[FileContext], boundary: str, total: int, known_secrets: Sequence[str]
) -> str:
    """The user message's last block: one group's fenced file contexts, path instructions, analyzer findings."""
    redact = redactor(known_secrets)
    paths = [c.path for c in group]
    prior = redact(render_prior(request.prior_findings, paths))
    return prompts.load("review.files").render(
        file_count=str(len(group)),
        total_files=str(total),
        files=fence("".join(c.text for c in group), boundary, "diff"),  # each block ends with a newline
        path_instructions=path_instruction_text(request.path_instructions, paths),
        already_reported=fence(prior, boundary, "analyzer-findings") if prior else "(none)",
    )


def review_params(system: str, preamble: str, files_text: str, budget: Budget) -> dict[str, Any]:
    """Messages parameters for one group: the forced review tool, cache breakpoints after system and preamble."""
    tool = prompts.load_tool(TOOL)
    cache = budget.cache_diff
    return {
        "max_tokens": budget.max_output_tokens,
        "system": [{"type": "text", "text": system, "cache_control": EPHEMERAL}],
        "tools": [tool.param()],
        "tool_choice": {"type": "tool", "name": tool.name},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": preamble, "cache_control": EPHEMERAL},
                    {"type": "text", "text": files_text, **({"cache_control": EPHEMERAL} if cache else {})},
                ],
            }
        ],
    }


def retry_params(params: dict[str, Any], message: Any, tool_block: Any, error: str) -> dict[str, Any]:
    """The same call once more, with the model's bad answer and what was wrong with it appended."""
    retry_text = prompts.load("review.retry").render(error=error)
    assistant: list[dict[str, Any]] = []
    for block in getattr(message, "content", []) or []:
        kind = getattr(block, "type", "")
        if kind == "text" and getattr(block, "text", ""):
            assistant.append({"type": "text", "text": block.text})
        elif kind == "tool_use":
            assistant.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
    if tool_block is not None:
        follow: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": tool_block.id, "is_error": True, "content": retry_text}
        ]
    else:
        follow = [{"type": "text", "text": retry_text}]
    messages = list(params["messages"])
    if assistant:
        messages.append({"role": "assistant", "content": assistant})
        messages.append({"role": "user", "content": follow})
    else:
        first = dict(messages[0])
        first["content"] = [*first["content"], *follow]
        messages = [first]
    return {**params, "messages": messages}
