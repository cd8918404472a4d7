"""Ingest benchmarks, measured in one run on this machine, written to docs/BENCHMARKS.md.

1. Pixel: requests/s of GET /o/{token}.gif (valid token, so every request also
   writes email.opened to the real broker) as a ratio to a bare ASGI app that
   returns the same GIF, both under uvicorn with one worker; load from wrk
   (keep-alive) on 127.0.0.1. The bare app runs twice: under the `uvicorn`
   command with its defaults (the ratio against the target, as before), and
   served exactly as `hotlead ingest` serves the ingest (the same options and
   HTTP protocol, which writes each answer with one socket write:
   `services.ingest.main.server_config`, benchmarks/bare_gif.py), the
   ratio of the two apps on the same HTTP layer.
2. Event API: events/s of POST /v1/events with 100-event batches (unique ids)
   into the real broker, one ingest process; checked against the topic's
   offsets afterwards (every accepted event must be in Kafka).
3. Event API, one event per request (what the pipeline benchmark's load
   generator sends): requests/s and server CPU per request.

Besides the rates, each run reports the server process' CPU time per
request (pixel) or per event (API), read from /proc before and after the
run: on a machine shared with other work that is the steadier number.

Bounded: a few seconds per run, 127.0.0.1 only.
"""

import argparse
import asyncio
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from benchmarks.report import free_port
from schemas.topics import EVENTS
from services.common.kafka_settings import KafkaSettings
from services.common.topics import delete_topics, ensure_topics, topic_partitions, topic_specs
from services.ingest.tokens import Keyring, TokenClaims, TokenKind, mint

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "BENCHMARKS.md"
START, END = "<!-- ingest:start -->", "<!-- ingest:end -->"
TOKEN_KEYS = "bench:benchmark-token-secret-000000"
API_KEY = "benchmark-api-key-0000000000"
BIN = Path(sys.executable).parent
SINGLE_EVENT_LUA = """-- wrk script: POST /v1/events with ONE new event per request (unique ids).
local counter = 0
function init(args)
  api_key = args[1]
  run_id = args[2]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. api_key
  tid = math.random(1, 1000000000)
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"events":[{"id":"%s-%d-%d","type":"page.viewed","lead_id":"lead-%d",'
    .. '"data":{"url":"https://www.example.com/docs/%d"}}]}',
    run_id, tid, counter, counter % 5000, counter % 7)
  return wrk.format(nil, "/v1/events", nil, body)
end
"""


@dataclass
class WrkResult:
    requests_per_s: float
    requests: int
    non_2xx_3xx: int
    errors: str
    cpu_s: float = 0.0
    """CPU seconds (user + system) the server process used during the run."""

    def cpu_us_per(self, items_per_request: int = 1) -> float:
        return 1e6 * self.cpu_s / max(1, self.requests * items_per_request)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, url: str, **options: Any) -> WrkResult:
    """One wrk run, with the CPU time the server at `pid` spent on it."""
    before = cpu_seconds(pid)
    result = wrk(url, **options)
    result.cpu_s = cpu_seconds(pid) - before
    return result


