"""The load generator keeps its schedule whatever the server does, matches every
answer to its request and counts what failed (against a real local HTTP server)."""

import asyncio
import math
import time

import pytest

from benchmarks.loadgen import LoadSpec, Requests, generate, percentile, probe_id, request_body
from benchmarks.rawhttp import _Parser
from tests.benchmarks.scripted_server import Script, Seen, answer, scripted_server

RUN = "abc123"


def spec(port: int, **overrides: object) -> LoadSpec:
    fields: dict[str, object] = {
        "kind": "baseline", "host": "127.0.0.1", "port": port, "path": "/e", "headers": "",
        "run": RUN, "rate": 1000.0, "duration_s": 0.03, "start_ns": time.time_ns() + 100_000_000,
        "drain_s": 5.0,
    }  # fmt: skip
    return LoadSpec(**{**fields, **overrides})  # type: ignore[arg-type]


def slot(body: bytes) -> int:
    return int(body.rsplit(b"x", 1)[1])


def held_until(count: int, seen: Seen) -> Script:
    """A script that answers nothing until `count` requests have arrived (read by
    the server, pipelined ones included)."""

    async def script(body: bytes) -> list[bytes]:
        await seen.until_arrived(count)
        return answer(200)

    return script


def test_requests_leave_on_schedule_without_waiting_for_answers() -> None:
    # No answer comes until every request has arrived: a generator that waited for
    # answers (closed loop) would never send the rest.
    seen = Seen()
    with scripted_server(held_until(30, seen), seen) as (port, _):
        load = spec(port)
        result = generate(load)
    assert result["sent"] == result["ok"] == 30
    assert result["failed"] == 0
    assert len(seen.arrivals) == 30
    first_answer = min(seen.answered.values())
    for arrived, _, body in seen.arrivals:
        due = load.start_ns + slot(body) * 1_000_000
        assert arrived >= due  # never early
        assert arrived < first_answer  # every request left before any answer came
    # spread over the schedule (29 ms from the first slot to the last), not one burst
    times = sorted(arrived for arrived, _, _ in seen.arrivals)
    assert times[-1] - times[0] >= 15_000_000


def test_busy_connections_get_more_then_pipelined_requests() -> None:
    # 20 requests at 50/s on at most 8 connections, nothing answered until all came:
    # 4 connections opened before the load, 4 more while all were busy, then the
    # remaining 12 pipelined behind the outstanding answers, none held back.
    seen = Seen()
    with scripted_server(held_until(20, seen), seen) as (port, _):
        result = generate(spec(port, rate=50.0, duration_s=0.4, connections=8))
    assert result["sent"] == result["ok"] == 20
    assert result["connections"] == 8
    assert len({port for _, port, _ in seen.arrivals}) == 8
    per_connection = [sum(1 for _, p, _ in seen.arrivals if p == port) for port in {
        port for _, port, _ in seen.arrivals}]  # fmt: skip
    assert max(per_connection) - min(per_connection) <= 1  # taken in turn


@pytest.mark.parametrize("connections", [256, 1])
def test_each_answer_is_matched_to_its_request(connections: int) -> None:
    # Probes (every 20th slot) answer 200 after 30 ms, the other slots 503 at once or
    # 201 after 10 ms: on one connection (pipelined) or many (answers out of order
    # across connections), each answer must land on its own slot.
    async def script(body: bytes) -> list[bytes]:
        index = slot(body)
        if body.startswith(b"pr"):
            await asyncio.sleep(0.03)
            return answer(200)
        if index % 2:
            return answer(503, b"busy", b"Service Unavailable")
        await asyncio.sleep(0.01)
        return answer(201)

    with scripted_server(script) as (port, seen):
        load = spec(port, duration_s=0.06, connections=connections)
        result = generate(load)
    assert result["sent"] == 60
    if connections == 1:
        assert result["connections"] == 1
    assert result["errors"] == {"HTTP 503": 30}
    assert result["failed"] == 30
    assert result["ok"] == 30  # 3 probes + 27 even non-probe slots answered 201
    probes = result["probes"]
    assert isinstance(probes, list)
    assert [ident for ident, _, _ in probes] == [probe_id(RUN, i) for i in (0, 20, 40)]
    for ident, due, acked in probes:
        written = seen.answered[ident.encode()]
        assert due == load.start_ns + int(ident.rsplit("x", 1)[1]) * 1_000_000
        # stamped when its own answer arrived: not before the server wrote it
        assert written <= acked <= written + 50_000_000
    response_ms = result["response_ms"]
    assert isinstance(response_ms, list)
    assert len(response_ms) == 60
    assert sum(1 for ms in response_ms if ms >= 30) >= 3  # the probes' 30 ms


