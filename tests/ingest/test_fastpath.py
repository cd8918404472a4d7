"""POST /v1/events answered by the HTTP protocol (services/ingest/fastpath.py)
answers byte for byte like the ASGI way it stands in for, on real sockets:
the same app served twice by uvicorn, with `hotlead ingest`'s protocol and
with uvicorn's httptools protocol (the ASGI EventsEndpoint answers there),
the same bytes sent to both, the answers compared (the date header aside).
Keep-alive, pipelining, chunked bodies, 100-continue, HTTP/1.0, errors,
oversized bodies, Kafka down (503) and up (the real broker)."""

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from schemas.topics import EVENTS
from services.common.kafka_settings import KafkaSettings
from services.common.publisher import MemoryPublisher
from services.ingest import fastpath
from services.ingest.app import create_app
from services.ingest.kafka import IngestKafkaPublisher
from services.ingest.main import server_config
from services.ingest.server import coalescing
from tests.ingest.conftest import API_KEY, make_settings

PAGE = {"type": "page.viewed", "lead_id": "lead-1", "data": {"url": "https://a.example/p"}}
AT = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
_DATE = re.compile(rb"date: [^\r]*\r\n")


def post(
    body: bytes | dict[str, Any],
    *,
    key: str | None = API_KEY,
    path: str = "/v1/events",
    extra: str = "",
    version: str = "1.1",
) -> bytes:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    auth = f"authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST {path} HTTP/{version}\r\nhost: ingest.test\r\ncontent-type: application/json\r\n"
        f"{auth}content-length: {len(data)}\r\n{extra}\r\n"
    )
    return head.encode() + data


def one(event_id: str) -> dict[str, Any]:
    return {"events": [{**PAGE, "id": event_id}]}


class Served:
    """An app under uvicorn on a real socket; `fast`: with `hotlead ingest`'s protocol."""

    def __init__(self, app: FastAPI, *, fast: bool, keep_alive_s: float = 5) -> None:
        self.app = app
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.port = sock.getsockname()[1]
        config = server_config(app, host="127.0.0.1", port=self.port, http="httptools")
        if not fast:
            config.http = coalescing("httptools")  # uvicorn's protocol: the ASGI way
        config.timeout_keep_alive = keep_alive_s  # type: ignore[assignment]
        self.server = uvicorn.Server(config)

    async def __aenter__(self) -> "Served":
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        for _ in range(200):
            if self.server.started:
                break
            await asyncio.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await self.task
        self.sock.close()

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    """One answer (head and body) as received, without its date header; b"" at EOF."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except asyncio.IncompleteReadError as exc:
        return exc.partial  # b"" at EOF; a cut answer fails the comparison
    match = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return _DATE.sub(b"", head) + body


async def exchange(
    served: Served, steps: list[bytes | float], answers: int
) -> tuple[list[bytes], bool]:
    """Send `steps` on one connection (bytes are sent, numbers are pauses in
    seconds), read `answers` answers; whether the server closed afterwards."""
    reader, writer = await served.connect()
    try:
        for step in steps:
            if isinstance(step, bytes):
                writer.write(step)
                await writer.drain()
            else:
                await asyncio.sleep(step)
        got = [await read_answer(reader) for _ in range(answers)]
        closed = await asyncio.wait_for(reader.read(1), 0.3) == b"" if answers else False
    except TimeoutError:
        closed = False
    finally:
        writer.close()
    return got, closed


@contextlib.asynccontextmanager
async def both_ways(
    publisher: Callable[[], Any], **settings: Any
) -> AsyncIterator[tuple[Served, Served]]:
    """The app twice (own publisher each): with the fast path, and the ASGI way."""
    apps = [create_app(make_settings(**settings), publisher()) for _ in range(2)]
    for app in apps:
        app.state.ctx.clock = lambda: AT  # the same records, to the microsecond
    async with Served(apps[0], fast=True) as fast, Served(apps[1], fast=False) as asgi:
        yield fast, asgi


@pytest.fixture
def cycles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests the fast path answered."""
    count = [0]
    original = fastpath.EventsCycle.run

    async def run(self: fastpath.EventsCycle) -> None:
        count[0] += 1
        await original(self)

    monkeypatch.setattr(fastpath.EventsCycle, "run", run)
    return count


async def same(
    pair: tuple[Served, Served], steps: list[bytes | float], answers: int
) -> tuple[list[bytes], bool]:
    fast, asgi = pair
    got = await exchange(fast, steps, answers)
    assert got == await exchange(asgi, steps, answers)
    return got


