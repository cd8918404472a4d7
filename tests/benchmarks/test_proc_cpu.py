"""The per-process CPU split of the pipeline bench reads real processes from /proc."""

import asyncio
import os
import socket
import subprocess
import sys
import time

from benchmarks.proc_cpu import Group, cpu_used, listening_pid, machine_busy_s, snapshot

SPIN = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass\n"


def test_a_session_counts_its_forked_children() -> None:
    # a parent in its own session that forks a child burning 0.4 s, then 0.2 s itself
    code = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {SPIN.format(s=0.4)!r}]).wait()\n"
        + SPIN.format(s=0.2)
        + "import time\ntime.sleep(30)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        group = [Group("tree", sessions=(process.pid,)), Group("nothing", pids=(2**22 + 7,))]
        before = snapshot(group)
        deadline = time.monotonic() + 15  # a busy machine may take a while to give 0.6 s
        while (used := cpu_used(before, snapshot(group)))["tree"] < 0.6:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(0.3)  # nothing more after the spins: the total stays put
        used = cpu_used(before, snapshot(group))
    finally:
        process.kill()
        process.wait()
    assert 0.5 <= used["tree"] <= 1.0  # both spins (interpreter start-up adds a little)
    assert used["nothing"] == 0.0


def test_this_process_cpu_is_seen() -> None:
    me = [Group("me", pids=(os.getpid(),))]
    before, busy = snapshot(me), machine_busy_s()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    used = cpu_used(before, snapshot(me))
    assert 0.25 <= used["me"] <= 0.6
    assert machine_busy_s() - busy >= 0.25


async def test_the_listening_process_is_found_by_its_port() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert listening_pid(port) == os.getpid()
    finally:
        server.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: no owner to find
    try:
        assert listening_pid(closed.getsockname()[1]) is None
    finally:
        closed.close()
