"""Every route's events arrive in the real Kafka, keyed by lead (or anonymous) id;
one topic is read back with kcat. And a publisher pointed at a dead port."""

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from schemas import decode_event
from schemas.topics import EVENTS, REJECTED
from services.common.kafka_settings import KafkaSettings
from services.ingest import standard_webhooks
from services.ingest.app import create_app
from services.ingest.kafka import IngestKafkaPublisher
from services.ingest.tokens import TokenClaims, TokenKind, mint
from tests.ingest.conftest import (
    AUTH,
    KEYRING,
    ORIGIN,
    WEBHOOK_SECRET,
    client_for,
    make_settings,
    sendgrid_headers,
)

pytestmark = pytest.mark.kafka


async def read_topic(bootstrap: str, topic: str, count: int, group: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records: list[Any] = []
        deadline = time.monotonic() + 20
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                records.extend(messages)
        return records
    finally:
        await consumer.stop()


@pytest.fixture
async def broker_app(kafka_settings: KafkaSettings) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        kafka_bootstrap=kafka_settings.kafka_bootstrap,
        topic_prefix=kafka_settings.topic_prefix,
        events_partitions=3,
        partitions=3,
    )
    app = create_app(settings, IngestKafkaPublisher(settings.kafka_bootstrap))
    async with app.router.lifespan_context(app):
        yield app


async def test_every_route_writes_to_kafka(
    broker_app: FastAPI, kafka_settings: KafkaSettings, unique: str
) -> None:
    async with client_for(broker_app) as client:
        assert (await client.get("/readyz")).json() == {"status": "ready", "kafka": True}
        open_token = mint(TokenClaims(TokenKind.OPEN, "lead-open", "em-1"), KEYRING)
        assert (await client.get(f"/o/{open_token}.gif")).status_code == 200
        click = mint(
            TokenClaims(TokenKind.CLICK, "lead-click", target="https://a.example/"), KEYRING
        )
        assert (await client.get(f"/c/{click}")).status_code == 302
        batch = {
            "events": [
                {"id": "api-1", "type": "form.submitted", "lead_id": "lead-api",
                 "data": {"form_id": "demo"}},
                {"type": "form.submitted", "lead_id": "lead-bad", "data": {}},
            ]
        }  # fmt: skip
        events = await client.post("/v1/events", headers=AUTH, json=batch)
        assert events.json()["accepted"] == 1
        lead = await client.put("/v1/leads/lead-put", headers=AUTH, json={"role": "executive"})
        assert lead.status_code == 200
        feedback = await client.post(
            "/v1/crm/feedback", headers=AUTH, json={"lead_id": "lead-crm", "status": "won"}
        )
        assert feedback.status_code == 200
        sg_body = orjson.dumps(
            [{"event": "delivered", "timestamp": 1_760_000_000, "sg_event_id": "sg-1",
              "hotlead_lead_id": "lead-sg", "email": "ann@example.com"}]
        )  # fmt: skip
        sendgrid = await client.post(
            "/webhooks/sendgrid",
            content=sg_body,
            headers=sendgrid_headers(sg_body, int(time.time())),
        )
        assert sendgrid.json()["accepted"] == 1
        generic_body = orjson.dumps(
            {"type": "asset.downloaded", "lead_id": "lead-wh", "data": {"asset_id": "wp"}}
        )
        key = standard_webhooks.decode_secret(WEBHOOK_SECRET)
        now = int(time.time())
        generic = await client.post(
            "/webhooks/generic",
            content=generic_body,
            headers={
                "webhook-id": f"wh-{unique}",
                "webhook-timestamp": str(now),
                "webhook-signature": standard_webhooks.sign(key, f"wh-{unique}", now, generic_body),
            },
        )
        assert generic.json()["accepted"] == 1
        beacon = await client.post(
            "/b",
            content=orjson.dumps({"url": "http://127.0.0.1/p", "anonymous_id": "anon-1"}),
            headers={"Origin": ORIGIN},
        )
        assert beacon.status_code == 204

    records = await read_topic(
        kafka_settings.kafka_bootstrap, kafka_settings.topic(EVENTS), 9, f"t-{unique}"
    )
    by_key = {r.key.decode(): decode_event(r.value) for r in records}
    assert {key: event.type.short for key, event in by_key.items()} == {
        "lead-open": "email.opened",
        "lead-click": "email.clicked",
        "lead-api": "form.submitted",
        "lead-put": "lead.updated",
        "lead-crm": "crm.status_changed",
        "lead-sg": "email.delivered",
        "lead-wh": "asset.downloaded",
        "anon-1": "page.viewed",
    }
    assert len(records) == 8
    rejected = await read_topic(
        kafka_settings.kafka_bootstrap, kafka_settings.topic(REJECTED), 1, f"r-{unique}"
    )
    [evidence] = [decode_event(r.value) for r in rejected]
    assert evidence.subject == "lead-bad"

    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed (.ci/run installs it)"
    command = [kcat, "-b", kafka_settings.kafka_bootstrap, "-C", "-t",
               kafka_settings.topic(EVENTS), "-o", "beginning", "-e", "-q", "-J"]  # fmt: skip
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=True
    )
    by_kcat = {
        row["key"]: json.loads(row["payload"])
        for row in map(json.loads, result.stdout.splitlines())
    }
    assert by_kcat["lead-api"]["id"] == "api-1"
    assert by_kcat["lead-api"]["type"] == "hotlead.form.submitted"
    assert by_kcat["lead-sg"]["id"] == "sg-1"
    assert "ann@example.com" not in result.stdout


