"""A minimal HTTP/1.1 server that hands each request the time it arrived: the
kernel's receive time of the bytes that completed it (SO_TIMESTAMPNS, the system
clock of `time.time_ns()`), not the time this process got around to reading it.

For the bench receiver (the fake Slack): the load generators stamp the ingest's
answers the same way (benchmarks/openloop.py), so the latency between the two is
not stretched or shrunk by either process waiting for a CPU on a busy machine.

Raw non-blocking sockets on the running asyncio loop (`add_reader`): asyncio's
transports read without ancillary data. Keep-alive connections, Content-Length
bodies only; requests of one connection are answered in order; the handler is a
plain function (nothing here waits).
"""

import asyncio
import contextlib
import socket
from collections.abc import Callable

from benchmarks.openloop import ANCILLARY, READ_SIZE, SO_TIMESTAMPNS, arrival_ns, content_length
from benchmarks.rawhttp import REASONS

StampedHandler = Callable[[bytes, bytes, bytes, int], tuple[int, bytes]]
"""(method, path, body, arrival ns) -> (status, body)."""


class _Connection:
    __slots__ = ("buffer", "sock", "writing")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.writing: asyncio.Future[None] | None = None


class StampedServer:
    def __init__(self, handler: StampedHandler, host: str, port: int) -> None:
        self._handler = handler
        self._loop = asyncio.get_running_loop()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(1024)
        self._listener.setblocking(False)
        self._conns: dict[int, _Connection] = {}
        self._loop.add_reader(self._listener.fileno(), self._accept)

    @property
    def connections(self) -> int:
        return len(self._conns)

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            conn = _Connection(sock)
            self._conns[sock.fileno()] = conn
            self._loop.add_reader(sock.fileno(), self._readable, conn)

    def _close(self, conn: _Connection) -> None:
        fd = conn.sock.fileno()
        if fd >= 0 and self._conns.pop(fd, None) is not None:
            self._loop.remove_reader(fd)
        conn.sock.close()

    def _readable(self, conn: _Connection) -> None:
        try:
            data, ancillary, _, _ = conn.sock.recvmsg(READ_SIZE, ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        at = arrival_ns(ancillary)
        buf = conn.buffer + data if conn.buffer else data
        answers = []
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            try:
                stop = end + 4 + content_length(buf, 0, end)
                method, path, _ = buf[: buf.find(b"\r\n")].split(b" ", 2)
            except ValueError:  # not a request, or a chunked body
                self._close(conn)
                return
            if stop > len(buf):
                break
            status, body = self._handler(method, path, buf[end + 4 : stop], at)
            answers.append(
                b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncontent-type: application/json\r\n\r\n%s"
                % (status, REASONS.get(status, b"Status"), len(body), body)
            )
            buf = buf[stop:]
        conn.buffer = buf
        if answers:
            self._write(conn, b"".join(answers))

    def _write(self, conn: _Connection, data: bytes) -> None:
        before = conn.writing
        if before is None or before.done():
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(conn)
                return
            if sent == len(data):
                return
            data = data[sent:]

        async def rest() -> None:  # a large answer (the arrivals): after the earlier ones
            if before is not None:
                await before
            with contextlib.suppress(OSError):
                await self._loop.sock_sendall(conn.sock, data)

        conn.writing = asyncio.ensure_future(rest())

    def close(self) -> None:
        self._loop.remove_reader(self._listener.fileno())
        self._listener.close()
        for conn in list(self._conns.values()):
            self._close(conn)
