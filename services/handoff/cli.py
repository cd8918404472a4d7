"""`hotlead handoff` (run the service) and `hotlead handoff redrive` (replay dead letters)."""

import argparse
import asyncio
import logging
from pathlib import Path

from services.common.logging import configure_logging
from services.common.socket_reads import cap_socket_reads
from services.handoff.assignment_config import load_assignment_config
from services.handoff.kafka_io import HandoffProducer
from services.handoff.redrive import redrive
from services.handoff.service import run_handoff
from services.handoff.settings import HandoffSettings


def _run(args: argparse.Namespace) -> int:
    settings = HandoffSettings()
    configure_logging(settings.handoff_log_level, json=True)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    cap_socket_reads()
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


def _check_assignment(args: argparse.Namespace) -> int:
    config = load_assignment_config(Path(args.file))
    for team in config.teams:
        print(f"team {team.id} (channel {team.channel or 'default'})")
        for rep in team.reps:
            notes = [] if rep.available else ["unavailable"]
            if rep.max_open is not None:
                notes.append(f"max {rep.max_open} open")
            mention = f" <@{rep.slack_id}>" if rep.slack_id else ""
            print(f"  rep {rep.id}{mention}" + (f" ({', '.join(notes)})" if notes else ""))
    for n, territory in enumerate(config.territories, start=1):
        fields = {
            "country": territory.country,
            "region": territory.region,
            "industry": territory.industry,
        }
        parts = [f"{k} in {v}" for k, v in fields.items() if v is not None]
        if territory.company_size is not None:
            size = territory.company_size
            parts.append(
                f"company_size {size.min or 0}..{size.max if size.max is not None else ''}"
            )
        print(
            f"{n}. {territory.name}: {' and '.join(parts) or 'any lead'} -> team {territory.team}"
        )
    print(f"otherwise -> team {config.default_team or config.teams[0].id}")
    return 0


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
    check = actions.add_parser(
        "check-assignment", help="validate an assignment file and print what it means"
    )
    check.add_argument("file", help="the YAML file (HOTLEAD_ASSIGNMENT_FILE)")
    check.set_defaults(run=_check_assignment)
