"""The `hotlead` command: one entry point for users and operators.

    hotlead topics create     create every topic, or check the ones that exist
    hotlead topics check      check without creating
    hotlead topics list       print the topic layout the settings ask for

Each service adds its own subcommand (ingest, scorer, handoff, ...) as it lands.
"""

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from services.common.errors import HotleadError
from services.common.kafka_settings import KafkaSettings
from services.common.logging import configure_logging
from services.common.topics import ensure_topics, topic_specs
from services.demo.cli import add_commands as add_demo_commands
from services.handoff.cli import add_commands as add_handoff_commands
from services.ingest.cli import add_commands as add_ingest_commands
from services.scorer.cli import add_commands as add_scorer_commands
from services.stack.cli import add_commands as add_stack_commands

Command = Callable[[argparse.Namespace], int]


def _topics_create(args: argparse.Namespace) -> int:
    settings = KafkaSettings()
    specs = topic_specs(settings)
    report = asyncio.run(ensure_topics(settings.kafka_bootstrap, specs, timeout_s=args.timeout))
    by_name = {spec.name: spec for spec in specs}
    for name in report.created:
        print(f"created  {name} ({by_name[name].partitions} partitions)")
    for name in report.existing:
        print(f"ok       {name} ({by_name[name].partitions} partitions)")
    return 0


def _topics_list(args: argparse.Namespace) -> int:
    for spec in topic_specs(KafkaSettings()):
        configs = " ".join(f"{key}={value}" for key, value in sorted(spec.configs.items()))
        print(
            f"{spec.name}\tpartitions={spec.partitions}\treplicas={spec.replication_factor}\t{configs}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotlead",
        description="Real-time B2B lead scoring and hand-off to sales. "
        "Settings come from HOTLEAD_* environment variables (docs/configuration.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    topics = commands.add_parser("topics", help="create or check hotlead's Kafka topics")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    create = topic_commands.add_parser(
        "create", help="create missing topics and check existing ones (idempotent)"
    )
    create.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    create.set_defaults(run=_topics_create)
    topic_commands.add_parser(
        "list", help="print the layout the settings ask for, without contacting Kafka"
    ).set_defaults(run=_topics_list)
    add_ingest_commands(commands)
    add_demo_commands(commands)
    add_handoff_commands(commands)
    add_scorer_commands(commands)
    add_stack_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("WARNING", json=False)
    # The client library logs every failed connection attempt; our error says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    run: Command = args.run
    try:
        return run(args)
    except HotleadError as exc:
        print(f"hotlead: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
