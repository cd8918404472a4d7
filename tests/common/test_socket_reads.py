"""asyncio socket reads capped at 64 KiB: every byte still arrives, in pieces of at most 64 KiB."""

import asyncio
from asyncio import selector_events

import pytest

from services.common.socket_reads import READ_BYTES, cap_socket_reads


class _Collect(asyncio.Protocol):
    def __init__(self, expected: int, done: asyncio.Future[None]) -> None:
        self.chunks: list[bytes] = []
        self._expected = expected
        self._done = done

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        if sum(map(len, self.chunks)) >= self._expected and not self._done.done():
            self._done.set_result(None)


async def test_a_large_message_arrives_whole_in_reads_of_at_most_64_kib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(selector_events._SelectorSocketTransport, "max_size", 256 * 1024)
    cap_socket_reads()
    assert selector_events._SelectorSocketTransport.max_size == READ_BYTES
    loop = asyncio.get_running_loop()
    payload = bytes(range(256)) * 4096  # 1 MiB
    done: asyncio.Future[None] = loop.create_future()
    received = _Collect(len(payload), done)
    server = await loop.create_server(lambda: received, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(0.05)  # let the payload pile up in the socket: reads then fill up
    writer.write(payload)
    await writer.drain()
    await asyncio.wait_for(done, 10)
    writer.close()
    server.close()
    await server.wait_closed()
    assert b"".join(received.chunks) == payload
    assert max(map(len, received.chunks)) <= READ_BYTES
    assert len(received.chunks) >= len(payload) // READ_BYTES
