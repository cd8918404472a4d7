"""POST /v1/events: what the route does, and `EventsEndpoint`, which serves it
before FastAPI.

Backend systems post one event per request as often as 100 per batch; with
one event per request, FastAPI's middleware stack, routing and request
object cost more CPU than the event itself. `EventsEndpoint` (called by
`app.IngestApp`, like the pixel and the click) answers the route with the
same steps in the same order: the API key (401) and the source's rate
(429) before the body, the body's size (413), the batch (400, 413), then
`answer_events`, the function the FastAPI route calls too, so the answers
are the same (tests/ingest/test_events_endpoint.py compares both). Errors
become the same JSON bodies as the app's exception handlers make
(`app.error_response`). The FastAPI route stays declared: it documents the
route in the OpenAPI document and serves whatever the endpoint leaves to
it (another root path).
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from services.common.errors import KafkaUnavailableError
from services.common.logging import get_logger
from services.ingest.accept import accept, reject_whole
from services.ingest.batch import build_records
from services.ingest.context import IngestContext, check_length
from services.ingest.errors import (
    AuthenticationError,
    BadRequestError,
    IngestError,
    PayloadTooLargeError,
)
from services.ingest.incoming import Invalid

log = get_logger(__name__)
EVENTS_ROUTE = "/v1/events"
_NOT_JSON = object()


def authenticate(ctx: IngestContext, header: str | None, route: str) -> str:
    """The source of a valid `Authorization: Bearer <key>` (401 otherwise),
    within its rate (429 otherwise)."""
    scheme, _, key = (header or "").partition(" ")
    source = ctx.api_keys.get(key.strip()) if scheme.lower() == "bearer" else None
    if source is None:
        raise AuthenticationError("send a valid API key as Authorization: Bearer <key>")
    ctx.limit_source(source, route)
    return source


def parse(body: bytes) -> Any:
    """The JSON document, or `_NOT_JSON`."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def is_json(doc: Any) -> bool:
    return doc is not _NOT_JSON


async def answer_events(ctx: IngestContext, source: str, body: bytes) -> bytes:
    """Write a batch's events; the answer's JSON (one result per item)."""
    now = ctx.clock()
    doc = parse(body)
    origin = f"{EVENTS_ROUTE}/{source}"
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        invalid = Invalid("not a batch", ['body: expected {"events": [...]}'])
        await reject_whole(
            ctx, route=EVENTS_ROUTE, source=origin, body=body, invalid=invalid, at=now
        )
        raise BadRequestError('the body must be JSON: {"events": [...]}')
    items = doc["events"]
    limit = ctx.settings.max_batch_events
    if len(items) > limit:
        raise PayloadTooLargeError(f"a batch holds at most {limit} events")
    built = build_records(items, source=origin, received_at=now)
    answer = await accept(
        ctx, route=EVENTS_ROUTE, source=origin, items=list(zip(items, built, strict=True)),
        received_at=now,
    )  # fmt: skip
    return answer.json()


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
"""An answer as the status, the headers (lower-case names) and the body."""
BodyReader = Callable[[], Awaitable[bytes | None]]
"""Reads the whole body: None when the client left, PayloadTooLargeError past the limit."""


class EventsEndpoint:
    """POST /v1/events as a bare ASGI endpoint (see the module's docstring).

    `answer` and `finish` are the route without its transport: the ASGI
    endpoint calls them, and so does the server's own fast path for this
    route (services/ingest/fastpath.py), so both answer alike."""

    def __init__(self, ctx: IngestContext, error_response: Callable[[Exception], Response]) -> None:
        self.ctx = ctx
        self.error_response = error_response
        self.max_body = ctx.settings.max_body_bytes
        # Label lookups cost more than the increments: one child per status, once.
        self._requests: dict[int, Any] = {}
        self._seconds = ctx.metrics.request_seconds.labels(EVENTS_ROUTE)

    def serves(self, scope: Scope) -> bool:
        return (
            scope["method"] == "POST"
            and scope["path"] == EVENTS_ROUTE
            and not scope.get("root_path")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500
        try:
            authorization = length = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    if authorization is None:
                        authorization = value.decode("latin-1")
                elif name == b"content-length" and length is None:
                    length = value.decode("latin-1")
            answer = await self.answer(authorization, length, lambda: self._body(receive))
            if answer is None:
                return  # the client left: nobody to answer (as Starlette's request)
            await send({"type": "http.response.start", "status": answer[0], "headers": answer[1]})
            await send({"type": "http.response.body", "body": answer[2]})
            status = answer[0]
        finally:
            self.finish(status, started)

    def finish(self, status: int, started: float) -> None:
        """Count and time one request (as app.RequestMetrics does for the other routes)."""
        counter = self._requests.get(status)
        if counter is None:
            counter = self._requests[status] = self.ctx.metrics.requests.labels(
                EVENTS_ROUTE, str(status)
            )
        counter.inc()
        self._seconds.observe(time.perf_counter() - started)
        if status >= 400:
            log.info("request_refused", method="POST", route=EVENTS_ROUTE, status=status)

    async def answer(
        self, authorization: str | None, length: str | None, read_body: BodyReader
    ) -> Answer | None:
        """The answer to one request (its Authorization and Content-Length
        headers, its body read by `read_body`), or None when the client left."""
        try:
            source = authenticate(self.ctx, authorization, EVENTS_ROUTE)
            check_length(length, self.max_body)
            body = await read_body()
            if body is None:
                return None
            answer = await answer_events(self.ctx, source, body)
        except (IngestError, KafkaUnavailableError) as exc:
            response = self.error_response(exc)
            return response.status_code, response.raw_headers, bytes(response.body)
        return (
            200,
            [
                (b"content-length", str(len(answer)).encode()),
                (b"content-type", b"application/json"),
            ],
            answer,
        )

    async def _body(self, receive: Receive) -> bytes | None:
        """The whole body (413 past the limit), None when the client disconnected."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise PayloadTooLargeError(f"the body is larger than {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
