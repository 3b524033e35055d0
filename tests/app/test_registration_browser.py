"""The setup page in real headless Chromium: it renders, and its button registers the App through the fake GitHub."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import registration
from tests.app.test_registration import ManifestFakeGitHub, fake, running  # noqa: F401 (fixtures)

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def test_setup_page_renders_and_registers_a_personal_app(
    page: Any,
    running: tuple[str, Path, registration.Registration],  # noqa: F811
    fake: ManifestFakeGitHub,  # noqa: F811
    tmp_path: Path,
) -> None:
    url, env_path, _ = running
    page.goto(url + "/")
    assert page.title() == "diffwise setup"
    button = page.locator("#register-button")
    assert button.is_visible()
    assert button.inner_text() == "Register GitHub App"
    shot = tmp_path / "setup.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000

    button.click()  # posts the manifest to the fake GitHub, which redirects back to /setup/callback
    page.wait_for_url("**/setup/callback?**")
    assert "is registered" in page.locator("h1").inner_text()
    assert page.locator("#install").get_attribute("href") == "https://github.com/apps/diffwise/installations/new"
    page.screenshot(path=str(tmp_path / "done.png"))

    [posted] = fake.manifests
    assert posted["org"] is None
    assert posted["manifest"]["hook_attributes"]["url"] == url + "/api/github/webhooks"
    assert posted["manifest"]["default_permissions"]["checks"] == "write"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    assert "APP_ID=9001" in env_path.read_text(encoding="utf-8")


def test_organization_choice_changes_where_the_manifest_goes(
    page: Any,
    running: tuple[str, Path, registration.Registration],  # noqa: F811
    fake: ManifestFakeGitHub,  # noqa: F811
) -> None:
    url, env_path, _ = running
    page.goto(url + "/")
    page.fill("#org", "acme")
    page.click("#update")
    page.wait_for_url("**/?org=acme**")
    assert "organization acme" in page.locator("#register").inner_text()
    page.click("#register-button")
    page.wait_for_url("**/setup/callback?**")
    assert [m["org"] for m in fake.manifests] == ["acme"]
    assert env_path.is_file()
