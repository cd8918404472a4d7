"""GET /healthz (the process answers), /readyz (Kafka answers), /metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.ingest.context import IngestContext
from services.ingest.sink import ManagedPublisher


def ops_router(ctx: IngestContext) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: Kafka answers",
        responses={503: {"description": "Kafka does not answer: do not route traffic here."}},
    )
    async def readyz() -> JSONResponse:
        publisher = ctx.sink.publisher
        kafka_ok = await publisher.ping() if isinstance(publisher, ManagedPublisher) else True
        ctx.metrics.kafka_ready.set(1 if kafka_ok else 0)
        body = {"status": "ready" if kafka_ok else "unavailable", "kafka": kafka_ok}
        return JSONResponse(body, status_code=200 if kafka_ok else 503)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics() -> Response:
        ctx.metrics.collect_pending()
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