def test_answers_carry_their_arrival_time_even_when_read_a_tick_later() -> None:
    # A 100 ms tick: most answers are read ~100 ms after they arrive, but stamped with
    # the kernel's receive time (SO_TIMESTAMPNS), i.e. when the server wrote them.
    async def now(body: bytes) -> list[bytes]:
        return answer(200)

    with scripted_server(now) as (port, seen):
        result = generate(spec(port, rate=100.0, duration_s=0.5, tick_ms=100.0, probe_every=1))
    probes = result["probes"]
    assert isinstance(probes, list)
    assert len(probes) == 50
    for ident, _, acked in probes:
        written = seen.answered[ident.encode()]
        assert 0 <= acked - written <= 30_000_000


def test_failures_are_counted_by_kind() -> None:
    # slot 7: the server closes the connection instead of answering; slot 13: no
    # answer at all (counted once the drain time is over); probes 200, others 503.
    async def script(body: bytes) -> list[bytes] | None:
        index = slot(body)
        if index == 7:
            return None
        if index == 13:
            await asyncio.sleep(3600)
        return answer(200) if body.startswith(b"pr") else answer(503, b"busy")

    with scripted_server(script) as (port, _):
        result = generate(spec(port, drain_s=0.3))
    assert result["sent"] == 30
    assert result["ok"] == 2  # probes 0 and 20
    assert result["errors"] == {"HTTP 503": 26, "connection closed": 1, "no answer": 1}
    assert result["failed"] == 28
    probes = result["probes"]
    assert isinstance(probes, list)
    assert [ident for ident, _, _ in probes] == [probe_id(RUN, 0), probe_id(RUN, 20)]
    assert all(acked >= due for _, due, acked in probes)


def test_answers_in_pieces_interim_answers_and_any_header_case() -> None:
    async def odd(body: bytes) -> list[bytes]:
        text = b'{"x":"\r\n\r\n"}'
        return [
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nCont",
            b"ent-Length: %d\r\n\r\n%s" % (len(text), text[:4]),
            text[4:],
        ]

    with scripted_server(odd) as (port, _):
        result = generate(spec(port, duration_s=0.01, probe_every=1))
    assert result["sent"] == result["ok"] == 10
    assert result["failed"] == 0


@pytest.mark.parametrize("kind", ["hotlead", "baseline"])
def test_requests_are_the_mix_as_http(kind: str) -> None:
    load = spec(1, kind=kind, path="/v1/events", headers="authorization: Bearer k\r\n")
    build = Requests(load)
    for index in [0, 1, 7, 19, 20, 1999, 2000, 2001, 123456]:
        [(head, body)] = _Parser().feed(build(index))
        assert head.startswith(b"POST /v1/events HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        assert b"\r\nauthorization: Bearer k\r\n" in head + b"\r\n"
        assert body == request_body(load, index)[0]


def test_late_sends_are_counted_at_the_write() -> None:
    # The schedule began 60 ms ago: the slots due more than 10 ms before the
    # generator got to them are late, and counted in the first second.
    async def ok(body: bytes) -> list[bytes]:
        return answer(200)

    with scripted_server(ok) as (port, _):
        result = generate(spec(port, start_ns=time.time_ns() - 60_000_000, duration_s=0.1))
    late = result["late"]
    assert isinstance(late, int)
    assert 45 <= late <= 100
    assert result["late_by_second"] == [late]
    assert result["max_lag_ms"] >= 50  # type: ignore[operator]
    assert result["sent"] == result["ok"] == 100


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500
    assert percentile(values, 99) == 990
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert math.isnan(percentile([], 50))
