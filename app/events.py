"""Tolerant models of the webhook fields we route on: unknown fields ignored, absent ones defaulted."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class User(_Model):
    login: str = ""
    id: int | None = None
    type: str = "User"  # "User" | "Bot" | "Organization"

    @property
    def is_bot(self) -> bool:
        return self.type == "Bot" or self.login.endswith("[bot]")


class Owner(_Model):
    login: str = ""
    id: int | None = None
    type: str = "User"


class Repository(_Model):
    id: int | None = None
    name: str = ""
    full_name: str = ""
    owner: Owner = Field(default_factory=Owner)
    default_branch: str = "main"
    private: bool = False
    fork: bool = False
    archived: bool = False


class Installation(_Model):
    id: int
    account: Owner | None = None
    app_id: int | None = None
    repository_selection: str | None = None


class Label(_Model):
    name: str = ""


class Ref(_Model):
    ref: str = ""
    sha: str = ""
    repo: Repository | None = None


class PullRequest(_Model):
    number: int
    id: int | None = None
    state: str = "open"
    draft: bool = False
    merged: bool | None = None
    locked: bool = False
    title: str = ""
    body: str | None = None
    user: User = Field(default_factory=User)
    head: Ref = Field(default_factory=Ref)
    base: Ref = Field(default_factory=Ref)
    labels: tuple[Label, ...] = ()
    author_association: str | None = None
    html_url: str | None = None

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    @property
    def from_fork(self) -> bool:
        head, base = self.head.repo, self.base.repo
        return head is not None and base is not None and head.full_name != base.full_name


class IssuePullLink(_Model):
    url: str | None = None
    html_url: str | None = None


class Issue(_Model):
    number: int
    state: str = "open"
    title: str = ""
    body: str | None = None
    user: User = Field(default_factory=User)
    pull_request: IssuePullLink | None = None  # present when the issue is a pull request

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None


class Comment(_Model):
    id: int
    node_id: str | None = None
    body: str | None = None
    user: User = Field(default_factory=User)
    author_association: str | None = None
    html_url: str | None = None
    # review comments only
    path: str | None = None
    line: int | None = None
    start_line: int | None = None
    side: str | None = None
    commit_id: str | None = None
    in_reply_to_id: int | None = None
    pull_request_review_id: int | None = None
    diff_hunk: str | None = None


class Review(_Model):
    id: int
    node_id: str | None = None
    body: str | None = None
    state: str = ""
    user: User = Field(default_factory=User)
    commit_id: str | None = None


class RepositoryRef(_Model):
    id: int | None = None
    name: str = ""
    full_name: str = ""


class Event(_Model):
    """Every routed payload: the common envelope plus whichever of the objects the event carries."""

    action: str | None = None
    sender: User | None = None
    repository: Repository | None = None
    installation: Installation | None = None
    number: int | None = None
    pull_request: PullRequest | None = None
    issue: Issue | None = None
    comment: Comment | None = None
    review: Review | None = None
    before: str | None = None
    after: str | None = None
    repositories: tuple[RepositoryRef, ...] = ()
    repositories_added: tuple[RepositoryRef, ...] = ()
    repositories_removed: tuple[RepositoryRef, ...] = ()

    @property
    def installation_id(self) -> int | None:
        return self.installation.id if self.installation is not None else None

    @property
    def pull_number(self) -> int | None:
        """The PR this event concerns: pull_request events, review events, and comments on PRs."""
        if self.pull_request is not None:
            return self.pull_request.number
        if self.issue is not None and self.issue.is_pull_request:
            return self.issue.number
        return None


class PayloadError(ValueError):
    """A payload that is not JSON, or not an object this model can read."""


def parse_event(payload: Any) -> Event:
    """The tolerant model of an already-decoded payload; PayloadError when its shape is unusable."""
    if not isinstance(payload, dict):
        raise PayloadError(f"payload is {type(payload).__name__}, not an object")
    try:
        return Event.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise PayloadError(f"unreadable payload at {where or '<root>'}: {first.get('msg')}") from None
