"""`hotlead demo`: play the demo personas against a running ingest."""

import argparse
import asyncio
import contextlib

import httpx

from services.common.logging import configure_logging
from services.demo.feed import DemoFeed, FeedTarget
from services.ingest.settings import IngestSettings


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    settings = IngestSettings()
    api_key = next(iter(settings.api_key_sources()))
    target = FeedTarget(
        base_url=(args.ingest_url or settings.public_base_url).rstrip("/"),
        api_key=api_key,
        keyring=settings.keyring(),
        origin=args.origin,
    )

    async def play() -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            await DemoFeed(client, target).run(rate=args.rate, cycles=args.cycles)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(play())
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = commands.add_parser(
        "demo",
        help="play simulated leads (executive, researcher, competitor, link scanner, "
        "unsubscriber, anonymous visitors) against a running ingest",
    )
    demo.add_argument("--rate", type=float, default=2.0, help="steps per second (default 2)")
    demo.add_argument("--cycles", type=int, default=0, help="how many cycles; 0: until stopped")
    demo.add_argument("--ingest-url", help="default HOTLEAD_PUBLIC_BASE_URL")
    demo.add_argument(
        "--origin", default="http://demo.localhost",
        help="the site origin the beacon claims (must be in HOTLEAD_BEACON_ORIGINS)",
    )  # fmt: skip
    demo.add_argument("--log-level", default="INFO")
    demo.set_defaults(run=_run)
