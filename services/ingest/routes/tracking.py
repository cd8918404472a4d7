"""GET/HEAD /o/{token}.gif (open pixel) and GET/HEAD /c/{token} (click redirect).

Both answer at once and write after the response: a person never waits for
Kafka. A bad token still gets the GIF, but never a redirect.

These two are the hottest routes, so they are served by a small ASGI layer in
front of FastAPI (`TrackingFirst`) instead of FastAPI routes: no dependency
solving, no request object, a few dict lookups. `OPENAPI_PATHS` documents them
in the app's OpenAPI document like the other routes.
"""

import base64
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from schemas.events import EmailClicked, EmailOpened
from schemas.topics import EVENTS
from services.ingest.bots import RequestFacts, classify_click, classify_open
from services.ingest.context import IngestContext
from services.ingest.errors import TokenError
from services.ingest.limits import client_address
from services.ingest.records import Record
from services.ingest.tokens import TokenKind, verify

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache"}
PIXEL_ROUTE = "/o/{token}.gif"
CLICK_ROUTE = "/c/{token}"
NOT_VALID = b'{"error":"this link is not valid"}'
_NO_STORE_RAW = [(k.lower().encode(), v.encode()) for k, v in NO_STORE.items()]
GIF_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(GIF)).encode()),
    *_NO_STORE_RAW,
]
NOT_VALID_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(NOT_VALID)).encode()),
    *_NO_STORE_RAW,
]
_FACT_HEADERS = {b"purpose", b"sec-purpose", b"x-moz", b"x-purpose"}

_TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
OPENAPI_PATHS: dict[str, Any] = {
    PIXEL_ROUTE: {
        method: {
            "tags": ["email tracking"],
            "summary": "Email open pixel: always a 1x1 transparent GIF",
            "operationId": f"open_pixel_{method}",
            "parameters": [_TOKEN],
            "responses": {
                "200": {"description": "The GIF, never cached.", "content": {"image/gif": {}}}
            },
        }
        for method in ("get", "head")
    },
    CLICK_ROUTE: {
        method: {
            "tags": ["email tracking"],
            "summary": "Tracked link: 302 to exactly the signed target",
            "operationId": f"click_{method}",
            "parameters": [_TOKEN],
            "responses": {
                "302": {"description": "Redirect to the signed target (Location)."},
                "404": {
                    "description": "Unknown, tampered or truncated link: no redirect.",
                    "content": {"application/json": {}},
                },
            },
        }
        for method in ("get", "head")
    },
}


class TrackingFirst:
    """Serves the pixel and the click before the FastAPI app sees the request."""

    def __init__(self, app: ASGIApp, ctx: IngestContext) -> None:
        self.app = app
        self.ctx = ctx
        self.events_topic = ctx.kafka.topic(EVENTS)
        # Label lookups cost more than the increments: bind the few series once.
        self._answered = {
            (route, status): ctx.metrics.requests.labels(route, str(status))
            for route, status in ((PIXEL_ROUTE, 200), (CLICK_ROUTE, 302), (CLICK_ROUTE, 404))
        }
        self._seconds = {
            route: ctx.metrics.request_seconds.labels(route) for route in (PIXEL_ROUTE, CLICK_ROUTE)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            started = time.perf_counter()
            if path.startswith("/o/") and path.endswith(".gif") and "/" not in path[3:]:
                answer = self._pixel(scope, path[3:-4])
                await self._answer(PIXEL_ROUTE, started, answer, scope, send)
                return
            if path.startswith("/c/") and len(path) > 3 and "/" not in path[3:]:
                answer = self._click(scope, path[3:])
                await self._answer(CLICK_ROUTE, started, answer, scope, send)
                return
        await self.app(scope, receive, send)

    async def _answer(
        self, route: str, started: float, answer: tuple[int, list[tuple[bytes, bytes]], bytes],
        scope: Scope, send: Send,
    ) -> None:  # fmt: skip
        status, headers, body = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
        self._answered[route, status].inc()
        self._seconds[route].observe(time.perf_counter() - started)

    def _facts(self, scope: Scope) -> RequestFacts:
        user_agent = forwarded = None
        extra: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
            elif name in _FACT_HEADERS:
                extra[name.decode()] = value.decode("latin-1")
        client = scope.get("client")
        peer = client[0] if client else None
        return RequestFacts(
            method=scope["method"],
            user_agent=user_agent,
            client_ip=client_address(peer, forwarded, self.ctx.proxies),
            headers=extra,
        )

    def _pixel(self, scope: Scope, token: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        ctx = self.ctx
        try:
            claims = verify(token, ctx.keyring, TokenKind.OPEN)
        except TokenError:
            return 200, GIF_HEADERS, GIF
        facts = self._facts(scope)
        if ctx.over_client_limit(facts.client_ip):
            ctx.metrics.events_unwritten.labels(PIXEL_ROUTE, "rate_limited").inc()
            return 200, GIF_HEADERS, GIF
        now = ctx.clock()
        reason = classify_open(facts)
        event = EmailOpened(
            id=f"open-{uuid.uuid4().hex}",
            source="/pixel",
            subject=claims.lead_id,
            time=now,
            receivedat=now,
            bot=reason.value if reason else None,
            data={"email_id": claims.email_id, "campaign_id": claims.campaign_id},
        )
        ctx.sink.write_later(PIXEL_ROUTE, self.events_topic, Record.of(event))
        return 200, GIF_HEADERS, GIF

    def _click(self, scope: Scope, token: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        ctx = self.ctx
        try:
            claims = verify(token, ctx.keyring, TokenKind.CLICK)
        except TokenError:
            return 404, NOT_VALID_HEADERS, NOT_VALID
        target = claims.target or ""
        headers = [
            (b"location", target.encode("ascii")),
            (b"referrer-policy", b"no-referrer"),
            (b"content-length", b"0"),
            *_NO_STORE_RAW,
        ]
        facts = self._facts(scope)
        if ctx.over_client_limit(facts.client_ip):
            ctx.metrics.events_unwritten.labels(CLICK_ROUTE, "rate_limited").inc()
            return 302, headers, b""
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
            data={"email_id": claims.email_id, "campaign_id": claims.campaign_id, "url": target},
        )
        ctx.sink.write_later(CLICK_ROUTE, self.events_topic, Record.of(event))
        return 302, headers, b""
