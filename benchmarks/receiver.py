"""The benchmark's stand-in for Slack: an HTTP receiver in its own process that notes
when each message arrived: the kernel's receive time of its bytes, on the system
clock (`time.time_ns()`'s), as the load generator processes stamp their 2xx answers
(same machine; benchmarks/stamped.py).

    python -m benchmarks.receiver PORT hotlead|baseline

Any POST is a message: `hotlead` reads the hand-off ids out of a Slack webhook body,
`baseline` takes the body as the id. GET /arrivals answers {"arrivals": {id: ns},
"duplicates": n}; GET /healthz answers ok. `Receiver` starts and queries it.
"""

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable

import httpx
import orjson

from benchmarks.rawhttp import harness_priority
from benchmarks.stamped import StampedServer

IdReader = Callable[[bytes], list[str]]
"""Which ids a received body is about."""
HANDOFF_ID = re.compile(rb"ho-(pr[0-9a-f]{6}x\d+)-1")


def alert_ids(body: bytes) -> list[str]:
    """hotlead: the leads of the hand-offs an alert is about (`ho-<lead>-1`)."""
    return sorted({match.decode() for match in HANDOFF_ID.findall(body)})


def body_id(body: bytes) -> list[str]:
    return [body.decode()]


READERS: dict[str, IdReader] = {"hotlead": alert_ids, "baseline": body_id}


async def run(port: int, read_ids: IdReader) -> None:
    arrivals: dict[str, int] = {}
    duplicates = 0

    def handle(method: bytes, path: bytes, body: bytes, at: int) -> tuple[int, bytes]:
        nonlocal duplicates
        if method == b"POST":
            for ident in read_ids(body):
                if ident in arrivals:
                    duplicates += 1
                else:
                    arrivals[ident] = at
            return 200, b"ok"
        if path == b"/arrivals":
            return 200, orjson.dumps({"arrivals": arrivals, "duplicates": duplicates})
        return 200, b"ok"

    server = StampedServer(handle, "127.0.0.1", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


class Receiver:
    """The receiver process, seen from the bench."""

    def __init__(self, kind: str, *, port: int) -> None:
        self.kind = kind
        self.port = port
        self._process: asyncio.subprocess.Process | None = None
        self._client: httpx.AsyncClient | None = None
        """One client for every query: making an httpx client costs ~50 ms of CPU (its
        TLS context), and the bench asks for the arrivals every 0.25 s while the
        chain drains, on the machine it measures."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.receiver", str(self.port), self.kind,
            start_new_session=True,
        )  # fmt: skip
        client = self._client = httpx.AsyncClient(timeout=30)
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{self.url}/healthz")).is_success:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError("the bench receiver did not start")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def arrivals(self) -> tuple[dict[str, int], int]:
        if self._client is None:
            raise RuntimeError("the bench receiver is not started")
        data = orjson.loads((await self._client.get(f"{self.url}/arrivals")).content)
        return data["arrivals"], int(data["duplicates"])

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            await self._process.wait()


if __name__ == "__main__":
    harness_priority()
    asyncio.run(run(int(sys.argv[1]), READERS[sys.argv[2]]))
