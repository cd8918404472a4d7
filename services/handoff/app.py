"""The HTTP side of the worker: /metrics, /healthz, /readyz."""

from dataclasses import dataclass

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.handoff.metrics import HandoffMetrics


@dataclass
class Health:
    ready: bool = False
    """State restored from Kafka and the consumers running."""
    detail: str = "starting"


def create_app(metrics: HandoffMetrics, health: Health) -> FastAPI:
    app = FastAPI(title="hotlead handoff", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, str]:
        if not health.ready:
            response.status_code = 503
        return {"status": "ready" if health.ready else "not_ready", "detail": health.detail}

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