async def test_keep_alive_answers_errors_and_metrics_are_the_same(cycles: list[int]) -> None:
    steps: list[bytes | float] = [
        post(one("ev-1")),
        post(one("ev-1")),  # a duplicate
        post({"events": [PAGE, {**PAGE, "lead_id": "bad id!"}, "x"]}),  # accepted + rejected
        post(one("ev-2"), key=None),  # 401
        post(one("ev-2"), key="wrong"),  # 401
        post(b"{not json"),  # 400
        post({"items": []}),  # 400
        post({"events": [PAGE] * 5}),  # 413: more than max_batch_events
        post(one("ev-3"), path="/v1/events?via=beacon"),  # the path exactly, any query
        post(one("ev-4"), path="/v1/events/"),  # another path: the app's redirect
        b"GET /v1/events HTTP/1.1\r\nhost: x\r\n\r\n",  # another method: 405
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
    ]
    async with both_ways(MemoryPublisher, max_batch_events=3) as pair:
        answers, closed = await same(pair, steps, len(steps))
        metrics = [
            await exchange(s, [b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n"], 1) for s in pair
        ]
        published = [s.app.state.ctx.sink.publisher.published for s in pair]
    assert not closed
    statuses = [int(answer.split(b" ", 2)[1]) for answer in answers]
    assert statuses == [200, 200, 200, 401, 401, 400, 400, 413, 200, 307, 405, 200]
    assert b'"status":"duplicate"' in answers[1]
    assert b"www-authenticate: Bearer" in answers[3]
    assert cycles[0] == 9  # POST /v1/events, with or without a query; not the others
    assert [(t, e.model_dump(mode="json")) for t, e in published[0]] == [
        (t, e.model_dump(mode="json")) for t, e in published[1]
    ]
    counted = [
        sorted(re.findall(rb'hotlead_ingest_requests_total\{route="/v1/events".*', m[0][0]))
        for m in metrics
    ]
    assert counted[0] == counted[1]
    statuses_counted = [re.search(rb'status="(\d+)"} (\S+)', line).groups() for line in counted[0]]  # type: ignore[union-attr]
    assert statuses_counted == [
        (b"200", b"4.0"), (b"400", b"2.0"), (b"401", b"2.0"), (b"405", b"1.0"), (b"413", b"1.0")
    ]  # fmt: skip


async def test_pipelined_requests_are_answered_in_order(cycles: list[int]) -> None:
    pipelined = b"".join(
        [
            post(one("ev-p1")),
            b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
            post(one("ev-p2"), key=None),
            post(one("ev-p3")),
            post(one("ev-p1")),
        ]
    )
    async with both_ways(MemoryPublisher) as pair:
        answers, closed = await same(pair, [pipelined], 5)
    assert [int(a.split(b" ", 2)[1]) for a in answers] == [200, 200, 401, 200, 200]
    assert b'"id":"ev-p3"' in answers[3]
    assert b'"status":"duplicate"' in answers[4]
    assert not closed
    assert cycles[0] == 4


async def test_a_chunked_body_sent_in_pieces(cycles: list[int]) -> None:
    body = orjson.dumps({"events": [{**PAGE, "id": f"ev-c{i}"} for i in range(3)]})
    head = (
        b"POST /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + API_KEY.encode()
        + b"\r\ntransfer-encoding: chunked\r\n\r\n"
    )  # fmt: skip
    pieces = [body[:10], body[10:50], body[50:]]
    steps: list[bytes | float] = [head]
    for piece in pieces:
        steps += [b"%x\r\n%s\r\n" % (len(piece), piece), 0.05]
    steps.append(b"0\r\n\r\n")
    async with both_ways(MemoryPublisher) as pair:
        (answer,), _ = await same(pair, steps, 1)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b'"accepted":3' in answer
    assert cycles[0] == 1


async def test_a_chunked_body_over_the_limit_is_413_and_the_connection_goes_on(
    cycles: list[int],
) -> None:
    head = (
        b"POST /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + API_KEY.encode()
        + b"\r\ntransfer-encoding: chunked\r\n\r\n"
    )  # fmt: skip
    chunk = b"400\r\n" + b" " * 1024 + b"\r\n"
    steps: list[bytes | float] = [head, chunk, 0.05, chunk, 0.05, chunk, b"0\r\n\r\n", 0.05]
    steps.append(post(one("ev-after")))
    async with both_ways(MemoryPublisher, max_body_bytes=2048) as pair:
        (too_large, after), closed = await same(pair, steps, 2)
    assert too_large.startswith(b"HTTP/1.1 413")
    assert after.startswith(b"HTTP/1.1 200")
    assert not closed
    assert cycles[0] == 2


async def test_a_declared_length_over_the_limit_is_413_before_the_body() -> None:
    body = b" " * 3000
    async with both_ways(MemoryPublisher, max_body_bytes=2048) as pair:
        (answer,), _ = await same(pair, [post(body)[: -len(body)]], 1)  # head only
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"larger than 2048 bytes" in answer


async def test_expect_100_continue_then_the_body(cycles: list[int]) -> None:
    body = orjson.dumps(one("ev-100"))
    request = post(body, extra="expect: 100-continue\r\n")
    head = request[: -len(body)]
    async with both_ways(MemoryPublisher) as pair:
        for served in pair:
            reader, writer = await served.connect()
            writer.write(head)
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(body)
            answer = await read_answer(reader)
            assert answer.startswith(b"HTTP/1.1 200")
            writer.close()
        # refused before the body: no 100 Continue, the answer at once
        (refused,), _ = await same(pair, [post(body, key=None, extra="expect: 100-continue\r\n")[
            : -len(body)]], 1)  # fmt: skip
    assert refused.startswith(b"HTTP/1.1 401")
    assert cycles[0] == 2


@pytest.mark.parametrize(("version", "extra"), [("1.0", ""), ("1.1", "connection: close\r\n")])
async def test_http_10_and_connection_close_close_after_the_answer(
    version: str, extra: str, cycles: list[int]
) -> None:
    async with both_ways(MemoryPublisher) as pair:
        (answer,), closed = await same(pair, [post(one("ev-c"), version=version, extra=extra)], 1)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in answer
    assert closed
    assert cycles[0] == 1


async def test_a_client_that_leaves_before_its_answer_gets_none_and_others_are_served() -> None:
    async with both_ways(MemoryPublisher) as pair:
        for served in pair:
            _, writer = await served.connect()
            writer.write(post(b'{"events": [')[:-4])  # the body never completes
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
        await asyncio.sleep(0.05)
        (answer,), _ = await same(pair, [post(one("ev-next"))], 1)
    assert answer.startswith(b"HTTP/1.1 200")


async def test_an_exception_in_the_route_is_uvicorns_500(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    async with both_ways(MemoryPublisher) as pair:
        for served in pair:
            monkeypatch.setattr(served.app.events, "answer", broken)  # type: ignore[attr-defined]
        (answer,), closed = await same(pair, [post(one("ev-bug"))], 1)
    assert answer.startswith(b"HTTP/1.1 500")
    assert answer.endswith(b"Internal Server Error")
    assert closed


class DeadKafka(IngestKafkaPublisher):
    """The real publisher, pointed at a port where no broker listens."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:9", request_timeout_ms=500)


@pytest.mark.kafka
async def test_kafka_down_is_the_same_503_with_retry_after() -> None:
    async with both_ways(DeadKafka, retry_after_s=7) as pair:
        (answer,), closed = await same(pair, [post(one("ev-down"))], 1)
    assert answer.startswith(b"HTTP/1.1 503")
    assert b"retry-after: 7" in answer
    assert b"Kafka did not acknowledge" in answer
    assert not closed


@pytest.mark.kafka
async def test_on_the_real_broker_every_answered_event_is_in_kafka(
    kafka_settings: KafkaSettings, unique: str, cycles: list[int]
) -> None:
    settings = make_settings(
        kafka_bootstrap=kafka_settings.kafka_bootstrap, topic_prefix=kafka_settings.topic_prefix
    )
    app = create_app(settings, IngestKafkaPublisher(settings.kafka_bootstrap))
    async with Served(app, fast=True) as served:
        for _ in range(100):  # the lifespan connects the producer
            if app.state.ctx.sink.connected:
                break
            await asyncio.sleep(0.05)
        connections = [await served.connect() for _ in range(4)]
        for index, (_, writer) in enumerate(connections):
            writer.write(b"".join(post(one(f"ev-k{index}-{n}")) for n in range(5)))
        answers = [[await read_answer(reader) for _ in range(5)] for reader, _ in connections]
        for _, writer in connections:
            writer.close()
    assert all(a.startswith(b"HTTP/1.1 200") for got in answers for a in got)
    assert cycles[0] == 20
    consumer = AIOKafkaConsumer(
        kafka_settings.topic(EVENTS),
        bootstrap_servers=kafka_settings.kafka_bootstrap,
        group_id=f"fastpath-{unique}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        ids: set[str] = set()
        for _ in range(40):
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                ids.update(orjson.loads(m.value)["id"] for m in messages)
            if len(ids) >= 20:
                break
    finally:
        await consumer.stop()
    assert ids == {f"ev-k{i}-{n}" for i in range(4) for n in range(5)}


async def test_an_idle_connection_closes_after_the_keep_alive_timeout_a_busy_one_does_not() -> None:
    app = create_app(make_settings(), MemoryPublisher())
    async with Served(app, fast=True, keep_alive_s=0.4) as served:
        reader, writer = await served.connect()
        loop = asyncio.get_running_loop()
        for n in range(6):  # busy for ~0.9 s, never idle for 0.4 s
            writer.write(post(one(f"ev-busy-{n}")))
            assert (await read_answer(reader)).startswith(b"HTTP/1.1 200")
            await asyncio.sleep(0.15)
        idle_from = loop.time()
        assert await asyncio.wait_for(reader.read(1), 5) == b""  # closed by the server
        idle_s = loop.time() - idle_from
        writer.close()
    assert 0.2 <= idle_s < 2.0
