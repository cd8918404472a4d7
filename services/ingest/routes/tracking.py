"""GET/HEAD /o/{token}.gif (open pixel) and GET/HEAD /c/{token} (click redirect).

Both answer at once and write after the response: a person never waits for
Kafka. A bad token still gets the GIF, but never a redirect.

These two are the hottest routes, so they are served before FastAPI and its
middleware (`Tracking`, called by `app.IngestApp`) instead of FastAPI routes:
no dependency solving, no request object, a few dict lookups, no model per
event. `OPENAPI_PATHS` documents them
in the app's OpenAPI document like the other routes.
"""

import asyncio
import base64
import itertools
import os
import time
from collections.abc import Iterable
from typing import Any

from starlette.types import Scope, Send

from schemas.event_types import EventType
from schemas.topics import EVENTS
from services.ingest.bots import RequestFacts, classify_click, classify_open
from services.ingest.context import IngestContext, utc_now
from services.ingest.errors import TokenError
from services.ingest.limits import client_address
from services.ingest.records import Record, UtcNowText, event_json, utc_text
from services.ingest.tokens import TokenClaims, TokenKind, verify

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


# The answers never change: built once, sent as they are (nothing on the way mutates them).
_GIF_START = {"type": "http.response.start", "status": 200, "headers": GIF_HEADERS}
_GIF_BODY = {"type": "http.response.body", "body": GIF}
_NO_BODY = {"type": "http.response.body", "body": b""}
_NOT_VALID_START = {"type": "http.response.start", "status": 404, "headers": NOT_VALID_HEADERS}
_NOT_VALID_BODY = {"type": "http.response.body", "body": NOT_VALID}
_OPENED = EventType.EMAIL_OPENED.value
_CLICKED = EventType.EMAIL_CLICKED.value


