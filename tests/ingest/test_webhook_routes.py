"""POST /webhooks/sendgrid and /webhooks/generic on an in-memory publisher."""

import base64
import time

import httpx
import orjson

from schemas.topics import EVENTS, REJECTED
from services.common.publisher import MemoryPublisher
from services.ingest import standard_webhooks
from services.ingest.app import create_app
from tests.ingest.conftest import WEBHOOK_SECRET, client_for, make_settings, sendgrid_headers

SG_EVENTS = [
    {"email": "ann@example.com", "timestamp": 1_760_000_000, "event": "open",
     "sg_event_id": "sg-open-1", "sg_message_id": "m1", "sg_machine_open": True,
     "hotlead_lead_id": "lead-1"},
    {"email": "ann@example.com", "timestamp": 1_760_000_005, "event": "click",
     "sg_event_id": "sg-click-1", "sg_message_id": "m1", "url": "https://a.example/x",
     "useragent": "Mozilla/5.0 (Macintosh) Safari/605.1.15", "hotlead_lead_id": "lead-1"},
    {"email": "bob@example.com", "timestamp": 1_760_000_006, "event": "deferred",
     "sg_event_id": "sg-def-1"},
    {"email": "bob@example.com", "timestamp": 1_760_000_007, "event": "bounce",
     "sg_event_id": "sg-b-1"},
]  # fmt: skip


async def test_signed_sendgrid_events_are_mapped(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    body = orjson.dumps(SG_EVENTS)
    response = await client.post(
        "/webhooks/sendgrid", content=body, headers=sendgrid_headers(body, int(time.time()))
    )
    assert response.status_code == 200
    answer = response.json()
    assert (answer["accepted"], answer["ignored"], answer["rejected"]) == (2, 1, 1)
    opened, clicked = memory.on(f"unit.{EVENTS}")
    assert (opened.id, opened.bot, opened.subject) == ("sg-open-1", "machine_open", "lead-1")
    assert (clicked.id, clicked.bot) == ("sg-click-1", None)
    [evidence] = memory.on(f"unit.{REJECTED}")
    assert "hotlead_lead_id" in evidence.model_dump()["data"]["reason"]
    again = await client.post(
        "/webhooks/sendgrid", content=body, headers=sendgrid_headers(body, int(time.time()))
    )
    assert again.json()["duplicates"] == 2  # SendGrid's retries are not written twice


async def test_bad_or_stale_sendgrid_signatures_are_401_and_write_nothing(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    body = orjson.dumps(SG_EVENTS)
    now = int(time.time())
    tampered = body.replace(b"lead-1", b"lead-2")
    cases = [
        (tampered, sendgrid_headers(body, now)),
        (body, sendgrid_headers(body, now - 3600)),
        (body, {"Content-Type": "application/json"}),
    ]
    for content, headers in cases:
        response = await client.post("/webhooks/sendgrid", content=content, headers=headers)
        assert response.status_code == 401
    assert memory.published == []


async def test_sendgrid_without_a_configured_key_refuses(memory: MemoryPublisher) -> None:
    app = create_app(make_settings(sendgrid_public_key=""), memory)
    async with client_for(app) as client:
        body = orjson.dumps(SG_EVENTS)
        headers = sendgrid_headers(body, int(time.time()))
        response = await client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 401
    assert memory.published == []


def generic_headers(body: bytes, webhook_id: str = "msg_1", age_s: int = 0) -> dict[str, str]:
    key = standard_webhooks.decode_secret(WEBHOOK_SECRET)
    timestamp = int(time.time()) - age_s
    old = "v1," + base64.b64encode(b"x" * 32).decode()  # a rotated-out key's signature
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"{old} {standard_webhooks.sign(key, webhook_id, timestamp, body)}",
        "Content-Type": "application/json",
    }


async def test_standard_webhooks_deliver_events_with_the_webhook_id(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    body = orjson.dumps(
        {"type": "asset.downloaded", "lead_id": "lead-4", "data": {"asset_id": "wp-1"}}
    )
    response = await client.post("/webhooks/generic", content=body, headers=generic_headers(body))
    assert response.status_code == 200
    [event] = memory.on(f"unit.{EVENTS}")
    assert (event.id, event.source, event.subject) == ("msg_1", "/webhooks/generic", "lead-4")
    retry = await client.post("/webhooks/generic", content=body, headers=generic_headers(body))
    assert retry.json()["duplicates"] == 1


async def test_bad_or_stale_standard_webhooks_are_401_and_write_nothing(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    body = orjson.dumps({"type": "form.submitted", "lead_id": "l", "data": {"form_id": "f"}})
    for content, headers in (
        (body + b" ", generic_headers(body)),
        (body, generic_headers(body, age_s=3600)),
        (body, {**generic_headers(body), "webhook-id": "msg_2"}),
        (body, {"Content-Type": "application/json"}),
    ):
        response = await client.post("/webhooks/generic", content=content, headers=headers)
        assert response.status_code == 401
    assert memory.published == []
