"""Shared fixtures: isolated settings and GitHub-style webhook signing."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

import pytest

from app.settings import Settings

WEBHOOK_SECRET = "test-webhook-secret"


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """The X-Hub-Signature-256 value GitHub would send for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(event: str, delivery_id: str, body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": "4242",
        "X-Hub-Signature-256": sign(body, secret),
        "Content-Type": "application/json",
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a webhook secret and a state dir under tmp_path; no App credentials."""
    return Settings.for_tests(webhook_secret=WEBHOOK_SECRET, state_dir=tmp_path / "state")


@pytest.fixture
def signer() -> Callable[..., str]:
    return sign
