"""What every route needs, built once by create_app and passed to the routers."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from fastapi import Request

from services.common.kafka_settings import KafkaSettings
from services.ingest.bots import ClickBurstDetector
from services.ingest.errors import BadRequestError, PayloadTooLargeError, RateLimitedError
from services.ingest.limits import Network, RateLimiter, client_address, retry_after
from services.ingest.metrics import IngestMetrics
from services.ingest.settings import IngestSettings
from services.ingest.sink import EventSink
from services.ingest.tokens import Keyring


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestContext:
    settings: IngestSettings
    kafka: KafkaSettings
    sink: EventSink
    metrics: IngestMetrics
    keyring: Keyring
    api_keys: dict[str, str]
    sendgrid_key: EllipticCurvePublicKey | None
    webhook_keys: list[bytes]
    origins: list[str]
    proxies: list[Network]
    client_limiter: RateLimiter
    source_limiter: RateLimiter
    bursts: ClickBurstDetector = field(default_factory=ClickBurstDetector)
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    wall_s: Callable[[], float] = time.time

    def client_ip(self, request: Request) -> str | None:
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"), self.proxies)

    def over_client_limit(self, client_ip: str | None) -> float:
        """Seconds to wait when this client is over its rate, else 0."""
        return self.client_limiter.acquire(client_ip or "-", self.monotonic())

    def limit_client(self, request: Request, route: str) -> None:
        wait = self.over_client_limit(self.client_ip(request))
        if wait:
            self.metrics.rate_limited.labels(route).inc()
            raise RateLimitedError("too many requests from this client", retry_after(wait))

    def limit_source(self, source: str, route: str) -> None:
        wait = self.source_limiter.acquire(source, self.monotonic())
        if wait:
            self.metrics.rate_limited.labels(route).inc()
            raise RateLimitedError(f"too many requests for source {source}", retry_after(wait))


def check_length(declared: str | None, limit: int) -> None:
    """A declared Content-Length over `limit`: 413 before reading the body."""
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
        except ValueError:
            raise BadRequestError("invalid Content-Length") from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes (413) before reading it all."""
    check_length(request.headers.get("content-length"), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
