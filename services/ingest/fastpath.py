"""POST /v1/events answered by the HTTP protocol itself, below uvicorn's ASGI cycle.

Browser beacons and webhooks send one event per request. For such a request
uvicorn's httptools protocol builds an ASGI scope, a `RequestResponseCycle`
with an `asyncio.Event`, and two ASGI messages for the answer, whose headers
it checks with regular expressions: ~20% of the request's CPU beside the
route itself. `with_events_fast_path(protocol)` is uvicorn's httptools
protocol class with one more step in `on_headers_complete`: a
`POST /v1/events` (the path exactly, any query) on an app with an
`EventsEndpoint` (`app.IngestApp.events`) gets an `EventsCycle` instead,
which reads the body as the parser delivers it and calls the endpoint's
`answer` and `finish`, the same functions the ASGI endpoint calls (so the
answers, the records and the metrics are the same; tests/ingest/
test_fastpath.py compares both on real sockets), then writes the answer
with one `transport.write`.

Everything else is uvicorn's: other requests (the ASGI app), pipelining
(the cycle waits in uvicorn's queue like an ASGI one), keep-alive and its
timeout, `Connection: close` and HTTP/1.0, `Expect: 100-continue` (sent when
the body is first waited for, as uvicorn's `receive` does), flow control,
graceful shutdown (the cycle's task is in the server's task set) and the
date header. Requests the cycle cannot answer as uvicorn would (an upgrade,
a concurrency limit, an access log, a root path) take the ASGI way.

The ASGI scope is built only for requests that take the ASGI way
(`on_message_begin` is uvicorn's minus the scope; `_asgi_scope` makes it).
"""

import asyncio
import time
from collections.abc import Callable
from typing import Any

from services.common.logging import get_logger
from services.ingest.errors import PayloadTooLargeError
from services.ingest.routes.events import EVENTS_ROUTE, EventsEndpoint

log = get_logger(__name__)
_PATH = EVENTS_ROUTE.encode()
_PATH_QUERY = _PATH + b"?"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_ERROR_500 = (
    500,
    [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"21"),
        (b"connection", b"close"),
    ],
    b"Internal Server Error",
)


class _Wake:
    """What uvicorn's protocol calls `message_event`: set when body arrives or
    the client leaves; one waiter at most (cheaper than an asyncio.Event)."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class EventsCycle:
    """One POST /v1/events on a connection: the attributes uvicorn's protocol
    reads and writes on its cycle (`body`, `more_body`, `message_event`,
    `response_complete`, `disconnected`, `keep_alive`), and `run`."""

    __slots__ = (
        "authorization",
        "body",
        "disconnected",
        "endpoint",
        "keep_alive",
        "length",
        "message_event",
        "more_body",
        "on_response",
        "protocol",
        "response_complete",
        "response_started",
        "started",
        "waiting_for_100_continue",
    )

    def __init__(
        self,
        protocol: Any,
        endpoint: EventsEndpoint,
        headers: list[tuple[bytes, bytes]],
        *,
        expect_100_continue: bool,
        keep_alive: bool,
    ) -> None:
        self.started = time.perf_counter()
        self.protocol = protocol
        self.endpoint = endpoint
        self.authorization: str | None = None
        self.length: str | None = None
        for name, value in headers:  # the first of each, as the ASGI endpoint reads them
            if name == b"authorization":
                if self.authorization is None:
                    self.authorization = value.decode("latin-1")
            elif name == b"content-length" and self.length is None:
                self.length = value.decode("latin-1")
        self.body = bytearray()
        self.more_body = True
        self.message_event = _Wake()
        self.response_started = self.response_complete = self.disconnected = False
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.on_response: Callable[[], None] = protocol.on_response_complete

    async def run(self) -> None:
        status = 500
        try:
            answer = await self.endpoint.answer(self.authorization, self.length, self.read_body)
            if answer is not None:
                await self.respond(*answer)
                status = answer[0]
        except BaseException as exc:  # what uvicorn's run_asgi does with an app's exception
            self.protocol.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                self.keep_alive = False
                await self.respond(*_ERROR_500)
            else:
                self.protocol.transport.close()
        finally:
            self.on_response = _nothing
            self.endpoint.finish(status, self.started)

    async def read_body(self) -> bytes | None:
        """The whole body, as uvicorn's `receive` delivers it (None: the client left)."""
        transport, flow = self.protocol.transport, self.protocol.flow
        limit = self.endpoint.max_body
        while True:
            if self.waiting_for_100_continue and not transport.is_closing():
                transport.write(_CONTINUE)
                self.waiting_for_100_continue = False
            if self.disconnected:
                return None
            if len(self.body) > limit:
                raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
            if not self.more_body:
                return bytes(self.body)
            flow.resume_reading()
            await self.message_event.wait()

    async def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """The answer in one write, as uvicorn's `send` writes it."""
        protocol = self.protocol
        if protocol.flow.write_paused and not self.disconnected:
            await protocol.flow.drain()
        if self.disconnected:
            return
        self.response_started = True
        self.waiting_for_100_continue = False
        content = [protocol.status_lines[status]]
        for name, value in protocol.server_state.default_headers:
            content += (name, b": ", value, b"\r\n")
        closing = False
        for name, value in headers:
            if name == b"connection" and b"close" in value.lower():
                self.keep_alive, closing = False, True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not closing:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", body)
        protocol.write_now(b"".join(content))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            protocol.transport.close()
        self.on_response()


