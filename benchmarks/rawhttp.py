"""Minimal HTTP/1.1 over raw asyncio protocols, for the benchmark harness only.

httpx and uvicorn cost a few hundred microseconds of CPU per request; at
thousands of requests per second on two shared cores that is the harness
measuring itself. Here one request or answer is a few bytes written and one
`data_received` parsed: keep-alive connections, Content-Length bodies only (what
the baseline chain's ingest and notifier exchange; the load generators have their
own sender, benchmarks/openloop.py, and the fake Slack its own server,
benchmarks/stamped.py).
Not a general HTTP implementation: no chunked bodies, no pipelining.
"""

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Awaitable, Callable

Handler = Callable[[bytes, bytes, bytes], Awaitable[tuple[int, bytes]]]
"""(method, path, body) -> (status, body)."""

REASONS = {200: b"OK", 202: b"Accepted", 404: b"Not Found", 500: b"Internal Server Error"}

READ_SIZE = 65_536
"""Bytes per socket read. asyncio reads up to 256 KiB at a time (`max_size` of its
socket transport); for answers and requests of a few hundred bytes that buffer,
allocated and shrunk on every read, cost this server ~30 us of CPU per request
(0.104-0.113 against 0.073-0.078 CPU ms per request with 64 KiB, 12,000 requests
at 2,000/s, busy machine)."""


def small_reads(transport: asyncio.BaseTransport) -> None:
    """Let an asyncio socket transport read at most READ_SIZE bytes at a time."""
    if hasattr(transport, "max_size"):
        transport.max_size = READ_SIZE


def harness_priority(nice: int = -5) -> None:
    """Run the harness' own processes (load generators, receiver) a little ahead of the
    rest of a shared machine, so that what is measured is the chain, not the harness
    waiting for a CPU. Needs the right to lower a nice value; otherwise a no-op."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, nice)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            raise ValueError("chunked bodies are not supported by the bench harness")
    return 0


class _Parser:
    """Splits a byte stream into (head, body) messages framed by Content-Length."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self._buffer += data
        messages: list[tuple[bytes, bytes]] = []
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return messages
            head = bytes(self._buffer[:end])
            length = _content_length(head)
            total = end + 4 + length
            if len(self._buffer) < total:
                return messages
            messages.append((head, bytes(self._buffer[end + 4 : total])))
            del self._buffer[:total]


class _ServerProtocol(asyncio.Protocol):
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._parser = _Parser()
        self._transport: asyncio.Transport | None = None
        self._queue: asyncio.Queue[tuple[bytes, bytes] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        small_reads(transport)
        self._transport = transport  # type: ignore[assignment]
        self._worker = asyncio.ensure_future(self._serve())

    def data_received(self, data: bytes) -> None:
        for message in self._parser.feed(data):
            self._queue.put_nowait(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._queue.put_nowait(None)

    async def _serve(self) -> None:
        while (message := await self._queue.get()) is not None:
            head, body = message
            method, path, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            status, answer = await self._handler(method, path, body)
            if self._transport is not None and not self._transport.is_closing():
                reason = REASONS.get(status, b"Status")
                self._transport.write(
                    b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncontent-type: application/json"
                    b"\r\n\r\n%s" % (status, reason, len(answer), answer)
                )


async def serve(handler: Handler, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _ServerProtocol(handler), host, port, backlog=2048)


class _ClientProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = _Parser()
        self.transport: asyncio.Transport | None = None
        self.waiting: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        small_reads(transport)
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        for head, body in self._parser.feed(data):
            if self.waiting is not None and not self.waiting.done():
                status = int(head.split(b" ", 2)[1])
                self.waiting.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(ConnectionError(f"connection lost: {exc}"))


class Pool:
    """Keep-alive connections to one host; a request takes an idle one or opens one."""

    def __init__(self, host: str, port: int, *, max_connections: int = 512) -> None:
        self.host, self.port = host, port
        self._idle: deque[_ClientProtocol] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self.opened = 0

    async def _connection(self) -> _ClientProtocol:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_ClientProtocol, self.host, self.port)
        self.opened += 1
        return protocol

    async def warm(self, count: int) -> None:
        """Open `count` connections ahead of the load (opening them during the load costs
        the sender time when it can least afford it)."""
        loop = asyncio.get_running_loop()
        for _ in range(count):
            _, protocol = await loop.create_connection(_ClientProtocol, self.host, self.port)
            self.opened += 1
            self._idle.append(protocol)

    async def request(
        self, method: bytes, path: bytes, body: bytes = b"", headers: bytes = b""
    ) -> tuple[int, bytes]:
        async with self._slots:
            conn = await self._connection()
            if conn.transport is None:
                raise ConnectionError("not connected")
            future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
            conn.waiting = future
            conn.transport.write(
                b"%s %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n%s\r\n%s"
                % (method, path, self.host.encode(), len(body), headers, body)
            )
            try:
                answer = await future
            except BaseException:
                conn.transport.close()
                raise
            conn.waiting = None
            self._idle.append(conn)
            return answer

    def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None:
                with contextlib.suppress(Exception):
                    conn.transport.close()
