"""A real HTTP/1.1 server on 127.0.0.1 for the load generator's tests, scripted per
request, on its own event loop in a thread (the generator blocks its own thread).

Each connection handles its requests in order (HTTP/1.1 pipelining included):
`script(body)` decides the answer of each, as raw bytes written in chunks (a short
pause between two chunks), or None to close the connection without answering.
It records each request's arrival (time.time_ns(), peer port, body) as it is read,
before any answer, and when each answer's last chunk was about to be written.
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from benchmarks.rawhttp import _Parser

Script = Callable[[bytes], Awaitable[list[bytes] | None]]


def answer(status: int, body: bytes = b"ok", reason: bytes = b"OK") -> list[bytes]:
    return [b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\n\r\n%s" % (status, reason, len(body), body)]


@dataclass
class Seen:
    arrivals: list[tuple[int, int, bytes]] = field(default_factory=list)
    """(time.time_ns() when read, the client's port, body) of every request."""
    answered: dict[bytes, int] = field(default_factory=dict)
    """body -> time.time_ns() just before its answer's last chunk was written."""
    connections: int = 0
    """Connections made so far."""
    _more: asyncio.Event | None = None

    def arrived(self, at: int, port: int, body: bytes) -> None:
        self.arrivals.append((at, port, body))
        if self._more is not None:
            self._more.set()
            self._more = None

    async def until_arrived(self, count: int) -> None:
        """Wait until `count` requests have been read (in the server's loop)."""
        while len(self.arrivals) < count:
            self._more = self._more or asyncio.Event()
            await self._more.wait()


class _Protocol(asyncio.Protocol):
    def __init__(self, script: Script, seen: Seen) -> None:
        self.script, self.seen = script, seen
        self.parser = _Parser()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.worker: asyncio.Task[None] | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("peername")[1]
        self.seen.connections += 1
        self.worker = asyncio.ensure_future(self.serve())

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        for _, body in self.parser.feed(data):
            self.seen.arrived(now, self.port, body)
            self.queue.put_nowait(body)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.worker is not None:
            self.worker.cancel()

    async def serve(self) -> None:
        assert self.transport is not None
        while True:
            body = await self.queue.get()
            chunks = await self.script(body)
            if chunks is None:
                self.transport.close()
                return
            for i, chunk in enumerate(chunks):
                if i:
                    await asyncio.sleep(0.005)
                self.seen.answered[body] = time.time_ns()
                self.transport.write(chunk)


@contextlib.contextmanager
def scripted_server(script: Script, seen: Seen | None = None) -> Iterator[tuple[int, Seen]]:
    """(port, what the server saw) while it runs."""
    seen = Seen() if seen is None else seen
    loop = asyncio.new_event_loop()
    protocols: list[_Protocol] = []
    ports: list[int] = []
    ready = threading.Event()
    stop = asyncio.Event()

    def protocol() -> _Protocol:
        protocols.append(_Protocol(script, seen))
        return protocols[-1]

    async def main() -> None:
        server = await loop.create_server(protocol, "127.0.0.1", 0)
        ports.append(server.sockets[0].getsockname()[1])
        ready.set()
        await stop.wait()
        server.close()
        await asyncio.sleep(0.02)  # connections accepted but not yet made: made now
        for each in protocols:
            if each.transport is not None:
                each.transport.close()
        await server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the scripted server did not start")
    try:
        yield ports[0], seen
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