async def test_a_dead_broker_gives_503_while_pixel_and_click_answer() -> None:
    settings = make_settings(kafka_bootstrap="127.0.0.1:1", publish_timeout_s=1.0)
    app = create_app(settings, IngestKafkaPublisher(settings.kafka_bootstrap))
    async with app.router.lifespan_context(app), client_for(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["kafka"] is False
        assert (await client.get("/healthz")).status_code == 200
        api = await client.post(
            "/v1/events",
            headers=AUTH,
            json={"events": [{"type": "page.viewed", "lead_id": "l", "data": {"url": "u"}}]},
        )
        assert api.status_code == 503
        assert api.headers["retry-after"] == "5"
        body = orjson.dumps(
            [{"event": "open", "timestamp": 1, "sg_event_id": "e", "hotlead_lead_id": "l"}]
        )
        webhook = await client.post(
            "/webhooks/sendgrid", content=body, headers=sendgrid_headers(body, int(time.time()))
        )
        assert webhook.status_code == 503
        assert webhook.headers["retry-after"] == "5"
        open_token = mint(TokenClaims(TokenKind.OPEN, "lead-1"), KEYRING)
        assert (await client.get(f"/o/{open_token}.gif")).status_code == 200
        click = mint(TokenClaims(TokenKind.CLICK, "lead-1", target="https://a.example/"), KEYRING)
        assert (await client.get(f"/c/{click}")).headers["location"] == "https://a.example/"
        metrics = (await client.get("/metrics")).text
        unwritten = (
            'hotlead_ingest_events_unwritten_total{reason="kafka_unavailable",route="%s"} 1.0'
        )
        assert unwritten % "/o/{token}.gif" in metrics
        assert unwritten % "/c/{token}" in metrics
        assert "hotlead_ingest_kafka_ready 0.0" in metrics


async def test_batched_writes_land_where_a_plain_send_would_in_order(
    kafka_bootstrap: str, topic_factory: Any, unique: str
) -> None:
    from datetime import UTC, datetime

    from aiokafka import AIOKafkaProducer

    from schemas.codec import encode_event, encode_key
    from schemas.events import PageViewed

    batched_topic = await topic_factory("batched", partitions=3)
    plain_topic = await topic_factory("plain", partitions=3)
    events = [
        PageViewed(
            id=f"pv-{i}", source="/bench", subject=f"lead-{i % 7}",
            time=datetime(2026, 1, 1, tzinfo=UTC), data={"url": f"https://a.example/{i}"},  # type: ignore[arg-type]
        )
        for i in range(60)
    ]  # fmt: skip
    publisher = IngestKafkaPublisher(kafka_bootstrap)
    await publisher.start()
    try:
        await publisher.publish_many(batched_topic, events)
    finally:
        await publisher.stop()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(plain_topic, encode_event(event), key=encode_key(event))
    finally:
        await producer.stop()

    batched = await read_topic(kafka_bootstrap, batched_topic, 60, f"b-{unique}")
    plain = await read_topic(kafka_bootstrap, plain_topic, 60, f"p-{unique}")
    partition_of = {r.key: r.partition for r in plain}
    assert len(batched) == 60
    assert {r.key: r.partition for r in batched} == partition_of
    for lead in {r.key for r in batched}:
        ids = [decode_event(r.value).id for r in batched if r.key == lead]
        assert ids == [e.id for e in events if encode_key(e) == lead]  # per-lead order kept


async def test_group_commit_fails_only_the_caller_whose_record_cannot_be_written(
    kafka_bootstrap: str, topic_factory: Any, unique: str
) -> None:
    from services.common.errors import KafkaUnavailableError
    from services.ingest.records import Record

    topic = await topic_factory("grouped", partitions=3)
    small = [
        Record(f"s-{i}", "hotlead.page.viewed", f"lead-{i}".encode(), b"{}") for i in range(50)
    ]
    huge = [Record("h-1", "hotlead.page.viewed", b"lead-1", b"x" * 2_000_000)]
    more = [Record(f"m-{i}", "hotlead.page.viewed", f"lead-{i}".encode(), b"{}") for i in range(50)]
    publisher = IngestKafkaPublisher(kafka_bootstrap)
    await publisher.start()
    try:
        results = await asyncio.gather(
            publisher.publish_records(topic, small),
            publisher.publish_records(topic, huge),
            publisher.publish_records(topic, more),
            return_exceptions=True,
        )
    finally:
        await publisher.stop()
    assert results[0] is None
    assert isinstance(results[1], KafkaUnavailableError)
    assert results[2] is None
    written = await read_topic(kafka_bootstrap, topic, 100, f"g-{unique}")
    assert sorted(r.key for r in written) == sorted([r.key for r in small + more])
