"""The receiver's server stamps each request with its arrival, not with when its
busy process got around to reading it."""

import asyncio
import socket
import threading
import time

from benchmarks.stamped import StampedServer

REQUEST = b"POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s"


async def test_requests_carry_their_arrival_time_while_the_server_is_busy() -> None:
    seen: list[tuple[bytes, bytes, int]] = []

    def handle(method: bytes, path: bytes, body: bytes, at: int) -> tuple[int, bytes]:
        seen.append((path, body, at))
        return 200, b"ok:" + body

    server = StampedServer(handle, "127.0.0.1", 0)
    sent: list[int] = []
    answers: list[bytes] = []
    connected = threading.Event()
    go = threading.Event()

    def client() -> None:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            connected.set()
            go.wait(10)
            for body in (b"first", b"second"):  # pipelined, read together
                sent.append(time.time_ns())
                sock.sendall(REQUEST % (len(body), body))
            while answers.count(b"") == 0 and b"ok:second" not in b"".join(answers):
                answers.append(sock.recv(1000))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        connected.wait(10)
        for _ in range(5000):  # accepted (and timestamping) before the requests come
            if server.connections:
                break
            await asyncio.sleep(0.001)
        go.set()
        time.sleep(0.2)  # noqa: ASYNC251 - the server's loop is busy: the requests wait
        await asyncio.to_thread(thread.join, 10)
    finally:
        thread.join(10)
        server.close()
    assert [(path, body) for path, body, _ in seen] == [
        (b"/webhook", b"first"),
        (b"/webhook", b"second"),
    ]
    for _, _, at in seen:
        assert sent[0] <= at <= sent[1] + 50_000_000  # not ~200 ms later, when it was read
    text = b"".join(answers)
    assert text.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert text.index(b"ok:first") < text.index(b"ok:second")
