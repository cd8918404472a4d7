"""`hotlead handoff` (run the service) and `hotlead handoff redrive` (replay dead letters)."""

import argparse
import asyncio
import logging

from services.common.logging import configure_logging
from services.handoff.kafka_io import HandoffProducer
from services.handoff.redrive import redrive
from services.handoff.service import run_handoff
from services.handoff.settings import HandoffSettings


def _run(args: argparse.Namespace) -> int:
    settings = HandoffSettings()
    configure_logging(settings.log_level, json=True)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    asyncio.run(run_handoff(settings))
    return 0


async def _redrive_async(settings: HandoffSettings) -> int:
    producer = HandoffProducer(settings.kafka_bootstrap)
    await producer.start()
    try:
        report = await redrive(settings, producer)
    finally:
        await producer.stop()
    print(
        f"read {report.read} dead letters, republished {report.republished} hand-offs "
        f"(one per hand-off id), skipped {report.skipped}"
    )
    return 0


def _redrive(args: argparse.Namespace) -> int:
    return asyncio.run(_redrive_async(HandoffSettings()))


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    handoff = commands.add_parser(
        "handoff",
        help="run the hand-off service (assignment, CRM, Slack), or redrive dead letters",
    )
    handoff.set_defaults(run=_run)
    actions = handoff.add_subparsers(dest="handoff_command", required=False, metavar="ACTION")
    actions.add_parser(
        "redrive",
        help="replay the dead-letter topic onto the hand-off topic, same idempotency keys",
    ).set_defaults(run=_redrive)