class EventIds:
    """Unique event ids without a system call each: 64 random bits per
    process (and per 2**64 ids) followed by a counter, as hex."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count()

    def __call__(self, kind: str) -> str:
        return f"{kind}-{self._prefix}{next(self._count):016x}"


def _email_ref(claims: TokenClaims) -> dict[str, str]:
    data = {}
    if claims.email_id is not None:
        data["email_id"] = claims.email_id
    if claims.campaign_id is not None:
        data["campaign_id"] = claims.campaign_id
    return data


class Tracking:
    """Serves the pixel and the click before FastAPI (and its middleware) sees the request.

    The answer goes out first; then the token is checked and the event is
    built (the record bytes directly, as `encode_event` would write the
    EmailOpened / EmailClicked model) and queued for the background writer.
    Pixels are checked in batches, right after this pass of the event loop
    (their answer never depends on the token); a click's answer does, so
    clicks are checked at once.
    """

    def __init__(self, ctx: IngestContext) -> None:
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
        # Counted here, added to the Prometheus counters when /metrics is read.
        self._counts = dict.fromkeys(self._answered, 0)
        ctx.metrics.before_collect.append(self.process_opens)
        ctx.metrics.before_collect.append(self.flush_counts)
        self._opens: list[tuple[str, str, Any, Any, float, str]] = []
        self._opens_due: asyncio.AbstractEventLoop | None = None
        """The loop a process_opens call is scheduled on (another loop: schedule again)."""
        self._ids = EventIds()
        self._now_text = UtcNowText()

    def flush_counts(self) -> None:
        for series, count in self._counts.items():
            if count:
                self._answered[series].inc(count)
                self._counts[series] = 0

    def _now(self) -> str:
        clock = self.ctx.clock
        return self._now_text() if clock is utc_now else utc_text(clock())

    async def serve(self, scope: Scope, send: Send) -> bool:
        """Answer a pixel or click request; False when it is neither (FastAPI's turn)."""
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            return False
        path: str = scope["path"]
        started = time.perf_counter()
        if path.startswith("/o/") and path.endswith(".gif") and "/" not in path[3:]:
            await send(_GIF_START)
            await send(_GIF_BODY if method == "GET" else _NO_BODY)
            self._opens.append(
                (path[3:-4], method, scope["headers"], scope.get("client"),
                 self.ctx.monotonic(), self._now())
            )  # fmt: skip
            loop = asyncio.get_running_loop()
            if self._opens_due is not loop:  # the opens of this loop pass, checked together
                self._opens_due = loop
                loop.call_soon(self.process_opens)
            self._counts[PIXEL_ROUTE, 200] += 1
            self._seconds[PIXEL_ROUTE].observe(time.perf_counter() - started)
            return True
        if path.startswith("/c/") and len(path) > 3 and "/" not in path[3:]:
            status = await self._click(scope, path[3:], send)
            self._counts[CLICK_ROUTE, status] += 1
            self._seconds[CLICK_ROUTE].observe(time.perf_counter() - started)
            return True
        return False

    def _facts(self, scope: Scope) -> RequestFacts:
        return self._facts_of(scope["method"], scope["headers"], scope.get("client"))

    def _facts_of(
        self, method: str, headers: Iterable[tuple[bytes, bytes]], client: Any
    ) -> RequestFacts:
        user_agent = forwarded = None
        extra: dict[str, str] = {}
        for name, value in headers:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
            elif name in _FACT_HEADERS:
                extra[name.decode()] = value.decode("latin-1")
        peer = client[0] if client else None
        return RequestFacts(
            method=method,
            user_agent=user_agent,
            client_ip=client_address(peer, forwarded, self.ctx.proxies) if forwarded else peer,
            headers=extra,
        )

    def process_opens(self) -> None:
        """Check the tokens of the pixels answered since the last call and queue
        their events: after the answers, in one go (the code and data stay hot
        in the CPU's caches). Also called before /metrics is read."""
        opens, self._opens, self._opens_due = self._opens, [], None
        ctx = self.ctx
        keyring, limiter, write_later = ctx.keyring, ctx.client_limiter, ctx.sink.write_later
        make = Record._make  # half the cost of Record(...)
        for token, method, headers, client, at_s, now in opens:
            try:
                claims = verify(token, keyring, TokenKind.OPEN)
            except TokenError:
                continue
            facts = self._facts_of(method, headers, client)
            if limiter.acquire(facts.client_ip or "-", at_s):  # as over_client_limit, then
                ctx.metrics.events_unwritten.labels(PIXEL_ROUTE, "rate_limited").inc()
                continue
            reason = classify_open(facts)
            event_id = self._ids("open")
            bot = reason.value if reason else None
            value = event_json(
                event_id=event_id, source="/pixel", type_name=_OPENED, subject=claims.lead_id,
                time=now, received_at=now, data=_email_ref(claims), bot=bot,
            )  # fmt: skip
            record = make((event_id, _OPENED, claims.lead_id.encode(), value, bot, None))
            write_later(PIXEL_ROUTE, self.events_topic, record)

    async def _click(self, scope: Scope, token: str, send: Send) -> int:
        ctx = self.ctx
        try:
            claims = verify(token, ctx.keyring, TokenKind.CLICK)
        except TokenError:
            await send(_NOT_VALID_START)
            await send(_NOT_VALID_BODY if scope["method"] == "GET" else _NO_BODY)
            return 404
        target = claims.target or ""
        headers = [
            (b"location", target.encode("ascii")),
            (b"referrer-policy", b"no-referrer"),
            (b"content-length", b"0"),
            *_NO_STORE_RAW,
        ]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send(_NO_BODY)
        facts = self._facts(scope)
        if ctx.over_client_limit(facts.client_ip):
            ctx.metrics.events_unwritten.labels(CLICK_ROUTE, "rate_limited").inc()
            return 302
        email_key = claims.email_id or claims.campaign_id or ""
        in_burst = bool(email_key) and ctx.bursts.observe(
            claims.lead_id, email_key, target, ctx.monotonic()
        )
        reason = classify_click(facts, in_burst=in_burst)
        now = self._now()
        event_id = self._ids("click")
        bot = reason.value if reason else None
        value = event_json(
            event_id=event_id, source="/click", type_name=_CLICKED, subject=claims.lead_id,
            time=now, received_at=now, data={**_email_ref(claims), "url": target}, bot=bot,
        )  # fmt: skip
        record = Record._make((event_id, _CLICKED, claims.lead_id.encode(), value, bot, None))
        ctx.sink.write_later(CLICK_ROUTE, self.events_topic, record)
        return 302
