"""Slash commands: strict parsing of `/diffwise <command>` and `@<app-slug> <command>`, and every reply text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.comments import fit

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (usage after the command, what it does)
    "help": ("", "show this list"),
    "config": ("", "show the effective policy for this pull request and where each value came from"),
    "review": ("", "review the current head again, in full"),
    "tests": (
        "[commit] [path | path::function]",
        "suggest property-based tests now; `commit` adds them to this pull request's branch",
    ),
    "explain": ("[finding-id]", "explain a finding in more depth (in a finding's thread the id is optional)"),
    "ask": ("<question>", "ask a question about this pull request's change"),
    "ignore": ("<finding-id | rule> [--repo]", "suppress a finding or a rule on this pull request"),
    "pause": ("", "stop automatic reviews on this pull request"),
    "resume": ("", "restart automatic reviews on this pull request"),
}
LLM_COMMANDS = frozenset({"tests", "explain", "ask"})
MAX_QUESTION = 2000
MAX_ECHO = 40

IgnoreKind = Literal["finding", "rule"]

_FINDING_ID = re.compile(r"^[0-9a-f]{8,64}$")
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*/[a-z0-9][a-z0-9_./-]*$")
_PATH = re.compile(r"^[\w.@+-]+(?:/[\w.@+-]+)*$")
_FUNCTION = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Command:
    """One parsed command. `problem` set means: reply with it and the usage; do nothing else."""

    name: str
    finding_id: str | None = None  # explain, ignore (kind "finding")
    rule: str | None = None  # ignore (kind "rule")
    path: str | None = None  # tests
    function: str | None = None  # tests
    commit: bool = False  # tests commit: push the suggested tests to the head branch
    question: str | None = None  # ask
    repo_wide: bool = False  # ignore --repo
    unknown: str | None = None  # the unrecognised command word that led to help
    problem: str | None = None

    @property
    def uses_llm(self) -> bool:
        return self.name in LLM_COMMANDS and self.problem is None

    @property
    def ignore_kind(self) -> IgnoreKind | None:
        if self.name != "ignore":
            return None
        return "rule" if self.rule is not None else "finding"


def _invocation(line: str, app_slug: str) -> str | None:
    """The text after the command prefix if `line` invokes the bot, else None."""
    text = line.strip()
    for prefix in ("/diffwise", f"@{app_slug}"):
        if text[: len(prefix)].lower() == prefix.lower():
            rest = text[len(prefix) :]
            if rest == "" or rest[0].isspace():
                return rest.strip()
    return None


def parse_command(body: str | None, app_slug: str = "diffwise") -> Command | None:
    """The first command in a comment, or None when the comment does not address the bot.

    Only a line that starts with the prefix counts; quoted lines (`>`) and fenced code are skipped, so quoting
    someone else's command never re-runs it.
    """
    if not body:
        return None
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    in_fence = False
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence or line.lstrip().startswith(">"):
            continue
        rest = _invocation(line, app_slug)
        if rest is not None:
            return _parse(rest, lines[index + 1 :])
    return None


def _parse(rest: str, following: list[str]) -> Command:
    word, _, tail = rest.partition(" ")
    name = word.strip().lower()
    tail = tail.strip()
    if not name:
        return Command("help")
    if name not in COMMANDS:
        return Command("help", unknown=_echo(word))
    if name == "ask":
        return _parse_ask(tail, following)
    args = tail.split()
    options = [a for a in args if a.startswith("-")]
    positional = [a for a in args if not a.startswith("-")]
    allowed_options = {"--repo"} if name == "ignore" else set()
    bad = [o for o in options if o not in allowed_options]
    if bad:
        return Command(name, problem=f"unknown option `{_echo(bad[0])}`")
    if name in ("help", "config", "review", "pause", "resume"):
        return Command(name, problem="takes no arguments") if positional else Command(name)
    if name == "tests":
        return _parse_tests(positional)
    if name == "explain":
        return _parse_explain(positional)
    return _parse_ignore(positional, repo_wide="--repo" in options)


def _parse_ask(tail: str, following: list[str]) -> Command:
    question = "\n".join([tail, *following]).strip()
    if not question:
        return Command("ask", problem="needs a question")
    if len(question) > MAX_QUESTION:
        return Command("ask", problem=f"the question is longer than {MAX_QUESTION} characters")
    return Command("ask", question=question)


def _parse_tests(args: list[str]) -> Command:
    commit = bool(args) and args[0].lower() == "commit"
    if commit:
        args = args[1:]
    if not args:
        return Command("tests", commit=commit)
    if len(args) > 1:
        return Command("tests", problem="takes at most one target")
    path, sep, function = args[0].partition("::")
    if not _safe_path(path) or (sep and not _FUNCTION.match(function)):
        return Command("tests", problem=f"cannot read the target `{_echo(args[0])}`")
    return Command("tests", path=path, function=function or None, commit=commit)


def _parse_explain(args: list[str]) -> Command:
    if not args:
        return Command("explain")
    if len(args) > 1 or not _FINDING_ID.match(args[0].lower()):
        return Command("explain", problem=f"`{_echo(' '.join(args))}` is not a finding id")
    return Command("explain", finding_id=args[0].lower())


def _parse_ignore(args: list[str], repo_wide: bool) -> Command:
    if not args:
        return Command("ignore", repo_wide=repo_wide)  # in a finding's thread: that finding
    if len(args) != 1:
        return Command("ignore", problem="needs exactly one finding id or rule id")
    target = args[0].lower()
    if _RULE_ID.match(target):
        return Command("ignore", rule=target, repo_wide=repo_wide)
    if _FINDING_ID.match(target):
        return Command("ignore", finding_id=target, repo_wide=repo_wide)
    return Command("ignore", problem=f"`{_echo(args[0])}` is neither a finding id nor a rule id")


def _safe_path(path: str) -> bool:
    return bool(_PATH.match(path)) and ".." not in path.split("/") and len(path) <= 300


def _echo(text: str) -> str:
    """User text quoted back in a reply: no backticks, no mentions, bounded."""
    cleaned = text.replace("`", "'").replace("@", "@\u200b")
    return cleaned if len(cleaned) <= MAX_ECHO else cleaned[: MAX_ECHO - 1] + "…"


# -- reply texts -----------------------------------------------------------------------------------------

REPLY_MARKER = "<!-- diffwise:command -->"


def _reply(text: str) -> str:
    return f"{REPLY_MARKER}\n{text}"


def help_text(app_slug: str = "diffwise", unknown: str | None = None) -> str:
    lines = []
    if unknown is not None:
        lines += [f"I don't know the command `{unknown}`. These are the ones I understand:", ""]
    else:
        lines += ["**diffwise commands**", ""]
    lines += ["| command | what it does |", "|---|---|"]
    for name, (usage, what) in COMMANDS.items():
        # GitHub splits table cells on `|` even inside code spans, unless it is escaped.
        shown = f"/diffwise {name} {usage}".strip().replace("|", "\\|")
        lines.append(f"| `{shown}` | {what} |")
    lines += [
        "",
        f"`@{app_slug} <command>` works too. Commands that cost money or change state need write access "
        "to the repository.",
    ]
    return _reply("\n".join(lines))


def problem_text(command: Command) -> str:
    usage, _ = COMMANDS[command.name]
    shown = f"/diffwise {command.name} {usage}".strip()
    return _reply(f"`/diffwise {command.name}` {command.problem}. Usage: `{shown}`")


def denied_text(login: str, command: str, permission: str) -> str:
    return _reply(
        f"Sorry @{login}, `/diffwise {command}` needs write access to this repository "
        f"(yours is `{permission}`). A maintainer can run it for you."
    )


def rate_limited_text(login: str, retry_after_seconds: float, per_user: bool = True) -> str:
    minutes = max(1, round(retry_after_seconds / 60))
    whose = "one person may make" if per_user else "this pull request allows"
    return _reply(
        f"@{login}, that is more AI requests than {whose} per hour. "
        f"Please try again in about {minutes} minute{'s' if minutes != 1 else ''}."
    )


def disabled_text() -> str:
    return _reply("Commands are turned off for this repository (`commands.enabled: false` in the policy).")


def unavailable_text(capability: str) -> str:
    return _reply(f"Sorry, {capability} is not available on this diffwise server right now.")


def paused_text(already: bool) -> str:
    if already:
        return _reply("Automatic reviews were already paused on this pull request. `/diffwise resume` restarts them.")
    return _reply("Automatic reviews are paused on this pull request. `/diffwise resume` restarts them.")


def resumed_text(already: bool) -> str:
    if already:
        return _reply("Automatic reviews were not paused on this pull request; nothing to do.")
    return _reply("Automatic reviews are back on for this pull request. `/diffwise review` reviews the head now.")


def review_queued_text(head_sha: str | None) -> str:
    at = f" at `{head_sha[:7]}`" if head_sha else ""
    return _reply(f"A full review of this pull request{at} is on its way.")


def ignored_text(command: Command) -> str:
    if command.rule is not None:
        what = f"rule `{command.rule}`"
    else:
        what = f"finding `{command.finding_id}`"
    return _reply(f"OK: {what} is ignored on this pull request from now on.")


def ignore_repo_text(command: Command, rule: str | None = None, policy_path: str = ".github/diffwise.yml") -> str:
    """`ignore --repo` never writes the policy; it proposes the change for a person to commit.

    `rule` is the rule of the ignored finding, when the command named a finding rather than a rule.
    """
    rule = command.rule or rule
    if command.rule is None:
        first = f"Finding `{command.finding_id}` is ignored on this pull request."
    else:
        first = f"OK: rule `{command.rule}` is ignored on this pull request."
    if rule is None:
        return _reply(
            f"{first} Repository-wide ignores work per rule: use `/diffwise ignore <rule> --repo` with the "
            "finding's rule id."
        )
    snippet = f"analyzers:\n  rules:\n    {rule}:\n      enabled: false"
    return _reply(
        f"{first} To turn rule `{rule}` off for the whole repository, add this to `{policy_path}` on the "
        f"default branch:\n\n```yaml\n{snippet}\n```"
    )


def ignore_needs_target_text() -> str:
    return _reply(
        "What should I ignore? Use `/diffwise ignore <finding-id | rule>`, or reply `/diffwise ignore` in the "
        "finding's own thread."
    )


def explain_needs_id_text() -> str:
    return _reply(
        "Which finding? Use `/diffwise explain <finding-id>` (the id is at the end of each finding comment), "
        "or reply `explain` in the finding's own thread."
    )


def unknown_finding_text(finding_id: str) -> str:
    return _reply(f"I can't find finding `{finding_id}` on this pull request.")


def answer_text(text: str) -> str:
    return _reply(text)


def failed_text() -> str:
    return _reply("Something went wrong while running that command; it has been logged. Please try again later.")


def commit_done_text(branch: str, sha: str, paths: Sequence[str], run_command: str, notes: str = "") -> str:
    files = "\n".join(f"- `{p}`" for p in paths)
    count = f"{len(paths)} test file{'s' if len(paths) != 1 else ''}"
    extra = f"\n\n_{notes}_" if notes else ""
    return _reply(
        f"Added {count} to `{branch}` in commit `{sha[:7]}`:\n\n{files}\n\n"
        f"Run them with:\n\n```sh\npip install hypothesis pytest\n{run_command}\n```{extra}"
    )


def commit_unchanged_text(branch: str) -> str:
    return _reply(f"The suggested tests are already on `{branch}`; there is nothing new to commit.")


def commit_nothing_text(notes: str = "") -> str:
    why = f" ({notes})" if notes else ""
    return _reply(f"There are no suggested tests to commit for this change{why}. `/diffwise tests` shows the details.")


def commit_fork_text() -> str:
    return _reply(
        "This pull request comes from a fork that does not allow edits from maintainers, so I can't push to its "
        "branch. Its author can tick **Allow edits by maintainers**; or run `/diffwise tests` and copy each file "
        "into the branch at the path shown."
    )


def commit_gone_text() -> str:
    return _reply(
        "The branch of this pull request no longer exists (its repository was deleted), so there is nowhere to "
        "commit the tests."
    )


def commit_closed_text() -> str:
    return _reply("This pull request is closed, so I won't push to its branch.")


def commit_moved_text(branch: str) -> str:
    return _reply(
        f"`{branch}` changed while I was committing, so I left it alone. Run `/diffwise tests commit` again to add "
        "the tests on top of the new head."
    )


def commit_no_access_text() -> str:
    return _reply(
        "I can't write to this branch: diffwise is installed without the optional `contents: write` permission "
        "(see `app.yml`). An owner of the installation can grant it in the App's settings. Until then, run "
        "`/diffwise tests` and copy each file into the branch at the path shown."
    )


def _value(value: Any) -> str:
    """A value for a table cell inside a code span: one line, no backticks, pipes escaped, bounded."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        value = "[" + ", ".join(str(v) for v in value) + "]"
    text = str(value).replace("\n", " ").replace("`", "'")
    text = text if len(text) <= 60 else text[:59] + "…"
    return text.replace("|", "\\|")


