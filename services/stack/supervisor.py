"""Start the pipeline's processes in order, watch them, stop them all cleanly.

Each child runs in its own session, so Ctrl-C reaches only the supervisor,
which then stops the children in reverse order: SIGTERM to the child's
process group, SIGKILL only after a grace period. When any child exits on
its own, the others are stopped too, and the supervisor exits non-zero:
a half-running pipeline is worse than a stopped one.
"""

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import httpx


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    ready_url: str | None = None
    """Answered with a 2xx once the process is ready; None: ready once started."""
    env: dict[str, str] = field(default_factory=dict)


class StartupError(Exception):
    pass


@dataclass
class Child:
    spec: ProcessSpec
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        ready_timeout_s: float = 120.0,
        grace_s: float = 20.0,
        out: TextIO = sys.stdout,
    ) -> None:
        self.specs = list(specs)
        self.ready_timeout_s = ready_timeout_s
        self.grace_s = grace_s
        self.out = out
        self.children: list[Child] = []
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once every process has started (and answered, where it has a ready_url)."""

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Start everything, then wait for a stop request or a child's exit."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_stop)
        try:
            try:
                for spec in self.specs:
                    await self._start(spec)
            except StartupError as exc:
                self._say("supervisor", f"start-up failed: {exc}")
                return 1
            self._say("supervisor", "all processes are up; Ctrl-C or 'make stop' stops them")
            self.ready.set()
            exited = [asyncio.ensure_future(c.process.wait()) for c in self.children]
            stop = asyncio.ensure_future(self._stop.wait())
            done, _ = await asyncio.wait([stop, *exited], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if stop in done:
                return 0
            for child in self.children:
                if child.process.returncode is not None:
                    self._say(
                        "supervisor", f"{child.spec.name} exited ({child.process.returncode})"
                    )
            return 1
        finally:
            await self.stop_all()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def stop_all(self) -> None:
        for child in reversed(self.children):
            await self._stop_child(child)
        self.children.clear()

    async def _start(self, spec: ProcessSpec) -> None:
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **spec.env},
            start_new_session=True,
        )
        if process.stdout is None:  # pragma: no cover - PIPE always gives a stream
            raise StartupError(f"{spec.name}: no output stream")
        child = Child(spec, process, asyncio.ensure_future(self._pump(spec.name, process.stdout)))
        self.children.append(child)
        self._say("supervisor", f"started {spec.name} (pid {process.pid})")
        if spec.ready_url:
            await self._wait_ready(child)

    async def _wait_ready(self, child: Child) -> None:
        url = child.spec.ready_url or ""
        deadline = asyncio.get_running_loop().time() + self.ready_timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if child.process.returncode is not None:
                    raise StartupError(f"{child.spec.name} exited ({child.process.returncode})")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).is_success:
                        self._say("supervisor", f"{child.spec.name} is ready")
                        return
                if asyncio.get_running_loop().time() > deadline:
                    raise StartupError(
                        f"{child.spec.name} not ready at {url} after {self.ready_timeout_s:.0f}s"
                    )
                if self._stop.is_set():
                    raise StartupError("stop requested during start-up")
                await asyncio.sleep(0.25)

    async def _stop_child(self, child: Child) -> None:
        process = child.process
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.grace_s)
            except TimeoutError:
                self._say("supervisor", f"{child.spec.name} ignored SIGTERM, killing it")
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        # The child's own children (if any) share its process group: none may outlive it.
        _signal_group(process.pid, signal.SIGKILL)
        await child.pump
        self._say("supervisor", f"stopped {child.spec.name} ({process.returncode})")

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self._say(name, line.decode(errors="replace").rstrip("\n"))

    def _say(self, name: str, text: str) -> None:
        self.out.write(f"{name:>10} | {text}\n")
        self.out.flush()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def run_supervised(specs: Sequence[ProcessSpec], *, ready_timeout_s: float = 120.0) -> int:
    """Run `specs` under a Supervisor until stopped; the exit code to return."""
    return asyncio.run(Supervisor(specs, ready_timeout_s=ready_timeout_s).run())
