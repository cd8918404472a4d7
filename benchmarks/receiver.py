"""An HTTP receiver that notes when each message arrived (the benchmark's
stand-in for Slack): a bare ASGI app served by uvicorn in the bench process,
so its clock is the load generator's clock."""

import asyncio
import time
from collections.abc import Callable

import uvicorn

from benchmarks.baseline_chain import Receive, Scope, Send

IdReader = Callable[[bytes], list[str]]
"""Which ids a received body is about."""


class Receiver:
    def __init__(self, read_ids: IdReader, *, port: int, response: bytes = b"ok") -> None:
        self.read_ids = read_ids
        self.port = port
        self.response = response
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.perf_counter()
        for ident in self.read_ids(body):
            if ident in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[ident] = now
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.response})

    async def start(self) -> None:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.ensure_future(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
