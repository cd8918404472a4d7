"""POST /webhooks/sendgrid (SendGrid's signed Event Webhook) and
POST /webhooks/generic (Standard Webhooks). A bad or stale signature: 401,
nothing written."""

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from services.ingest import sendgrid, standard_webhooks
from services.ingest.accept import BatchResult, accept, as_json, reject_whole
from services.ingest.context import IngestContext, read_body
from services.ingest.errors import BadRequestError, SignatureError
from services.ingest.incoming import IncomingEvent, Invalid, build_event
from services.ingest.routes.api import api_errors, body_schema

SENDGRID_ROUTE = "/webhooks/sendgrid"
GENERIC_ROUTE = "/webhooks/generic"
SENDGRID_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"type": "object", "required": ["event", "timestamp"]},
                    "description": "SendGrid Event Webhook events.",
                }
            }
        },
    }
}


def webhooks_router(ctx: IngestContext) -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])
    limits = ctx.settings

    @router.post(
        "/sendgrid",
        summary="SendGrid Event Webhook (signed)",
        response_model=BatchResult,
        response_model_exclude_none=True,
        responses=api_errors(400, 401, 413, 429, 503),
        openapi_extra=SENDGRID_BODY,
    )
    async def sendgrid_events(request: Request) -> Response:
        ctx.limit_client(request, SENDGRID_ROUTE)
        body = await read_body(request, limits.max_body_bytes)
        if ctx.sendgrid_key is None:
            ctx.metrics.signature_failures.labels("sendgrid").inc()
            raise SignatureError("no SendGrid verification key is configured")
        try:
            sendgrid.verify_signature(
                ctx.sendgrid_key,
                request.headers,
                body,
                now_s=ctx.wall_s(),
                tolerance_s=limits.webhook_tolerance_s,
            )
        except SignatureError:
            ctx.metrics.signature_failures.labels("sendgrid").inc()
            raise
        now = ctx.clock()
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError:
            items = None
        if not isinstance(items, list):
            invalid = Invalid("not a SendGrid batch", ["body: expected a JSON array"])
            await reject_whole(
                ctx,
                route=SENDGRID_ROUTE,
                source=sendgrid.SOURCE,
                body=body,
                invalid=invalid,
                at=now,
            )
            raise BadRequestError("the body must be a JSON array of SendGrid events")
        built: list[tuple[Any, Any]] = []
        for item in items:
            mapped = sendgrid.map_event(item, now)
            if isinstance(mapped, sendgrid.Mapped):
                built.append((item, mapped.event))
            elif isinstance(mapped, sendgrid.Ignored):
                ctx.metrics.webhook_ignored.labels("sendgrid", mapped.kind).inc()
                built.append((item, None))
            else:
                built.append((item, Invalid(mapped.reason, mapped.errors, mapped.lead_id)))
        return as_json(
            await accept(
                ctx, route=SENDGRID_ROUTE, source=sendgrid.SOURCE, items=built, received_at=now
            )
        )

    generic_body = body_schema(IncomingEvent)
    single = generic_body["requestBody"]["content"]["application/json"]["schema"]
    generic_body["requestBody"]["content"]["application/json"]["schema"] = {
        "anyOf": [single, {"type": "array", "items": single}]
    }

    @router.post(
        "/generic",
        summary="Events from any sender that signs with Standard Webhooks",
        response_model=BatchResult,
        response_model_exclude_none=True,
        responses=api_errors(400, 401, 413, 429, 503),
        openapi_extra=generic_body,
    )
    async def generic_events(request: Request) -> Response:
        ctx.limit_client(request, GENERIC_ROUTE)
        body = await read_body(request, limits.max_body_bytes)
        try:
            webhook_id = standard_webhooks.verify(
                ctx.webhook_keys,
                request.headers,
                body,
                now_s=ctx.wall_s(),
                tolerance_s=limits.webhook_tolerance_s,
            )
        except SignatureError:
            ctx.metrics.signature_failures.labels("generic").inc()
            raise
        now = ctx.clock()
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        items = doc if isinstance(doc, list) else [doc] if isinstance(doc, dict) else None
        if items is None or len(items) > limits.max_batch_events:
            invalid = Invalid("not an event", ["body: expected an event object or a list"])
            await reject_whole(
                ctx, route=GENERIC_ROUTE, source=GENERIC_ROUTE, body=body, invalid=invalid, at=now
            )
            raise BadRequestError("the body must be an event object or a list of them")
        built = [
            (
                item,
                build_event(
                    item,
                    source=GENERIC_ROUTE,
                    received_at=now,
                    default_id=webhook_id if len(items) == 1 else f"{webhook_id}:{index}",
                ),
            )
            for index, item in enumerate(items)
        ]
        return as_json(
            await accept(
                ctx, route=GENERIC_ROUTE, source=GENERIC_ROUTE, items=built, received_at=now
            )
        )

    return router