def config_text(
    effective: Mapping[str, Any], sources: Mapping[str, str], errors: Iterable[str] = (), pending: bool = False
) -> str:
    """The effective policy as a table of key, value and origin; keys from files first."""
    rows: list[tuple[str, Any, str]] = []
    for key in sources:
        node: Any = effective
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        rows.append((key, node, sources[key]))
    rows.sort(key=lambda r: (r[2] == "default", r[0]))
    from_files = [r for r in rows if r[2] != "default"]
    lines = ["**Effective diffwise policy** for this pull request (read from the default branch)", ""]
    if from_files:
        lines += ["| key | value | from |", "|---|---|---|"]
        lines += [f"| `{k}` | `{_value(v)}` | {s} |" for k, v, s in from_files]
    else:
        lines.append("No policy file applies; everything is at the built-in defaults.")
    defaults = [r for r in rows if r[2] == "default"]
    if defaults and from_files:
        lines += ["", "<details><summary>Built-in defaults for the other keys</summary>", ""]
        lines += ["| key | value |", "|---|---|"]
        lines += [f"| `{k}` | `{_value(v)}` |" for k, v, _ in defaults]
        lines += ["", "</details>"]
    elif defaults:
        lines += ["", "<details><summary>The defaults</summary>", "", "| key | value |", "|---|---|"]
        lines += [f"| `{k}` | `{_value(v)}` |" for k, v, _ in defaults]
        lines += ["", "</details>"]
    problems = list(errors)
    if problems:
        lines += ["", "**The policy file has problems** (those keys use their defaults):", "", "```text"]
        lines += problems
        lines.append("```")
    if pending:
        lines += ["", "This pull request changes the policy file; the change applies once it is merged."]
    return fit(_reply("\n".join(lines)))
