"""Missed-webhook recovery against the fake GitHub's hook deliveries (cursor pages, redelivery attempts)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.db import database_url, get_engine
from app.recovery import Recovery, RecoveryPolicy, RecoveryStore, build_recovery, start_recovery
from app.settings import Settings
from tests.fakes.github import Delivery, FakeGitHub, serve_fake, shared_app_keys

APP_ID = 31337
HOUR = 3600.0


class PagedDeliveriesFake(FakeGitHub):
    """Deliveries with their own timestamps, GitHub's cursor pagination, and redeliveries that create attempts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delivered_at: dict[int, float] = {}
        self.redelivery_status = 202  # what the receiver answers when GitHub redelivers

    def deliver(self, guid: str, status_code: int, age: float, event: str = "pull_request") -> Delivery:
        delivery = self.add_delivery(guid, event, "opened", status_code)
        self.delivered_at[delivery.id] = time.time() - age
        self.deliveries.sort(key=lambda d: self.delivered_at.get(d.id, 0.0))
        return delivery

    async def _list_deliveries(self, request: Request, body: Any) -> Response:
        per_page = int(request.query_params.get("per_page", "30"))
        newest_first = sorted(self.deliveries, key=lambda d: (self.delivered_at.get(d.id, 0.0), d.id), reverse=True)
        cursor = request.query_params.get("cursor")
        start = int(cursor.removeprefix("v1_")) if cursor else 0
        page = newest_first[start : start + per_page]
        items = [
            {
                "id": d.id,
                "guid": d.guid,
                "event": d.event,
                "action": d.action,
                "status_code": d.status_code,
                "status": "OK" if 200 <= d.status_code < 300 else f"Invalid HTTP Response: {d.status_code}",
                "redelivery": d.redelivery,
                "delivered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.delivered_at.get(d.id, 0.0))),
            }
            for d in page
        ]
        headers = {}
        if start + per_page < len(newest_first):
            url = f"{request.url.scheme}://{request.url.netloc}{self.prefix}/app/hook/deliveries"
            headers["Link"] = f'<{url}?per_page={per_page}&cursor=v1_{start + per_page}>; rel="next"'
        return JSONResponse(items, headers=headers)

    async def _redeliver(self, request: Request, body: Any, did: str) -> Response:
        response = await super()._redeliver(request, body, did)
        if response.status_code == 202:
            original = next(d for d in self.deliveries if d.id == int(did))
            attempt = self.deliver(original.guid, self.redelivery_status, 0.0, original.event)
            attempt.redelivery = True
        return response


@pytest.fixture
def fake() -> PagedDeliveriesFake:
    return PagedDeliveriesFake(APP_ID, shared_app_keys().public_pem)


@pytest.fixture
def settings(fake: PagedDeliveriesFake, tmp_path: Path) -> Iterator[Settings]:
    with serve_fake(fake) as api_url:
        yield Settings.for_tests(
            app_id=APP_ID, private_key=shared_app_keys().private_pem, github_api_url=api_url, state_dir=tmp_path / "s"
        )


def recovery(settings: Settings, **policy: Any) -> Recovery:
    return build_recovery(settings, RecoveryPolicy(**{"per_page": 2, **policy}))


def test_redelivers_failed_guids_without_a_later_success_across_pages(
    fake: PagedDeliveriesFake, settings: Settings
) -> None:
    fake.deliver("recovered", 503, age=3 * HOUR)
    fake.deliver("recovered", 200, age=2 * HOUR)  # a later attempt succeeded: leave it
    down_first = fake.deliver("down", 0, age=2.5 * HOUR)  # no HTTP answer: diffwise was down
    down_again = fake.deliver("down", 502, age=1 * HOUR)
    fake.deliver("fine", 200, age=0.5 * HOUR)
    fake.deliver("ancient", 500, age=30 * HOUR)  # outside the first run's 24 h window
    refused = fake.deliver("refused", 401, age=0.2 * HOUR)  # e.g. a wrong secret, fixed since
    fake.deliver("ping-ok", 200, age=0.1 * HOUR, event="ping")

    report = recovery(settings).run_once()

    assert report.complete
    assert not report.errors
    assert report.pages >= 4  # cursor pagination was followed
    assert fake.redelivered == [down_again.id, refused.id]  # newest failed attempt per GUID, oldest GUID first
    assert down_first.id not in fake.redelivered
    assert report.requested == ["down", "refused"]
    listing = [r for r in fake.requests if r.path == "/app/hook/deliveries"]
    assert listing[0].headers["authorization"].startswith("Bearer ")  # App JWT
    assert "cursor" in listing[1].query


