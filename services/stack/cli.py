"""`hotlead stack`: the whole pipeline on this machine, under one supervisor (`make run`).

Starts ingest, scorer and handoff, each once the previous one answers, then
the demo feed. Ctrl-C, SIGTERM or `make stop` (which signals the pid in
HOTLEAD_STACK_PIDFILE) stops them in reverse order.
"""

import argparse
import contextlib
import os
import sys
from pathlib import Path

from services.stack.supervisor import ProcessSpec, run_supervised

DEFAULT_PIDFILE = Path("var/run/stack.pid")


def _defaults(**values: str) -> dict[str, str]:
    """`values`, except where the environment already says otherwise: the console
    stays readable (warnings and alerts only) unless the user asks for more."""
    return {key: os.environ.get(key, value) for key, value in values.items()}


def pipeline_specs(*, demo_rate: float, with_demo: bool = True) -> list[ProcessSpec]:
    """The pipeline's processes, in start order, with their default ports."""
    hotlead = [sys.executable, "-m", "services.cli"]
    specs = [
        ProcessSpec(
            "ingest",
            [*hotlead, "ingest"],
            ready_url="http://127.0.0.1:8000/readyz",
            env=_defaults(
                HOTLEAD_BEACON_ORIGINS="http://demo.localhost", HOTLEAD_INGEST_LOG_LEVEL="WARNING"
            ),
        ),
        ProcessSpec(
            "scorer",
            [*hotlead, "scorer"],
            ready_url="http://127.0.0.1:6066/metrics",
            env=_defaults(HOTLEAD_SCORER_LOG_LEVEL="WARNING"),
        ),
        ProcessSpec(
            "handoff",
            [*hotlead, "handoff"],
            ready_url="http://127.0.0.1:8002/readyz",
            env=_defaults(HOTLEAD_HANDOFF_LOG_LEVEL="WARNING"),
        ),
    ]
    if with_demo:
        demo = [*hotlead, "demo", "--rate", str(demo_rate), "--log-level", "WARNING"]
        specs.append(ProcessSpec("demo", demo))
    return specs


def _run(args: argparse.Namespace) -> int:
    pidfile = Path(args.pidfile)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{os.getpid()}\n")
    try:
        specs = pipeline_specs(demo_rate=args.demo_rate, with_demo=not args.no_demo)
        return run_supervised(specs, ready_timeout_s=args.ready_timeout)
    finally:
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    stack = commands.add_parser(
        "stack", help="run ingest, scorer, handoff and the demo feed under one supervisor"
    )
    stack.add_argument("--demo-rate", type=float, default=2.0, help="demo steps per second")
    stack.add_argument("--no-demo", action="store_true", help="start the services only")
    stack.add_argument("--ready-timeout", type=float, default=180.0, help="seconds per service")
    stack.add_argument("--pidfile", default=str(DEFAULT_PIDFILE), help="where `make stop` finds it")
    stack.set_defaults(run=_run)
