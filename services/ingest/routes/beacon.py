"""GET /hotlead.js (the snippet) and POST /b (its page views), with CORS for
the configured site origins. sendBeacon posts text/plain, a CORS "simple"
request, so browsers send no preflight; OPTIONS is answered for fetch()."""

from importlib import resources

import orjson
from fastapi import APIRouter, Request, Response

from services.ingest.accept import accept
from services.ingest.context import IngestContext, read_body
from services.ingest.errors import BadRequestError, IngestError
from services.ingest.incoming import BeaconPageView, Invalid, build_page_view, content_id
from services.ingest.routes.api import api_errors, body_schema

BEACON_ROUTE = "/b"
SCRIPT = resources.files("services.ingest").joinpath("static/hotlead.js").read_bytes()


class OriginRefusedError(IngestError):
    status_code = 403


def beacon_router(ctx: IngestContext) -> APIRouter:
    router = APIRouter(tags=["browser beacon"])

    def cors_headers(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "")
        allowed = ctx.origins
        if "*" in allowed or (origin and origin.rstrip("/") in allowed):
            return {
                "Access-Control-Allow-Origin": origin or "*",
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            }
        raise OriginRefusedError(
            "this site origin may not send page views (HOTLEAD_BEACON_ORIGINS)"
        )

    @router.get(
        "/hotlead.js",
        summary="The page-view snippet",
        response_class=Response,
        responses={200: {"content": {"application/javascript": {}}}},
    )
    async def script() -> Response:
        return Response(
            SCRIPT,
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    @router.options(
        BEACON_ROUTE,
        summary="CORS preflight for the beacon",
        status_code=204,
        response_class=Response,
        responses={403: {"description": "Origin not allowed."}},
    )
    async def preflight(request: Request) -> Response:
        return Response(status_code=204, headers=cors_headers(request))

    @router.post(
        BEACON_ROUTE,
        summary="A page view from hotlead.js (page.viewed)",
        status_code=204,
        response_class=Response,
        responses={
            204: {"description": "Written."},
            403: {"description": "Origin not allowed."},
            **api_errors(400, 413, 429, 503),
        },
        openapi_extra=body_schema(BeaconPageView),
    )
    async def page_view(request: Request) -> Response:
        headers = cors_headers(request)
        ctx.limit_client(request, BEACON_ROUTE)
        body = await read_body(request, ctx.settings.max_beacon_bytes)
        now = ctx.clock()
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        built = (
            build_page_view(
                doc, source="/beacon", received_at=now,
                event_id=content_id("pv", body.decode("utf-8", "replace"), now.isoformat()),
            )
            if isinstance(doc, dict)
            else Invalid("not JSON", ["body: expected a JSON object"])
        )  # fmt: skip
        answer = await accept(
            ctx, route=BEACON_ROUTE, source="/beacon", items=[(body, built)], received_at=now
        )
        if answer.rejected:
            raise BadRequestError(f"invalid page view: {'; '.join(answer.results[0]['errors'])}")
        return Response(status_code=204, headers=headers)

    return router
