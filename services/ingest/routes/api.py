"""The API for backend systems (Bearer API key per source):
POST /v1/events, PUT /v1/leads/{lead_id}, POST /v1/crm/feedback."""

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from schemas.data import LeadAttributes
from services.ingest.accept import BatchResult, ErrorBody, accept
from services.ingest.context import IngestContext, read_body
from services.ingest.incoming import (
    CrmFeedback,
    EventBatch,
    Invalid,
    build_crm_feedback,
    build_lead_update,
    content_id,
)
from services.ingest.routes import events
from services.ingest.routes.events import EVENTS_ROUTE

LEADS_ROUTE = "/v1/leads/{lead_id}"
FEEDBACK_ROUTE = "/v1/crm/feedback"


def api_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "The body is not JSON of the documented shape (a copy is kept as evidence).",
        401: "No or an unknown API key (Authorization: Bearer <key>).",
        413: "The body or the batch is over the documented limit.",
        422: "The input is not valid; `errors` says why (a copy is kept as evidence).",
        429: "Too many requests for this source; see Retry-After.",
        503: "Kafka did not acknowledge; nothing is promised, retry after Retry-After.",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON body the route reads itself (self-contained)."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, schema.get("$defs", {}))}},
        }
    }


def api_router(ctx: IngestContext) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["api"])
    limits = ctx.settings

    def authenticate(request: Request, route: str) -> str:
        return events.authenticate(ctx, request.headers.get("authorization"), route)

    def parse(body: bytes) -> Any:
        doc = events.parse(body)
        return doc if events.is_json(doc) else _NOT_JSON

    @router.post(
        "/events",
        summary="A batch of events from a backend system",
        response_model=BatchResult,
        response_model_exclude_none=True,
        responses=api_errors(400, 401, 413, 429, 503),
        openapi_extra=body_schema(EventBatch),
    )
    async def post_events(request: Request) -> Response:
        # Served by events.EventsEndpoint before FastAPI; this route documents it
        # and serves what the endpoint leaves to FastAPI, with the same steps.
        # (No docstring: FastAPI would put it into the OpenAPI document.)
        source = authenticate(request, EVENTS_ROUTE)
        body = await read_body(request, limits.max_body_bytes)
        answer = await events.answer_events(ctx, source, body)
        return Response(answer, media_type="application/json")

    async def single(
        request: Request, route: str, origin: str, body: bytes, built: Any, now: Any
    ) -> JSONResponse:
        answer = await accept(
            ctx, route=route, source=origin, items=[(body, built)], received_at=now
        )
        result = answer.results[0]
        if result["status"] == "rejected":
            return JSONResponse(
                {"error": result["reason"], "errors": result["errors"]}, status_code=422
            )
        return JSONResponse({"id": result["id"], "status": result["status"]})

    def event_id(request: Request, prefix: str, source: str) -> str:
        key = request.headers.get("idempotency-key")
        return content_id(prefix, source, key) if key else f"{prefix}-{uuid.uuid4().hex}"

    @router.put(
        "/leads/{lead_id}",
        summary="Set a lead's attributes (lead.updated)",
        responses={
            200: {"description": "Written (or a duplicate of an earlier Idempotency-Key)."},
            **api_errors(400, 401, 413, 422, 429, 503),
        },
        openapi_extra=body_schema(LeadAttributes),
    )
    async def put_lead(lead_id: str, request: Request) -> JSONResponse:
        source = authenticate(request, LEADS_ROUTE)
        body = await read_body(request, limits.max_body_bytes)
        now = ctx.clock()
        origin = f"/v1/leads/{source}"
        doc = parse(body)
        built = (
            Invalid("not JSON", ["body: expected a JSON object"], None)
            if doc is _NOT_JSON
            else build_lead_update(
                lead_id, doc, source=origin, received_at=now,
                event_id=event_id(request, "lead", f"{source}/{lead_id}"),
            )
        )  # fmt: skip
        return await single(request, LEADS_ROUTE, origin, body, built, now)

    @router.post(
        "/crm/feedback",
        summary="A sales status from the CRM (crm.status_changed)",
        responses={
            200: {"description": "Written (or a duplicate)."},
            **api_errors(400, 401, 413, 422, 429, 503),
        },
        openapi_extra=body_schema(CrmFeedback),
    )
    async def post_feedback(request: Request) -> JSONResponse:
        source = authenticate(request, FEEDBACK_ROUTE)
        body = await read_body(request, limits.max_body_bytes)
        now = ctx.clock()
        origin = f"/v1/crm/feedback/{source}"
        doc = parse(body)
        built = (
            Invalid("not JSON", ["body: expected a JSON object"], None)
            if doc is _NOT_JSON
            else build_crm_feedback(
                doc, source=origin, received_at=now, event_id=event_id(request, "crm", source)
            )
        )
        return await single(request, FEEDBACK_ROUTE, origin, body, built, now)

    return router


_NOT_JSON = object()
