"""A local HTTP server (aiohttp) on 127.0.0.1, port chosen by the OS, with scripted faults.

`server.script(path_prefix, Fault(429, retry_after=2), Fault(503))` makes the
next requests under that path fail in that order; after the script, the fake
API answers normally. `Fault(delay=5)` holds the answer (client timeouts).
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Fault:
    status: int = 503
    retry_after: float | None = None
    body: Any = field(default_factory=lambda: {"error": "scripted fault"})
    delay: float = 0.0
    then_handle: bool = False
    """After the delay, answer normally (a slow success) instead of with `status`."""
    slow_answer: bool = False
    """Handle the request at once (it takes effect), then hold the answer for `delay`."""


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    status: int
    at: float


class FakeServer:
    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._faults])
        self._scripts: list[tuple[str, list[Fault]]] = []
        self.seen: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def script(self, path_prefix: str, *faults: Fault) -> None:
        self._scripts.append((path_prefix, list(faults)))

    def _next_fault(self, path: str) -> Fault | None:
        for prefix, faults in self._scripts:
            if path.startswith(prefix) and faults:
                return faults.pop(0)
        return None

    @web.middleware
    async def _faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        fault = self._next_fault(request.path)
        if fault is not None and fault.slow_answer:
            response = await handler(request)
            self.seen.append(Seen(request.method, request.path, response.status, loop.time()))
            await asyncio.sleep(fault.delay)
            return response
        if fault is not None:
            await request.read()  # taken in full before the delay, like a real server
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if not fault.then_handle:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                self.seen.append(Seen(request.method, request.path, fault.status, loop.time()))
                if isinstance(fault.body, str):
                    return web.Response(
                        status=fault.status,
                        text=fault.body,
                        headers=headers,
                        content_type="text/html",
                    )
                return web.json_response(fault.body, status=fault.status, headers=headers)
        response = await handler(request)
        self.seen.append(Seen(request.method, request.path, response.status, loop.time()))
        return response

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
