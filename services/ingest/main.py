"""`hotlead ingest`: build the settings and the producer once, run the app with uvicorn."""

import asyncio
import logging
from typing import Any

import uvicorn

from services.common.gc_tuning import tune_gc
from services.common.logging import configure_logging
from services.common.socket_reads import cap_socket_reads
from services.ingest.app import create_app
from services.ingest.fastpath import with_events_fast_path
from services.ingest.kafka import IngestKafkaPublisher
from services.ingest.server import coalescing
from services.ingest.settings import IngestSettings


def server_config(app: Any, *, host: str, port: int, http: str) -> uvicorn.Config:
    """How `hotlead ingest` runs an app with uvicorn (the pixel benchmark's bare
    app runs the same way)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # uvicorn's access log prints client addresses
        proxy_headers=False,  # X-Forwarded-For is judged by HOTLEAD_TRUSTED_PROXIES
        server_header=False,
        log_config=None,
        lifespan="on",
        # one socket write per answer (services/ingest/server.py); POST /v1/events
        # answered below the ASGI cycle (services/ingest/fastpath.py)
        http=with_events_fast_path(coalescing(http), app),
    )


async def run(settings: IngestSettings, host: str, port: int) -> None:
    # The producer must be created inside the running loop (aiokafka's rule).
    publisher = IngestKafkaPublisher(settings.kafka_bootstrap)
    app = create_app(settings, publisher)
    tune_gc()
    config = server_config(app, host=host, port=port, http=settings.ingest_http)
    await uvicorn.Server(config).serve()


def serve(settings: IngestSettings, *, host: str | None = None, port: int | None = None) -> int:
    configure_logging(settings.ingest_log_level, json=True)
    cap_socket_reads()
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    asyncio.run(run(settings, host or settings.ingest_host, port or settings.ingest_port))
    return 0