def test_remembers_what_it_redelivered_and_rereads_only_since_the_last_run(
    fake: PagedDeliveriesFake, settings: Settings
) -> None:
    fake.deliver("down", 503, age=HOUR)
    first = recovery(settings).run_once()
    assert first.requested == ["down"]
    second = recovery(settings).run_once()  # a fresh process: the store remembers
    assert second.requested == []
    assert fake.redelivered == [fake.deliveries[0].id]
    # only the recent window is listed now: one page instead of walking back 24 hours
    for age in range(10):
        fake.deliver(f"old-ok-{age}", 200, age=(age + 5) * HOUR)
    third = recovery(settings).run_once()
    assert third.pages == 1


def test_each_guid_is_redelivered_a_bounded_number_of_times(fake: PagedDeliveriesFake, settings: Settings) -> None:
    fake.redelivery_status = 500  # diffwise keeps failing on this delivery
    fake.deliver("poison", 500, age=HOUR)
    for _ in range(4):
        recovery(settings, overlap=10 * HOUR).run_once()
    assert len(fake.redelivered) == 2  # RecoveryPolicy.max_attempts_per_guid
    engine = get_engine(database_url(settings.state_dir, settings.database_url))
    assert RecoveryStore(engine).redelivered() == {"poison": 2}


def test_bounded_per_run_and_the_rest_follows_next_run(fake: PagedDeliveriesFake, settings: Settings) -> None:
    for i in range(5):
        fake.deliver(f"g{i}", 502, age=HOUR - i)
    r = recovery(settings, max_per_run=2, overlap=10 * HOUR)
    assert r.run_once().requested == ["g0", "g1"]
    assert r.run_once().requested == ["g2", "g3"]
    assert r.run_once().requested == ["g4"]
    assert r.run_once().requested == []


def test_two_web_processes_never_redeliver_the_same_guid_twice(fake: PagedDeliveriesFake, settings: Settings) -> None:
    fake.redelivery_status = 503  # redeliveries fail too, so only the store stops a second request
    for i in range(8):
        fake.deliver(f"g{i}", 502, age=HOUR - i)
    runners = [recovery(settings, max_attempts_per_guid=1, per_page=100) for _ in range(2)]
    threads = [threading.Thread(target=r.run_once) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    originals = {d.id: d.guid for d in fake.deliveries if not d.redelivery}
    asked = [originals[i] for i in fake.redelivered]
    assert sorted(asked) == sorted(f"g{i}" for i in range(8))


def test_listing_errors_keep_the_checkpoint(fake: PagedDeliveriesFake, settings: Settings) -> None:
    fake.deliver("down", 503, age=HOUR)
    fake.fail_next(1, status=401, path=r"^/app/hook/deliveries$")
    report = recovery(settings).run_once()
    assert report.errors
    assert not report.requested
    engine = get_engine(database_url(settings.state_dir, settings.database_url))
    assert RecoveryStore(engine).last_run() is None
    assert recovery(settings).run_once().requested == ["down"]


def test_start_recovery_runs_in_a_thread_until_stopped(fake: PagedDeliveriesFake, settings: Settings) -> None:
    fake.deliver("down", 503, age=HOUR)
    stop = threading.Event()
    thread = start_recovery(settings, stop, RecoveryPolicy(initial_delay=0.0, interval=0.05))
    assert thread is not None
    deadline = time.monotonic() + 10
    while not fake.redelivered and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert len(fake.redelivered) == 1
    assert start_recovery(Settings.for_tests()) is None  # no App credentials: nothing to recover with
