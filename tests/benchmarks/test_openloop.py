"""The open-loop sender under the load generator: its share of the schedule, lateness
measured at the write, answer framing."""

import time

import pytest

from benchmarks.openloop import OpenLoop, content_length
from tests.benchmarks.scripted_server import answer, scripted_server

REQUEST = b"POST /e HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: %d\r\n\r\n%d"


async def ok(body: bytes) -> list[bytes]:
    return answer(200)


def test_a_stalled_sender_counts_the_slots_it_wrote_late() -> None:
    # This process sends the odd slots of a 1 ms schedule (first=1, step=2); building
    # slot 11 takes 60 ms, so the slots due in the 50 ms before it was written left
    # more than 10 ms late. Lateness is measured at the write: they are counted.
    answered: list[tuple[int, int, int]] = []
    failed: list[tuple[int, str]] = []

    def request(slot: int) -> bytes:
        if slot == 11:
            time.sleep(0.06)
        return REQUEST % (len(str(slot)), slot)

    with scripted_server(ok) as (port, seen):
        sender = OpenLoop(
            "127.0.0.1", port, request=request,
            answered=lambda slot, status, at: answered.append((slot, status, at)),
            failed=lambda slot, reason: failed.append((slot, reason)),
            start_ns=time.time_ns() + 50_000_000, interval_ns=1e6, first=1, step=2, end=200,
            late_ns=10_000_000, connections=4, max_connections=64,
        )  # fmt: skip
        sender.open_before()
        sender.run()
    assert failed == []
    assert sorted(slot for slot, _, _ in answered) == list(range(1, 200, 2))
    assert sorted(int(body) for _, _, body in seen.arrivals) == list(range(1, 200, 2))
    assert {status for _, status, _ in answered} == {200}
    # slot 11 and the next ones were written at ~71 ms: those due before ~61 ms
    # (11, 13, ... 59) left late, 25 of them; a busy machine may delay more, but
    # never more than the server saw arrive over 10 ms after their time
    start = sender.start_ns
    arrived_late = sum(1 for at, _, body in seen.arrivals if at - start - int(body) * 10**6 > 10**7)
    assert 22 <= sender.late <= arrived_late
    assert sender.late_by_second == [sender.late]
    assert sender.max_lag_ns >= 55_000_000
    assert sender.sent == 100


def test_no_server_fails_every_slot_it_could_not_send() -> None:
    failed: list[tuple[int, str]] = []
    with scripted_server(ok) as (port, seen):
        sender = OpenLoop(
            "127.0.0.1", port, request=lambda slot: REQUEST % (1, 0),
            answered=lambda slot, status, at: None,
            failed=lambda slot, reason: failed.append((slot, reason)),
            start_ns=time.time_ns() + 20_000_000, interval_ns=1e6, first=0, step=1, end=5,
            late_ns=10_000_000, connections=1, max_connections=2, drain_s=1.0,
        )  # fmt: skip
        sender.open_before()
        deadline = time.monotonic() + 5
        while seen.connections < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    # the server is gone before the load: the open connection closes, the new one
    # opened for the next slot is refused
    sender.run()
    assert sorted(slot for slot, _ in failed) == [0, 1, 2, 3, 4]
    assert {reason for _, reason in failed} <= {
        "connection closed", "ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError",
        "no connection",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("head", "length"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\ncontent-type: text/plain", 12),
        (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 7", 7),
        (b"HTTP/1.1 200 OK\r\nContent-Length:3\r\nDate: x", 3),
        (b"HTTP/1.1 204 No Content\r\nx-content-length: 5", 0),
        (b"HTTP/1.1 204 No Content", 0),
    ],
)
def test_content_length(head: bytes, length: int) -> None:
    buf = b"junk" + head + b"\r\n\r\nbody"
    assert content_length(buf, 4, 4 + len(head)) == length


def test_chunked_answers_are_refused() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
    with pytest.raises(ValueError, match="chunked"):
        content_length(head, 0, len(head))
