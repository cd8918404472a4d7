"""create_app(settings, publisher): the ingest ASGI app, everything passed in."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import KafkaUnavailableError
from services.common.kafka_settings import KafkaSettings
from services.common.logging import get_logger
from services.common.publisher import Publisher
from services.ingest import sendgrid, standard_webhooks
from services.ingest.context import IngestContext
from services.ingest.errors import IngestError, PublishUnavailableError, RateLimitedError
from services.ingest.limits import RateLimiter
from services.ingest.metrics import IngestMetrics
from services.ingest.routes.api import api_router
from services.ingest.routes.beacon import beacon_router
from services.ingest.routes.events import EventsEndpoint
from services.ingest.routes.ops import ops_router
from services.ingest.routes.tracking import OPENAPI_PATHS, Tracking
from services.ingest.routes.webhooks import webhooks_router
from services.ingest.settings import IngestSettings
from services.ingest.sink import EventSink, ManagedPublisher

log = get_logger(__name__)
RECONNECT_EVERY_S = 2.0


def build_context(
    settings: IngestSettings, publisher: Publisher, metrics: IngestMetrics | None = None
) -> IngestContext:
    """Everything the routes share, from the settings (configuration errors surface here)."""
    metrics = metrics or IngestMetrics()
    sendgrid_key = settings.sendgrid_public_key.get_secret_value()
    secrets = [s for s in settings.webhook_secrets.get_secret_value().split(",") if s.strip()]
    return IngestContext(
        settings=settings,
        kafka=KafkaSettings.model_validate(
            settings.model_dump(include=set(KafkaSettings.model_fields))
        ),
        sink=EventSink(
            publisher,
            metrics,
            timeout_s=settings.publish_timeout_s,
            dedupe_capacity=settings.dedupe_capacity,
        ),
        metrics=metrics,
        keyring=settings.keyring(),
        api_keys=settings.api_key_sources(),
        sendgrid_key=sendgrid.load_public_key(sendgrid_key) if sendgrid_key else None,
        webhook_keys=[standard_webhooks.decode_secret(s) for s in secrets],
        origins=settings.origins(),
        proxies=settings.proxy_networks(),
        client_limiter=RateLimiter(settings.client_rate_per_s, settings.client_burst),
        source_limiter=RateLimiter(settings.source_rate_per_s, settings.source_burst),
    )


async def _keep_connected(ctx: IngestContext, publisher: ManagedPublisher) -> None:
    """Start the producer, and keep trying while Kafka does not answer."""
    while not publisher.connected:
        try:
            await publisher.start()
            log.info("kafka_connected")
        except KafkaUnavailableError as exc:
            log.warning("kafka_unavailable", error=str(exc))
            await asyncio.sleep(RECONNECT_EVERY_S)
    ctx.metrics.kafka_ready.set(1)


def _error_response(exc: Exception, retry_after_s: int) -> JSONResponse:
    if isinstance(exc, RateLimitedError):
        return JSONResponse(
            {"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after_s)}
        )
    if isinstance(exc, PublishUnavailableError | KafkaUnavailableError):
        return JSONResponse(
            {
                "error": "Kafka did not acknowledge in time: retry after Retry-After "
                "(with event ids or an Idempotency-Key a retry never counts twice)"
            },
            status_code=503,
            headers={"Retry-After": str(retry_after_s)},
        )
    assert isinstance(exc, IngestError)  # noqa: S101 (registered for IngestError only)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse({"error": str(exc)}, status_code=exc.status_code, headers=headers)


class RequestMetrics:
    """Counts and times every request by route template; logs refusals (no addresses)."""

    def __init__(self, app: ASGIApp, metrics: IngestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
            if status >= 400 and route != "unmatched":
                log.info("request_refused", method=scope["method"], route=route, status=status)


class IngestApp(FastAPI):
    """FastAPI, with the pixel, the click and POST /v1/events answered before its
    middleware stack (their FastAPI routes, if any, document them)."""

    tracking: Tracking | None = None
    events: EventsEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.tracking is not None and await self.tracking.serve(scope, send):
                return
            if self.events is not None and self.events.serves(scope):
                await self.events(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: IngestSettings, publisher: Publisher) -> FastAPI:
    ctx = build_context(settings, publisher)
    tracking = Tracking(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connecting = None
        if isinstance(publisher, ManagedPublisher):
            connecting = asyncio.create_task(_keep_connected(ctx, publisher))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(connecting), timeout=5.0)
        else:
            ctx.metrics.kafka_ready.set(1)
        try:
            yield
        finally:
            if connecting is not None:
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await connecting
            tracking.process_opens()  # the pixels of the last pass, if any
            await ctx.sink.drain(timeout_s=settings.publish_timeout_s)
            if isinstance(publisher, ManagedPublisher):
                await publisher.stop()

    app = IngestApp(
        title="hotlead ingest",
        version="1",
        summary="Email tracking, browser beacon, event API and ESP webhooks into Kafka.",
        lifespan=lifespan,
        # Prometheus is our telemetry; FastAPI's OpenTelemetry hooks cost time per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = ctx

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return _error_response(exc, settings.retry_after_s)

    app.add_exception_handler(IngestError, handle)
    app.add_exception_handler(KafkaUnavailableError, handle)
    for router in (
        beacon_router(ctx),
        api_router(ctx),
        webhooks_router(ctx),
        ops_router(ctx),
    ):
        app.include_router(router)
    app.add_middleware(RequestMetrics, metrics=ctx.metrics)
    app.tracking = tracking
    app.events = EventsEndpoint(ctx, lambda exc: _error_response(exc, settings.retry_after_s))
    app.openapi = lambda: _openapi_with_tracking(app)  # type: ignore[method-assign]
    return app


def _openapi_with_tracking(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the pixel and click routes served by Tracking."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        schema["paths"] = {**OPENAPI_PATHS, **schema["paths"]}
        app.openapi_schema = schema
    return app.openapi_schema
