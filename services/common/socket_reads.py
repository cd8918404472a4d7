"""Socket reads of 64 KiB instead of asyncio's 256 KiB, for every connection of a process.

asyncio's socket transport reads with `sock.recv(256 KiB)`: CPython allocates a
256 KiB bytes object for each read and then shrinks it to what arrived. An
allocation that large bypasses the small-object heap (glibc maps and unmaps it,
or grows and trims the heap), and each read pays for it: on the development
machine a read of a 300-byte message cost ~20 us with 256 KiB and ~3.3 us with
64 KiB (socketpair, `recv` in a loop). Every HTTP request the ingest reads and
every Kafka response aiokafka reads in any service is such a read. Larger
messages simply take several reads of 64 KiB.
"""

from asyncio import selector_events
from typing import Any

READ_BYTES = 65_536
"""Most bytes one read of a socket asks for (asyncio's default: 262,144)."""


def cap_socket_reads(limit: int = READ_BYTES) -> None:
    """Make asyncio's socket transports read at most `limit` bytes at a time.
    Call once at start-up, before connections are made (it sets the class's
    default; a transport made earlier keeps its own if it has one)."""
    # a private class of asyncio (not in typeshed's stubs); `max_size` is its read size
    transport: Any = selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
    transport.max_size = limit
