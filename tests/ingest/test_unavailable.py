"""When Kafka does not answer: API and webhooks 503 + Retry-After, pixel and click
still answer and count what they could not write."""

import asyncio
import re
from collections.abc import Sequence

import pytest

from schemas.envelope import CloudEvent
from services.common.errors import KafkaUnavailableError
from services.ingest.app import create_app
from services.ingest.tokens import TokenClaims, TokenKind, mint
from tests.ingest.conftest import AUTH, KEYRING, client_for, make_settings


class DownPublisher:
    """Like a KafkaPublisher whose cluster went away after start."""

    async def publish(self, topic: str, event: CloudEvent) -> None:
        raise KafkaUnavailableError("127.0.0.1:9", ConnectionError("refused"))


class HangingPublisher:
    async def publish_many(self, topic: str, events: Sequence[CloudEvent]) -> None:
        await asyncio.sleep(3600)

    async def publish(self, topic: str, event: CloudEvent) -> None:
        await asyncio.sleep(3600)


def unwritten(metrics_text: str, route: str) -> float:
    labels = f'reason="kafka_unavailable",route="{route}"'
    pattern = rf"hotlead_ingest_events_unwritten_total{{{re.escape(labels)}}} (\S+)"
    match = re.search(pattern, metrics_text)
    return float(match.group(1)) if match else 0.0


@pytest.mark.parametrize("publisher", [DownPublisher(), HangingPublisher()])
async def test_kafka_down_means_503_for_api_and_answers_for_people(publisher: object) -> None:
    app = create_app(make_settings(publish_timeout_s=0.2, retry_after_s=7), publisher)  # type: ignore[arg-type]
    async with client_for(app) as client:
        response = await client.post(
            "/v1/events",
            headers=AUTH,
            json={"events": [{"type": "page.viewed", "lead_id": "l", "data": {"url": "u"}}]},
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        lead = await client.put("/v1/leads/l", headers=AUTH, json={"role": "x"})
        assert lead.status_code == 503
        open_token = mint(TokenClaims(TokenKind.OPEN, "lead-1"), KEYRING)
        pixel = await client.get(f"/o/{open_token}.gif")
        assert pixel.status_code == 200
        click_token = mint(TokenClaims(TokenKind.CLICK, "l", target="https://a.example/"), KEYRING)
        click = await client.get(f"/c/{click_token}")
        assert click.status_code == 302
        assert click.headers["location"] == "https://a.example/"
        for _ in range(100):  # the background writer gives up after the publish timeout
            metrics = (await client.get("/metrics")).text
            if unwritten(metrics, "/c/{token}"):
                break
            await asyncio.sleep(0.05)
        assert unwritten(metrics, "/o/{token}.gif") == 1
        assert unwritten(metrics, "/c/{token}") == 1


class SlowPublisher:
    def __init__(self) -> None:
        self.published: list[CloudEvent] = []

    async def publish(self, topic: str, event: CloudEvent) -> None:
        await asyncio.sleep(0.3)
        self.published.append(event)


async def test_shutdown_waits_for_queued_pixel_writes() -> None:
    publisher = SlowPublisher()
    app = create_app(make_settings(), publisher)
    token = mint(TokenClaims(TokenKind.OPEN, "lead-1"), KEYRING)
    async with app.router.lifespan_context(app), client_for(app) as client:
        assert (await client.get(f"/o/{token}.gif")).status_code == 200
        assert publisher.published == []  # answered before the write
    assert [event.subject for event in publisher.published] == ["lead-1"]
