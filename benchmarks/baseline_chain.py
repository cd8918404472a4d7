"""The baseline for the pipeline benchmark: the same hops as hotlead with
nothing but bare aiokafka, a bare ASGI app and one HTTP POST.

    POST /e  ->  topic A  ->  relay  ->  topic B  ->  notifier  ->  POST to the receiver

Run as three processes, like hotlead's three services:
    python -m benchmarks.baseline_chain ingest  BOOTSTRAP TOPIC_A PORT
    python -m benchmarks.baseline_chain relay   BOOTSTRAP TOPIC_A TOPIC_B GROUP
    python -m benchmarks.baseline_chain notify  BOOTSTRAP TOPIC_B GROUP RECEIVER_URL
The request body is the id; it is the Kafka value at every hop and the body
of the final POST. The ingest answers 200 once Kafka acknowledged (acks=all).
"""

import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def ingest_app(bootstrap: str, topic: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    producer: AIOKafkaProducer | None = None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal producer
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    producer = AIOKafkaProducer(
                        bootstrap_servers=bootstrap,
                        acks="all",
                        enable_idempotence=True,
                        linger_ms=2,
                    )
                    await producer.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if producer is not None:
                        await producer.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/e" and producer is not None:
            await producer.send_and_wait(topic, body, key=body)
            status = 200
        else:
            status = 200 if scope["path"] == "/healthz" else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def relay(bootstrap: str, source: str, target: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="latest"
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
    await consumer.start()
    await producer.start()
    try:
        async for record in consumer:
            await producer.send(target, record.value, key=record.key)
    finally:
        await producer.stop()
        await consumer.stop()


async def notify(bootstrap: str, source: str, group: str, receiver: str) -> None:
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="latest"
    )
    await consumer.start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            async for record in consumer:
                try:
                    await client.post(receiver, content=record.value)
                except httpx.HTTPError:
                    continue  # counted as lost by the bench (never received)
    finally:
        await consumer.stop()


def main(argv: list[str]) -> None:
    role, bootstrap, *rest = argv
    if role == "ingest":
        topic, port = rest
        uvicorn.run(
            ingest_app(bootstrap, topic), host="127.0.0.1", port=int(port), log_level="warning"
        )
    elif role == "relay":
        asyncio.run(relay(bootstrap, *rest))
    elif role == "notify":
        asyncio.run(notify(bootstrap, *rest))
    else:
        raise SystemExit(f"unknown role {role!r}: ingest, relay or notify")


if __name__ == "__main__":
    main(sys.argv[1:])
