"""Context: what a handler receives for one delivery (event, payload, installation client, logger, helpers)."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.errors import PermanentError
from app.events import Event

if TYPE_CHECKING:
    from githubkit import GitHub

    from app.github import GitHubApp
    from app.settings import Settings
    from app.source import GitHubSource


class DeliveryLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Carries the delivery id, repository and event on every record (app.logs renders them as tags/fields)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**dict(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


class NoInstallation(PermanentError):
    """The payload names no installation, so there is no client to act with."""


@dataclass
class Context:
    """One delivery as a handler sees it (Probot's `context`)."""

    name: str  # the event, e.g. "pull_request"
    delivery_id: str
    payload: Event
    raw: dict[str, Any]
    settings: Settings
    github_app: GitHubApp | None = None
    log: logging.LoggerAdapter = field(init=False)  # type: ignore[type-arg]
    _gh: GitHub[Any] | None = field(default=None, init=False, repr=False)
    _source: GitHubSource | None = field(default=None, init=False, repr=False)
    _policy_result: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        repository = self.payload.repository
        self.log = DeliveryLogger(
            logging.getLogger("app.handlers"),
            {"delivery_id": self.delivery_id, "event": self.key, "repo": repository.full_name if repository else None},
        )

    # ---- identity -------------------------------------------------------------------------
    @property
    def action(self) -> str | None:
        return self.payload.action

    @property
    def key(self) -> str:
        return f"{self.name}.{self.action}" if self.action else self.name

    @property
    def is_bot(self) -> bool:
        """True when a bot (often this App itself) caused the event; handlers usually ignore those."""
        sender = self.payload.sender
        return sender is not None and sender.is_bot

    @property
    def installation_id(self) -> int | None:
        return self.payload.installation_id

    # ---- Probot helpers -------------------------------------------------------------------
    def repo(self, **extra: Any) -> dict[str, Any]:
        """{"owner", "repo"} of the payload's repository, merged with `extra`."""
        repository = self.payload.repository
        if repository is None:
            raise ValueError(f"{self.key} carries no repository")
        owner = repository.owner.login or repository.full_name.split("/")[0]
        return {"owner": owner, "repo": repository.name, **extra}

    def repo_name(self) -> str:
        """ "owner/repo" of the payload's repository (the key the state store and audit log use)."""
        r = self.repo()
        return f"{r['owner']}/{r['repo']}"

    def pull(self, **extra: Any) -> dict[str, Any]:
        """{"owner", "repo", "pull_number"} of the PR this event concerns, merged with `extra`."""
        number = self.payload.pull_number
        if number is None:
            raise ValueError(f"{self.key} concerns no pull request")
        return self.repo(pull_number=number, **extra)

    def issue(self, **extra: Any) -> dict[str, Any]:
        number = self.payload.pull_number or (self.payload.issue.number if self.payload.issue else None)
        if number is None:
            raise ValueError(f"{self.key} concerns no issue")
        return self.repo(issue_number=number, **extra)

    # ---- clients --------------------------------------------------------------------------
    @property
    def gh(self) -> GitHub[Any]:
        """The installation client (created on first use; tokens come from the process-wide cache)."""
        if self._gh is None:
            if self.installation_id is None:
                raise NoInstallation(f"{self.key} names no installation")
            if self.github_app is None:
                from app.github import shared_app

                self.github_app = shared_app(self.settings)
            self._gh = self.github_app.installation_client(self.installation_id, self.delivery_id)
        return self._gh

    @property
    def source(self) -> GitHubSource:
        if self._source is None:
            from app.source import GitHubSource

            r = self.repo()
            self._source = GitHubSource(self.gh, r["owner"], r["repo"])
        return self._source

    async def policy_result(self) -> Any:
        """app.policy_loader's PolicyResult for this repository (default branch only), or None if unavailable."""
        if self._policy_result is None:
            try:
                from app.policy_loader import load_policy
            except ImportError:
                return None
            r = self.repo()
            branch = self.payload.repository.default_branch if self.payload.repository else "main"
            self._policy_result = await load_policy(
                self.source, r["owner"], r["repo"], branch, installation_id=self.installation_id
            )
        return self._policy_result

    async def config(self) -> Any:
        """The repository's Policy (`.github/diffwise.yml` on the default branch over the defaults)."""
        result = await self.policy_result()
        if result is not None:
            return result.policy
        try:
            from app.policy import Policy
        except ImportError:
            return None
        return Policy.default()