def server_flavour() -> str:
    """What uvicorn's `auto` picks here (the same for both apps)."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} loop, {http}"


def wait_until_up(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, *, seconds: int, connections: int, script: list[str] | None = None) -> WrkResult:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        command += ["-s", script[0], url, "--", *script[1:]]
    else:
        command.append(url)
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return WrkResult(rps, total, int(bad.group(1)) if bad else 0, errors.group(1) if errors else "")


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


async def topic_size(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the doc")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    bootstrap = os.environ.get("HOTLEAD_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    specs = topic_specs(kafka)
    asyncio.run(ensure_topics(bootstrap, specs))
    env = {
        **os.environ,
        "HOTLEAD_KAFKA_BOOTSTRAP": bootstrap,
        "HOTLEAD_TOPIC_PREFIX": prefix,
        "HOTLEAD_TOKEN_KEYS": TOKEN_KEYS,
        "HOTLEAD_API_KEYS": f"bench:{API_KEY}",
        "HOTLEAD_CLIENT_RATE_PER_S": "1000000",
        "HOTLEAD_CLIENT_BURST": "1000000",
        "HOTLEAD_SOURCE_RATE_PER_S": "1000000",
        "HOTLEAD_SOURCE_BURST": "1000000",
        "HOTLEAD_INGEST_LOG_LEVEL": "WARNING",
    }
    token = mint(TokenClaims(TokenKind.OPEN, "lead-bench", "em-1"), Keyring.parse(TOKEN_KEYS))
    results: dict[str, WrkResult] = {}
    try:
        uvicorn_options = ["--no-access-log", "--log-level", "warning", "--workers", "1"]
        for name, command in (
            ("bare", [str(BIN / "uvicorn"), "benchmarks.bare_gif:app", *uvicorn_options]),
            ("bare_same", [sys.executable, "-m", "benchmarks.bare_gif"]),
        ):
            port = free_port()
            bare = start([*command, "--port", str(port)], env)
            try:
                wait_until_up(f"http://127.0.0.1:{port}/")
                bare_url = f"http://127.0.0.1:{port}/o/x.gif"
                wrk(bare_url, seconds=2, connections=args.connections)
                results[name] = measured(
                    bare.pid, bare_url, seconds=args.seconds, connections=args.connections
                )
            finally:
                stop(bare)

        port = free_port()
        ingest = start([str(BIN / "hotlead"), "ingest", "--port", str(port)], env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(f"{base}/healthz")
            wait_ready = time.monotonic() + 30
            while httpx.get(f"{base}/readyz", timeout=5).status_code != 200:
                if time.monotonic() > wait_ready:
                    raise RuntimeError("ingest did not connect to Kafka")
                time.sleep(0.5)
            wrk(f"{base}/o/{token}.gif", seconds=2, connections=args.connections)
            results["pixel"] = measured(
                ingest.pid, f"{base}/o/{token}.gif", seconds=args.seconds,
                connections=args.connections,
            )  # fmt: skip
            time.sleep(2)  # let the pixel run's queued writes finish before counting
            script = [str(REPO / "benchmarks" / "events_batch.lua"), API_KEY, prefix.strip(".")]
            warm_up = [*script[:2], f"{script[2]}-warm"]  # other ids: not duplicates of the run
            wrk(f"{base}/v1/events", seconds=2, connections=8, script=warm_up)
            before = asyncio.run(topic_size(bootstrap, kafka.topic(EVENTS)))
            results["events"] = measured(
                ingest.pid, f"{base}/v1/events", seconds=args.seconds, connections=8,
                script=script,
            )  # fmt: skip
            time.sleep(1)
            after = asyncio.run(topic_size(bootstrap, kafka.topic(EVENTS)))
            with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
                lua.write(SINGLE_EVENT_LUA)
                lua.flush()
                single = [lua.name, API_KEY, f"{prefix.strip('.')}-single"]
                wrk(
                    f"{base}/v1/events",
                    seconds=2,
                    connections=16,
                    script=[*single[:2], f"{single[2]}-warm"],
                )
                results["single"] = measured(
                    ingest.pid,
                    f"{base}/v1/events",
                    seconds=args.seconds,
                    connections=16,
                    script=single,
                )
        finally:
            stop(ingest)
    finally:
        asyncio.run(delete_topics(bootstrap, [spec.name for spec in specs]))

    bare_r, pixel_r, events_r = results["bare"], results["pixel"], results["events"]
    single_r = results["single"]
    ratio = pixel_r.requests_per_s / bare_r.requests_per_s
    cpu_ratio = bare_r.cpu_us_per() / max(pixel_r.cpu_us_per(), 1e-9)
    same_r = results["bare_same"]
    same_ratio = pixel_r.requests_per_s / same_r.requests_per_s
    same_cpu_ratio = same_r.cpu_us_per() / max(pixel_r.cpu_us_per(), 1e-9)
    accepted = (events_r.requests - events_r.non_2xx_3xx) * 100
    events_per_s = events_r.requests_per_s * 100
    section = f"""{START}
## Ingest

Measured {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")} by `make bench`
(`benchmarks/bench_ingest.py`) on this machine: {os.cpu_count()} CPU cores shared
with the load generator and the Kafka broker, Python {platform.python_version()},
uvicorn with one worker ({server_flavour()}), wrk with
1 thread on 127.0.0.1, {args.seconds} s per run after a 2 s warm-up.

| what | result | server CPU | target |
| --- | --- | --- | --- |
| bare ASGI app returning the GIF | {bare_r.requests_per_s:,.0f} req/s \
| {bare_r.cpu_us_per():,.0f} us/request | baseline |
| `GET /o/{{token}}.gif` (valid token, writes `email.opened`) \
| {pixel_r.requests_per_s:,.0f} req/s | {pixel_r.cpu_us_per():,.0f} us/request | |
| pixel / bare ratio | **{ratio:.2f}x** | {cpu_ratio:.2f}x (bare/pixel CPU) | >= 0.5x |
| bare app served as `hotlead ingest` serves (one socket write per answer) \
| {same_r.requests_per_s:,.0f} req/s | {same_r.cpu_us_per():,.0f} us/request | |
| pixel / that bare app | {same_ratio:.2f}x | {same_cpu_ratio:.2f}x | |
| `POST /v1/events`, 100-event batches, acks=all into Kafka \
| **{events_per_s:,.0f} events/s** ({events_r.requests_per_s:,.1f} req/s) \
| {events_r.cpu_us_per(100):,.1f} us/event | >= 50,000 |
| `POST /v1/events`, one event per request (as the pipeline bench sends) \
| {single_r.requests_per_s:,.0f} req/s | {single_r.cpu_us_per():,.0f} us/request | |

The first bare app runs under the `uvicorn` command with its defaults; the
ingest writes each answer's head and body with one socket write (its own
uvicorn protocol class, docs/ingest.md), so the second row serves the bare
app the same way: the ratio of the two apps on the same HTTP layer.
Method: `{args.connections}` keep-alive connections for the pixel runs, 8 for
the event API (each request a new batch of 100 `page.viewed` events with
unique ids, built by `benchmarks/events_batch.lua`; a 2xx means Kafka
acknowledged all of them), 16 for one event per request. Non-2xx answers: pixel
{pixel_r.non_2xx_3xx}, events {events_r.non_2xx_3xx}, single {single_r.non_2xx_3xx}.
Check: the events topic grew by {after - before:,} records for {accepted:,}
events in the requests wrk counted as answered (requests still in flight when
wrk stopped, up to 8 x 100 events, were written too but not counted). Server CPU: user + system time
of the server process during the run (/proc), per request or event; it
moves less than the rates when other work shares the cores.
Load average when the run ended: {os.getloadavg()[0]:.1f} (other work shares
these cores, so numbers move between runs; the ratio is taken within one run).
See docs/ingest.md "Performance" for where the time goes.
{END}"""
    print(section)
    if not args.no_write:
        text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
        if START in text and END in text:
            text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
