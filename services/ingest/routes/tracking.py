"""GET /o/{token}.gif (open pixel) and GET /c/{token} (click redirect).

Both answer at once and write after the response: a person never waits for
Kafka. A bad token still gets the GIF, but never a redirect.
"""

import base64
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from schemas.events import EmailClicked, EmailOpened
from schemas.topics import EVENTS
from services.ingest.bots import classify_click, classify_open
from services.ingest.context import IngestContext
from services.ingest.errors import TokenError
from services.ingest.tokens import TokenKind, verify

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache"}
PIXEL_ROUTE = "/o/{token}.gif"
CLICK_ROUTE = "/c/{token}"


def tracking_router(ctx: IngestContext) -> APIRouter:
    router = APIRouter(tags=["email tracking"])
    events_topic = ctx.kafka.topic(EVENTS)

    pixel_doc: dict[str, Any] = {
        "summary": "Email open pixel: always a 1x1 transparent GIF",
        "response_class": Response,
        "responses": {200: {"content": {"image/gif": {}}, "description": "The GIF, never cached."}},
    }

    @router.get(PIXEL_ROUTE, operation_id="open_pixel", **pixel_doc)
    @router.head(PIXEL_ROUTE, operation_id="open_pixel_head", **pixel_doc)
    async def pixel(token: str, request: Request) -> Response:
        try:
            claims = verify(token, ctx.keyring, TokenKind.OPEN)
        except TokenError:
            claims = None
        if claims is not None:
            client_ip = ctx.client_ip(request)
            if ctx.over_client_limit(client_ip):
                ctx.metrics.events_unwritten.labels(PIXEL_ROUTE, "rate_limited").inc()
            else:
                now = ctx.clock()
                reason = classify_open(ctx.facts(request, client_ip))
                event = EmailOpened(
                    id=f"open-{uuid.uuid4().hex}",
                    source="/pixel",
                    subject=claims.lead_id,
                    time=now,
                    receivedat=now,
                    bot=reason.value if reason else None,
                    data={"email_id": claims.email_id, "campaign_id": claims.campaign_id},
                )
                ctx.sink.write_later(PIXEL_ROUTE, events_topic, event)
        return Response(GIF, media_type="image/gif", headers=NO_STORE)

    click_doc: dict[str, Any] = {
        "summary": "Tracked link: 302 to exactly the signed target",
        "response_class": Response,
        "responses": {
            302: {"description": "Redirect to the signed target (Location)."},
            404: {"description": "Unknown, tampered or truncated link: no redirect."},
        },
    }

    @router.get(CLICK_ROUTE, operation_id="click", **click_doc)
    @router.head(CLICK_ROUTE, operation_id="click_head", **click_doc)
    async def click(token: str, request: Request) -> Response:
        try:
            claims = verify(token, ctx.keyring, TokenKind.CLICK)
        except TokenError:
            return JSONResponse(
                {"error": "this link is not valid"}, status_code=404, headers=NO_STORE
            )
        target = claims.target or ""
        client_ip = ctx.client_ip(request)
        if ctx.over_client_limit(client_ip):
            ctx.metrics.events_unwritten.labels(CLICK_ROUTE, "rate_limited").inc()
        else:
            facts = ctx.facts(request, client_ip)
            email_key = claims.email_id or claims.campaign_id or ""
            in_burst = bool(email_key) and ctx.bursts.observe(
                claims.lead_id, email_key, target, ctx.monotonic()
            )
            reason = classify_click(facts, in_burst=in_burst)
            now = ctx.clock()
            event = EmailClicked(
                id=f"click-{uuid.uuid4().hex}",
                source="/click",
                subject=claims.lead_id,
                time=now,
                receivedat=now,
                bot=reason.value if reason else None,
                data={
                    "email_id": claims.email_id,
                    "campaign_id": claims.campaign_id,
                    "url": target,
                },
            )
            ctx.sink.write_later(CLICK_ROUTE, events_topic, event)
        return Response(
            status_code=302,
            headers={"Location": target, "Referrer-Policy": "no-referrer", **NO_STORE},
        )

    return router
