"""The supervisor with real child processes."""

import asyncio
import io
import signal
import socket
import sys

from services.stack.supervisor import ProcessSpec, Supervisor

PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    """Running (a zombie waiting for an absent reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def sleeper(name: str, *, spawn_grandchild: bool = False, ignore_term: bool = False) -> ProcessSpec:
    code = "import os, signal, subprocess, sys, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    if spawn_grandchild:
        code += "p = subprocess.Popen(['sleep', '300']); print('grandchild', p.pid, flush=True)\n"
    code += "print('up', flush=True)\ntime.sleep(300)\n"
    return ProcessSpec(name, [PY, "-c", code])


async def run_until(supervisor: Supervisor, condition: str) -> asyncio.Task[int]:
    task = asyncio.ensure_future(supervisor.run())
    for _ in range(200):
        if condition in supervisor.out.getvalue():  # type: ignore[attr-defined]
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {condition!r}:\n{supervisor.out.getvalue()}")  # type: ignore[attr-defined]


async def test_starts_in_order_waits_for_readiness_and_stops_everything() -> None:
    port = free_port()
    web = ProcessSpec(
        "web", [PY, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ready_url=f"http://127.0.0.1:{port}/",
    )  # fmt: skip
    out = io.StringIO()
    supervisor = Supervisor([web, sleeper("worker", spawn_grandchild=True)], out=out, grace_s=5)
    task = await run_until(supervisor, "all processes are up")
    text = out.getvalue()
    assert text.index("web is ready") < text.index("started worker")
    pids = [child.process.pid for child in supervisor.children]
    await run_until_line(out, "grandchild")
    grandchild = int(
        next(line for line in out.getvalue().splitlines() if "grandchild" in line).split()[-1]
    )

    supervisor.request_stop()
    assert await task == 0
    assert not any(alive(pid) for pid in [*pids, grandchild])
    text = out.getvalue()
    assert text.index("stopped worker") < text.index("stopped web")


async def run_until_line(out: io.StringIO, needle: str) -> None:
    for _ in range(200):
        if needle in out.getvalue():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {needle!r}")


async def test_a_child_that_dies_stops_the_others_and_fails() -> None:
    out = io.StringIO()
    dying = ProcessSpec("dying", [PY, "-c", "import time; time.sleep(0.5); raise SystemExit(3)"])
    supervisor = Supervisor([sleeper("steady"), dying], out=out, grace_s=5)
    assert await asyncio.wait_for(supervisor.run(), 30) == 1
    assert "dying exited (3)" in out.getvalue()
    assert "stopped steady" in out.getvalue()


async def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    out = io.StringIO()
    supervisor = Supervisor([sleeper("stubborn", ignore_term=True)], out=out, grace_s=1)
    task = await run_until(supervisor, "stubborn | up")
    pid = supervisor.children[0].process.pid
    supervisor.request_stop()
    assert await asyncio.wait_for(task, 30) == 0
    assert "stubborn ignored SIGTERM, killing it" in out.getvalue()
    assert not alive(pid)
    assert f"stopped stubborn ({-signal.SIGKILL})" in out.getvalue()


async def test_a_process_that_never_gets_ready_fails_the_start() -> None:
    out = io.StringIO()
    never = ProcessSpec(
        "never",
        [PY, "-c", "import time; time.sleep(300)"],
        ready_url=f"http://127.0.0.1:{free_port()}/",
    )
    supervisor = Supervisor([never, sleeper("later")], out=out, ready_timeout_s=1.5, grace_s=5)
    assert await asyncio.wait_for(supervisor.run(), 30) == 1
    assert "never not ready" in out.getvalue()
    assert "started later" not in out.getvalue()
    assert "stopped never" in out.getvalue()
