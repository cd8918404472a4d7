"""An open-loop HTTP/1.1 sender for the pipeline benchmark's load generators.

Slot i of a schedule is due at `start_ns + i * interval_ns`; this process sends
the slots `first, first + step, ... < end`. One thread, one epoll set, no asyncio,
no task, future or semaphore per request. The loop wakes on a tick (`tick_ns`,
1 ms by default; ticks without a due slot are skipped), writes every slot that is
due, each at once, and reads every answer that arrived meanwhile. A request never
waits for an answer or a connection: it goes on a free keep-alive connection (no
answer outstanding; free ones are taken in turn), else on a new connection while
fewer than `max_connections` are open, else it is pipelined behind the answers
outstanding on the open connections, taken in turn (HTTP/1.1 answers come back in
order per connection, so each connection keeps a FIFO of its slots). So a slot
leaves within a tick of its time, and later only when this process did not get
the CPU: that lag is measured at the write and counted (`late`, over `late_ns`).

Answers are stamped with the kernel's receive time of the bytes that completed
them (SO_TIMESTAMPNS: CLOCK_REALTIME, the clock of `time.time_ns()`), so an answer
read at the next tick, or after this process waited for the CPU, carries the time
it arrived, not the time it was read; the answers read together from one
connection (pipelined ones) carry the arrival of the last of them. Where the
kernel gives no timestamp, `time.time_ns()` after the read. Each answer goes to
`answered(slot, status, at_ns)`; a request that gets no answer (its connection
failed or was closed, or no answer within `drain_s` after the last slot) goes to
`failed(slot, reason)`. After the last slot, the loop waits for the answers
still outstanding, reading at most once a tick. Answers are framed by
Content-Length (what uvicorn and benchmarks/rawhttp.py send); chunked answers are
not supported.
"""

import errno
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

IN, OUT = select.EPOLLIN, select.EPOLLOUT
READ_SIZE = 65_536
"""Bytes per read. Not asyncio's 256 KiB: a read buffer that large costs ~15 us more
per read here (allocated and shrunk for a ~200-byte answer)."""
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the module may lack the name
TIMESTAMP = struct.Struct("@qq")  # struct timespec
ANCILLARY = socket.CMSG_SPACE(TIMESTAMP.size)


