"""The browser beacon end to end: headless Chromium loads a page from one local
origin that includes hotlead.js from the ingest service (another origin, so
CORS applies); the page view arrives in Kafka."""

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from schemas import decode_event
from schemas.topics import EVENTS
from services.common.kafka_settings import KafkaSettings
from services.ingest.app import create_app
from services.ingest.kafka import IngestKafkaPublisher
from tests.ingest.conftest import make_settings
from tests.ingest.test_on_broker import read_topic

pytestmark = pytest.mark.kafka

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
    "--dump-dom",
]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def site(directory: Path) -> Iterator[int]:
    """A static web site on 127.0.0.1 (an OS-assigned port)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextlib.asynccontextmanager
async def ingest_server(settings: Any) -> AsyncIterator[int]:
    """The ingest app served by uvicorn on 127.0.0.1 (an OS-assigned port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings, IngestKafkaPublisher(settings.kafka_bootstrap))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_chromium_page_view_arrives_in_kafka(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: apt-get install chromium (.ci/run installs it)"
    with site(tmp_path) as site_port:
        origin = f"http://127.0.0.1:{site_port}"
        settings = make_settings(
            kafka_bootstrap=kafka_settings.kafka_bootstrap,
            topic_prefix=kafka_settings.topic_prefix,
            beacon_origins=origin,
        )
        async with ingest_server(settings) as ingest_port:
            (tmp_path / "pricing.html").write_text(
                "<!doctype html><html><head><title>Pricing | Example</title>"
                f'<script async src="http://127.0.0.1:{ingest_port}/hotlead.js"></script>'
                "</head><body><h1>Pricing</h1></body></html>",
                encoding="utf-8",
            )
            page = f"{origin}/pricing.html?hl_lid=lead-{unique}"
            with tempfile.TemporaryDirectory() as profile:
                command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", page]
                result = await asyncio.to_thread(
                    subprocess.run, command, capture_output=True, text=True, timeout=120,
                    check=False,
                )  # fmt: skip
            assert "<h1>Pricing</h1>" in result.stdout, result.stderr[-2000:]
            deadline = time.monotonic() + 20
            records: list[Any] = []
            while not records and time.monotonic() < deadline:
                records = await read_topic(
                    kafka_settings.kafka_bootstrap,
                    kafka_settings.topic(EVENTS),
                    1,
                    f"chromium-{unique}",
                )
    assert records, "no page view arrived in Kafka"
    event = decode_event(records[0].value)
    assert records[0].key == f"lead-{unique}".encode()
    assert event.type.short == "page.viewed"
    data = event.model_dump()["data"]
    assert data["url"] == page
    assert data["title"] == "Pricing | Example"
    assert data["anonymous_id"].startswith("anon-")
    assert event.source == "/beacon"
