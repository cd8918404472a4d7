"""Where the CPU goes during a measured window: per process tree, from /proc.

A process's CPU is utime + stime of /proc/<pid>/stat (clock ticks), plus cutime +
cstime (its children that exited and were waited for). A supervised service runs in
its own session (the supervisor starts each child with start_new_session), so "the
ingest" is every process of the ingest's session: workers it forks are counted too.
The broker is found by the socket it listens on (the bootstrap port), not by name.

    before = snapshot(groups); ...load...; used = cpu_used(before, snapshot(groups))
"""

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Group:
    """A named set of processes: every member of the sessions `sessions` and the pids `pids`."""

    name: str
    sessions: tuple[int, ...] = ()
    pids: tuple[int, ...] = ()


def _stat(pid: int) -> tuple[int, float] | None:
    """(session id, CPU seconds incl. waited-for children) of a process, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: parse after the last ')'
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); session is field 6, utime..cstime fields 14..17
    session = int(fields[3])
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return session, ticks * TICK_S


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def snapshot(groups: Iterable[Group]) -> dict[str, float]:
    """CPU seconds so far of each group (sum over its live members)."""
    groups = list(groups)
    by_session = {s: g.name for g in groups for s in g.sessions}
    by_pid = {p: g.name for g in groups for p in g.pids}
    totals = {g.name: 0.0 for g in groups}
    for pid in _pids():
        found = _stat(pid)
        if found is None:
            continue
        session, cpu = found
        name = by_pid.get(pid) or by_session.get(session)
        if name is not None:
            totals[name] += cpu
    return totals


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy so far (all cores, /proc/stat)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy * TICK_S


def cpu_used(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: max(after.get(name, 0.0) - cpu, 0.0) for name, cpu in before.items()}


def listening_pid(port: int) -> int | None:
    """The process that holds a socket listening on TCP `port` (IPv4 or IPv6), if ours to see."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    cols = line.split()
                    local, state, inode = cols[1], cols[3], cols[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{inode}]")
        except OSError:
            continue
    if not inodes:
        return None
    for pid in _pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return pid
            except OSError:
                continue
    return None


def per_thousand(used: Mapping[str, float], events: int) -> dict[str, float]:
    """CPU seconds per 1,000 events."""
    return {name: cpu * 1000 / events if events else 0.0 for name, cpu in used.items()}