def _nothing() -> None:
    pass


def with_events_fast_path(base: type[asyncio.Protocol], app: Any) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol `base` (or a subclass) answering POST
    /v1/events of `app` itself (see the module's docstring); `base` as it is
    for another protocol or an app without an `EventsEndpoint`."""
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    app_endpoint = getattr(app, "events", None)
    if not issubclass(base, HttpToolsProtocol) or not isinstance(app_endpoint, EventsEndpoint):
        return base

    class EventsFastPath(base):  # type: ignore[valid-type,misc]
        status_lines = STATUS_LINE

        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            endpoint = getattr(config.app, "events", None)
            fast = (
                endpoint is app_endpoint
                and not self.root_path
                and self.limit_concurrency is None
                and not self.access_log
            )
            self.events: EventsEndpoint | None = endpoint if fast else None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            # an answer in one piece goes out at once (server.CoalescingTransport)
            self.write_now = getattr(self.transport, "write_now", self.transport.write)
            self._idle_since: float | None = None
            self._idle_timer: asyncio.TimerHandle | None = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            super().connection_lost(exc)

        # Keep-alive: uvicorn arms a timer after each answer and cancels it when
        # the next request arrives (a heap push and a cancel per request). Here
        # the connection notes when it fell idle, and one timer per connection
        # closes it once it has been idle for `timeout_keep_alive` seconds,
        # re-armed for the rest when the connection was busy in between.

        def _unset_keepalive_if_required(self) -> None:
            self._idle_since = None
            super()._unset_keepalive_if_required()

        def on_response_complete(self) -> None:
            # uvicorn's, with the idle timer above
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self._idle_since = None
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
                return
            self._idle_since = now = self.loop.time()
            if self._idle_timer is None:
                self._idle_timer = self.loop.call_at(now + self.timeout_keep_alive, self._idle)

        def _idle(self) -> None:
            self._idle_timer = None
            since = self._idle_since
            if since is None or self.transport.is_closing():
                return  # busy: the next answer arms it again
            due = since + self.timeout_keep_alive
            if self.loop.time() >= due:
                self.timeout_keep_alive_handler()
            else:
                self._idle_timer = self.loop.call_at(due, self._idle)

        def on_message_begin(self) -> None:
            # uvicorn's, without the scope: made when the request takes the ASGI way
            self.url = b""
            self.expect_100_continue = False
            self.headers: list[tuple[bytes, bytes]] = []
            self.scope = None

        def _asgi_scope(self) -> None:
            url, headers, expect = self.url, self.headers, self.expect_100_continue
            super().on_message_begin()
            self.url, self.expect_100_continue = url, expect
            self.headers.extend(headers)  # (the scope holds this list)

        def on_headers_complete(self) -> None:
            parser, endpoint = self.parser, self.events
            if (
                endpoint is None
                or parser.get_method() != b"POST"
                or (self.url != _PATH and not self.url.startswith(_PATH_QUERY))
                or parser.should_upgrade()
            ):
                self._asgi_scope()
                super().on_headers_complete()
                return
            cycle = EventsCycle(
                self,
                endpoint,
                self.headers,
                expect_100_continue=self.expect_100_continue,
                keep_alive=parser.get_http_version() != "1.0" and parser.should_keep_alive(),
            )
            existing: Any = self.cycle  # type: ignore[has-type]
            self.cycle = cycle
            if existing is None or existing.response_complete:
                self._start_asgi_task(cycle, None)
            else:  # pipelined: after the requests before it, as uvicorn queues them
                self.flow.pause_reading()
                self.pipeline.appendleft((cycle, None))

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            if type(cycle) is not EventsCycle:
                super()._start_asgi_task(cycle, app)
                return
            task = self.loop.create_task(cycle.run())
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

    EventsFastPath.__name__ = EventsFastPath.__qualname__ = f"EventsFastPath{base.__name__}"
    return EventsFastPath
