"""uvicorn's HTTP protocol with each answer's head and body in one socket write.

uvicorn writes a response's head (status line and headers) and its body with
two `transport.write` calls, and asyncio sends each at once: two `send`
system calls and two TCP segments per answer. On loopback the sender's CPU
also carries the receiver's TCP work, and for a small answer (the pixel, a
one-event `/v1/events`) the second write cost ~25% of the request's CPU.

`CoalescingTransport` holds a small write until the next write or the end of
the event-loop step, whichever comes first, and sends both together. The
head of a response is followed by its body in the same step (uvicorn's
`send` does not wait in between unless the peer is slow to read), so an
answer goes out with one system call. Nothing waits longer than the current
step: a held write is flushed by a callback on the next pass of the loop,
and before `close`, `abort`, `write_eof` and `set_protocol`. Large writes
are never copied: what is held goes out first, then the large write, in
order. `coalescing(http)` is uvicorn's protocol class (`h11`, `httptools` or
`auto`, as uvicorn resolves it) with its transport wrapped
(`hotlead ingest` passes it to uvicorn's `http=` option).
"""

import asyncio
from typing import Any

from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

HOLD_BYTES = 16_384
"""Writes up to this size may wait for the next one (a head, a small body)."""


class CoalescingTransport(asyncio.Transport):
    """A transport that sends a small write together with the one after it
    (see the module's docstring); everything else is the wrapped transport's."""

    __slots__ = ("_flush_handle", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush_handle: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            if len(data) > HOLD_BYTES or not data:
                self._transport.write(data)
                return
            self._held = bytes(data)
            if self._flush_handle is None:
                self._flush_handle = self._loop.call_soon(self._flush_step)
            return
        self._held = None
        if len(data) > HOLD_BYTES:  # no copy of a large write: two sends, in order
            self._transport.write(held)
            self._transport.write(data)
        else:
            self._transport.write(held + data)

    def write_now(self, data: bytes) -> None:
        """Send `data` (after what is held) at once: for a whole answer in one
        piece, which has nothing to wait for."""
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def flush(self) -> None:
        """Send what is held now."""
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def _flush_step(self) -> None:
        self._flush_handle = None
        if self._held is not None and not self._transport.is_closing():
            self.flush()
        self._held = None

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        if not self._transport.is_closing():
            self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None  # abort discards what is buffered, this too
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


def coalescing(http: str) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class named `http` (its `http=` option's names),
    with each connection's transport a `CoalescingTransport`."""
    base: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS.get(http, http))

    class Coalescing(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if isinstance(transport, asyncio.Transport):
                transport = CoalescingTransport(transport, asyncio.get_running_loop())
            super().connection_made(transport)

    Coalescing.__name__ = Coalescing.__qualname__ = f"Coalescing{base.__name__}"
    return Coalescing