def arrival_ns(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The kernel's receive time of the bytes `recvmsg` returned with `ancillary`
    (ns since the epoch); `time.time_ns()` now when the kernel gave none."""
    if ancillary:
        seconds, nanoseconds = TIMESTAMP.unpack_from(ancillary[0][2])
        return int(seconds) * 1_000_000_000 + int(nanoseconds)
    return time.time_ns()


def content_length(buf: bytes, start: int, end: int) -> int:
    """The Content-Length of the head `buf[start:end]` (end: where its blank line
    begins); 0 without one. Header names are matched case-insensitively."""
    i = buf.find(b"\ncontent-length:", start, end)
    if i < 0:
        head = buf[start:end].lower()
        if b"\ntransfer-encoding:" in head and b"chunked" in head:
            raise ValueError("chunked answers are not supported by the load generator")
        i = head.find(b"\ncontent-length:")
        if i < 0:
            return 0
        buf, end = head, len(head)
    j = buf.find(b"\r\n", i + 16, end)
    return int(buf[i + 16 : j if j >= 0 else end])


class Connection:
    __slots__ = ("buffer", "closed", "fd", "pending", "sock", "unsent")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.pending: deque[int] = deque()  # the slots whose answers are outstanding, in order
        self.buffer = b""  # the start of an answer not complete yet
        self.unsent = bytearray()  # what the socket did not take yet (or not connected yet)
        self.closed = False


class OpenLoop:
    """One process' share of one schedule, sent open loop (see the module's docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        request: Callable[[int], bytes],
        answered: Callable[[int, int, int], None],
        failed: Callable[[int, str], None],
        start_ns: int,
        interval_ns: float,
        first: int,
        step: int,
        end: int,
        late_ns: int,
        connections: int,
        max_connections: int,
        tick_ns: int = 1_000_000,
        drain_s: float = 30.0,
    ) -> None:
        self.address = (host, port)
        self.request, self.answered, self.failed = request, answered, failed
        self.start_ns, self.interval_ns = start_ns, interval_ns
        self.first, self.step, self.end = first, step, end
        self.late_ns, self.tick_ns, self.drain_s = late_ns, max(1, tick_ns), drain_s
        self.initial, self.max_connections = max(1, connections), max(1, max_connections)
        self.sent = self.late = self.max_lag_ns = self.opened = self.outstanding = 0
        self.late_by_second = [0] * (int(max(end - 1, 0) * interval_ns / 1e9) + 1)
        self.cpu_s = 0.0
        self._epoll = select.epoll()
        self._conns: dict[int, Connection] = {}
        self._free: deque[Connection] = deque()  # no answer outstanding: used in turn
        self._ring: list[Connection] = []  # every open connection, to pipeline on in turn
        self._turn = 0

    # connections

    def _register(self, sock: socket.socket, events: int) -> Connection:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        conn = Connection(sock)
        self._conns[conn.fd] = conn
        self._ring.append(conn)
        self._epoll.register(conn.fd, events)
        self.opened += 1
        return conn

    def open_before(self) -> None:
        """Open the first connections (blocking: before the schedule starts)."""
        for _ in range(self.initial):
            sock = socket.create_connection(self.address)
            sock.setblocking(False)
            self._free.append(self._register(sock, IN))

    def _open_now(self) -> Connection | None:
        """A new connection during the load (while it connects, a write to it fails
        with EAGAIN: its first request waits in `unsent` until it is writable)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if sock.connect_ex(self.address) not in (0, errno.EINPROGRESS):
            sock.close()
            return None
        return self._register(sock, IN | OUT)

    def _lose(self, conn: Connection, reason: str) -> None:
        """The connection is gone: every slot outstanding on it failed."""
        if conn.closed:
            return
        conn.closed = True
        self._epoll.unregister(conn.fd)
        conn.sock.close()
        del self._conns[conn.fd]
        self._ring = [c for c in self._ring if not c.closed]
        self.outstanding -= len(conn.pending)
        for slot in conn.pending:
            self.failed(slot, reason)
        conn.pending.clear()

    def _connection(self) -> Connection | None:
        free = self._free
        while free:
            conn = free.popleft()
            if not conn.closed:
                return conn
        if len(self._conns) < self.max_connections:
            return self._open_now()
        ring = self._ring
        if not ring:
            return None
        self._turn = (self._turn + 1) % len(ring)
        return ring[self._turn]

    # sending and receiving

    def _send(self, conn: Connection, data: bytes) -> None:
        if conn.unsent:
            conn.unsent += data
            return
        try:
            n = conn.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self._lose(conn, type(exc).__name__)
            return
        if n < len(data):
            conn.unsent += data[n:]
            self._epoll.modify(conn.fd, IN | OUT)

    def _writable(self, conn: Connection) -> None:
        if conn.unsent:
            try:
                n = conn.sock.send(conn.unsent)
            except BlockingIOError:
                return
            except OSError as exc:  # incl. a connection that could not be made
                self._lose(conn, type(exc).__name__)
                return
            del conn.unsent[:n]
        if not conn.unsent:
            self._epoll.modify(conn.fd, IN)

    def _readable(self, conn: Connection) -> None:
        try:
            data, ancillary, _, _ = conn.sock.recvmsg(READ_SIZE, ANCILLARY)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lose(conn, type(exc).__name__)
            return
        if not data:
            self._lose(conn, "connection closed")
            return
        at = arrival_ns(ancillary)
        buf = conn.buffer + data if conn.buffer else data
        pending, answered = conn.pending, self.answered
        waiting = bool(pending)
        pos, size = 0, len(buf)
        while pos < size:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            try:
                if not buf.startswith(b"HTTP/1.", pos):
                    raise ValueError("not an HTTP answer")
                stop = end + 4 + content_length(buf, pos, end)
                status = int(buf[pos + 9 : pos + 12])
            except ValueError as exc:
                self._lose(conn, f"bad answer: {exc}")
                return
            if stop > size:
                break
            pos = stop
            if status < 200:  # an interim answer (100 Continue): the final one follows
                continue
            if not pending:
                self._lose(conn, "an answer to no request")
                return
            self.outstanding -= 1
            answered(pending.popleft(), status, at)
        conn.buffer = buf[pos:] if pos < size else b""
        if waiting and not pending:
            self._free.append(conn)

    def _events(self, timeout_s: float) -> None:
        conns = self._conns
        for fd, event in self._epoll.poll(timeout_s):
            conn = conns.get(fd)
            if conn is None:
                continue
            if event & OUT:
                self._writable(conn)
            if event & ~OUT and not conn.closed:
                self._readable(conn)

    # the schedule

    def run(self) -> None:
        """Send every slot on time, then wait up to `drain_s` for the answers."""
        start_ns, interval_ns, step, end = self.start_ns, self.interval_ns, self.step, self.end
        late_ns, tick_ns, request, time_ns = self.late_ns, self.tick_ns, self.request, time.time_ns
        free, sleep = self._free, time.sleep
        while (wait := start_ns - time_ns()) > 0:
            self._events(wait / 1e9)
        cpu = time.process_time()
        slot, due = self.first, 0
        while slot < end:
            now = time_ns()
            while (due := start_ns + int(slot * interval_ns)) <= now:
                data = request(slot)
                conn = free.popleft() if free else self._connection()
                if conn is not None and conn.closed:
                    conn = self._connection()
                now = time_ns()
                lag = now - due  # at the write
                if lag > late_ns:
                    self.late += 1
                    self.late_by_second[(due - start_ns) // 1_000_000_000] += 1
                if lag > self.max_lag_ns:
                    self.max_lag_ns = lag
                self.sent += 1
                if conn is None:
                    self.failed(slot, "no connection")
                else:
                    conn.pending.append(slot)
                    self.outstanding += 1
                    self._send(conn, data)
                slot += step
                if slot >= end:
                    break
            self._events(0)  # the answers that arrived since the last tick
            if slot < end:  # sleep to the first tick at or after the next slot's time
                left = start_ns + -(-(due - start_ns) // tick_ns) * tick_ns - time_ns()
                if left > 0:
                    sleep(left / 1e9)
        deadline = time.monotonic() + self.drain_s
        while self.outstanding and (left_s := deadline - time.monotonic()) > 0:
            self._events(left_s)  # until an answer arrives, then at most one read a tick
            sleep(tick_ns / 1e9)  # (their stamps are their arrival: the kernel's)
        for conn in list(self._conns.values()):
            self._lose(conn, "no answer")
        self.cpu_s = time.process_time() - cpu
        self._epoll.close()
