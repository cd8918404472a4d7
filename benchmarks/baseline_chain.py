"""The baseline for the pipeline benchmark: the same hops as hotlead with nothing but
bare aiokafka, a bare HTTP server and one HTTP POST per alert.

    POST /e  ->  topic A  ->  relay  ->  topic B  ->  notifier  ->  POST to the receiver

Run as three processes, like hotlead's three services:
    python -m benchmarks.baseline_chain ingest  BOOTSTRAP TOPIC_A PORT
    python -m benchmarks.baseline_chain relay   BOOTSTRAP TOPIC_A TOPIC_B GROUP
    python -m benchmarks.baseline_chain notify  BOOTSTRAP TOPIC_B GROUP RECEIVER_URL
The request body is the id; it is the Kafka value at every hop and the body of the
final POST. The ingest answers 200 once Kafka acknowledged (acks=all, idempotent).
The relay forwards probes only (ids starting `pr`), as the scorer hands off only
the leads that qualify; the notifier posts alerts concurrently on keep-alive
connections (one slow POST does not hold up the next alert).
"""

import asyncio
import signal
import sys
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.rawhttp import Pool, serve
from services.common.socket_reads import cap_socket_reads

LINGER_MS = 1


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=LINGER_MS
    )


def _consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="latest",
        fetch_max_wait_ms=100,
    )


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def ingest(bootstrap: str, topic: str, port: str) -> None:
    producer = _producer(bootstrap)
    await producer.start()

    async def handle(method: bytes, path: bytes, body: bytes) -> tuple[int, bytes]:
        if path == b"/e":
            await producer.send_and_wait(topic, body, key=body)
            return 200, b""
        return (200, b"ok") if path == b"/healthz" else (404, b"")

    server = await serve(handle, "127.0.0.1", int(port))
    try:
        await _until_stopped()
    finally:
        server.close()
        await producer.stop()


async def relay(bootstrap: str, source: str, target: str, group: str) -> None:
    consumer = _consumer(bootstrap, source, group)
    producer = _producer(bootstrap)
    await consumer.start()
    await producer.start()
    try:
        async for record in consumer:
            if record.value is not None and record.value.startswith(b"pr"):
                await producer.send(target, record.value, key=record.key)
    finally:
        await producer.stop()
        await consumer.stop()


async def notify(bootstrap: str, source: str, group: str, receiver: str) -> None:
    url = urlsplit(receiver)
    pool = Pool(url.hostname or "127.0.0.1", url.port or 80)
    path = (url.path or "/").encode()
    consumer = _consumer(bootstrap, source, group)
    await consumer.start()
    posting: set[asyncio.Task[object]] = set()
    try:
        async for record in consumer:
            task = asyncio.ensure_future(pool.request(b"POST", path, record.value or b""))
            posting.add(task)
            task.add_done_callback(posting.discard)  # a failed POST counts as lost
    finally:
        await consumer.stop()
        pool.close()


def main(argv: list[str]) -> None:
    role, bootstrap, *rest = argv
    roles = {"ingest": ingest, "relay": relay, "notify": notify}
    if role not in roles:
        raise SystemExit(f"unknown role {role!r}: ingest, relay or notify")
    cap_socket_reads()  # as the hotlead services do: the same socket reads on both chains
    asyncio.run(roles[role](bootstrap, *rest))  # type: ignore[operator]


if __name__ == "__main__":
    main(sys.argv[1:])
