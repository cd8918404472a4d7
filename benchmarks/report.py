"""What every benchmark shares: the machine's description, a free port, and
rewriting its own section of docs/BENCHMARKS.md."""

import os
import platform
import re
import socket
import sys
import sysconfig
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"


def hardware() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {interpreter()}, {platform.system()}"


def interpreter() -> str:
    """Which CPython build runs: its version, where it lives, and whether libpython is a
    shared library (an --enable-shared build without PGO/LTO runs our Python 1.2-1.5x
    slower than a distribution's static, optimised binary: see the Makefile's PYTHON)."""
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    try:  # what is mapped, not what sysconfig says (Debian's binary is static, its config not)
        shared = "libpython" in Path("/proc/self/maps").read_text()
    except OSError:
        shared = bool(sysconfig.get_config_var("Py_ENABLE_SHARED"))
    linked = "libpython shared" if shared else "static"
    return f"Python {platform.python_version()} ({base}, {linked})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_section(begin: str, end: str, lines: list[str], doc: Path = DOC) -> None:
    """Replace the text between the `begin` and `end` markers (append it the first time)."""
    section = "\n".join([begin, *lines, end])
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    if begin in text:
        text = re.sub(
            re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S
        )
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text, encoding="utf-8")
