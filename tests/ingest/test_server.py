"""The coalescing transport: a response's head and body in one socket write,
nothing held past the current event-loop step, order and data kept; and
uvicorn serving real sockets through it (keep-alive, streaming, large
bodies, HEAD, errors, 100-continue)."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from services.ingest.main import server_config
from services.ingest.server import HOLD_BYTES, CoalescingTransport, coalescing


class Recorder(asyncio.Transport):
    """A transport that records what is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def write_eof(self) -> None:
        self.events.append("eof")

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def next_step() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_head_and_its_body_go_out_in_one_write() -> None:
    inner = Recorder()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert inner.writes == []
    assert transport.get_write_buffer_size() > 0
    transport.write(b"ok")
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    await next_step()
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]


async def test_a_lone_write_goes_out_on_the_next_pass_of_the_loop() -> None:
    inner = Recorder()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await next_step()
    assert inner.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(b"a")  # and again, with a new callback
    await next_step()
    assert inner.writes[-1] == b"a"


async def test_large_writes_are_not_copied_and_order_is_kept() -> None:
    inner = Recorder()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    big = b"x" * (HOLD_BYTES + 1)
    transport.write(b"head")
    transport.write(big)
    transport.write(big)
    transport.write(b"tail")
    await next_step()
    assert inner.writes == [b"head", big, big, b"tail"]


async def test_close_and_eof_send_what_is_held_first_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    inner = Recorder()
    transport = CoalescingTransport(inner, loop)
    transport.write(b"last words")
    transport.close()
    assert (inner.writes, inner.events) == ([b"last words"], ["close"])
    await next_step()
    assert inner.writes == [b"last words"]

    inner = Recorder()
    transport = CoalescingTransport(inner, loop)
    transport.write(b"data")
    transport.write_eof()
    assert (inner.writes, inner.events) == ([b"data"], ["eof"])

    inner = Recorder()
    transport = CoalescingTransport(inner, loop)
    transport.write(b"data")
    transport.abort()
    await next_step()
    assert (inner.writes, inner.events) == ([], ["abort"])


async def test_nothing_is_written_to_a_connection_that_went_away() -> None:
    inner = Recorder()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"late")
    inner.closing = True  # the peer left before the loop's next pass
    await next_step()
    assert inner.writes == []


def test_the_protocol_is_uvicorns_with_the_transport_wrapped() -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(coalescing("auto"), HttpToolsProtocol)  # httptools is in the lock
    assert issubclass(coalescing("httptools"), HttpToolsProtocol)
    assert issubclass(coalescing("h11"), H11Protocol)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/boom":
        raise RuntimeError("a bug")
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if path == "/stream":  # chunked, with waits between the chunks
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"x" * 100_000, b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    answer = body if path == "/echo" else b"x" * 3_000_000 if path == "/big" else b"hello"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(answer)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer})


@contextlib.asynccontextmanager
async def served(http: str) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, http=http))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_uvicorn_serves_through_it(http: str) -> None:
    async with served(http) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        for _ in range(3):  # keep-alive: one connection, several answers
            answer = await client.get("/")
            assert (answer.status_code, answer.content) == (200, b"hello")
        streamed = await client.get("/stream")
        assert streamed.content == b"one,two," + b"x" * 100_000 + b"three"
        big = await client.get("/big")
        assert big.content == b"x" * 3_000_000
        upload = b"y" * 2_000_000
        echoed = await client.post("/echo", content=upload, headers={"expect": "100-continue"})
        assert echoed.content == upload
        head = await client.head("/")
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == "5"
        failed = await client.get("/boom")
        assert (failed.status_code, failed.text) == (500, "Internal Server Error")
        assert (await client.get("/")).content == b"hello"  # and the server still answers
