"""The demo feed played against the real ingest app (in process, on a MemoryPublisher)."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from schemas.event_types import EventType
from schemas.topics import EVENTS
from services.common.publisher import MemoryPublisher
from services.demo.feed import DemoFeed, FeedTarget
from services.demo.personas import PERSONAS, cycle_steps
from services.ingest.app import create_app
from tests.ingest.conftest import API_KEY, KEYRING, ORIGIN, make_settings

NOW = datetime(2026, 1, 16, 9, 30, tzinfo=UTC)


@pytest.fixture
async def played() -> MemoryPublisher:
    publisher = MemoryPublisher()
    app = create_app(make_settings(), publisher)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://ingest") as client,
    ):
        feed = DemoFeed(
            client,
            FeedTarget("http://ingest", API_KEY, KEYRING, ORIGIN),
            clock=lambda: NOW,
            run_id="t",
        )
        stats = await feed.run(rate=1000, cycles=1)
        assert sum(stats.failed.values()) == 0, stats.failed
    # the pixel and the click answer first and write in the background: the app's
    # shutdown (the end of its lifespan) drains those writes
    return publisher


def by_lead(publisher: MemoryPublisher, lead: str) -> list[tuple[str, str | None]]:
    return [
        (e.type.short, e.bot)
        for e in publisher.on(make_settings().topic(EVENTS))
        if e.subject == lead
    ]


async def test_every_step_reaches_kafka_as_an_event(played: MemoryPublisher) -> None:
    steps = sum(len(burst) for burst in cycle_steps(1, NOW, "t"))
    assert len(played.on(make_settings().topic(EVENTS))) == steps


async def test_the_executive_reads_the_pricing_page_as_a_person(played: MemoryPublisher) -> None:
    # sorted: the pixel and the click are written in the background, so across
    # routes the log's order is not the order of the requests (event times are)
    assert sorted(by_lead(played, "demo-t-1-exec")) == [
        ("email.clicked", None),
        ("email.opened", None),
        ("lead.updated", None),
        ("page.viewed", None),
    ]


async def test_the_link_scanner_and_apple_mpp_are_flagged(played: MemoryPublisher) -> None:
    events = by_lead(played, "demo-t-1-gateway")
    assert events[0] == ("lead.updated", None)
    assert ("email.opened", "apple_mpp") in events
    clicks = [event for event in events[1:] if event[0] != "email.opened"]
    assert len(events) == 7
    assert len(clicks) == 5
    assert all(kind == "email.clicked" and bot for kind, bot in clicks)


async def test_the_researcher_downloads_over_weeks(played: MemoryPublisher) -> None:
    downloads = [
        e
        for e in played.on(make_settings().topic(EVENTS))
        if e.subject == "demo-t-1-research" and e.type is EventType.ASSET_DOWNLOADED
    ]
    assert len(downloads) == 5
    assert NOW - min(e.time for e in downloads) == timedelta(days=21)


def test_each_cycle_brings_new_people() -> None:
    first = {step.lead_id for burst in cycle_steps(1, NOW, "a") for step in burst}
    second = {step.lead_id for burst in cycle_steps(2, NOW, "a") for step in burst}
    other_run = {step.lead_id for burst in cycle_steps(1, NOW, "b") for step in burst}
    assert not (first - {None}) & second
    assert not (first - {None}) & other_run
    assert len(PERSONAS) == 6
