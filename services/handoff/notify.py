"""Where alerts go: one small protocol, a console notifier (embedded default) and a pacer.

`ChannelPacer` keeps at most `rate` messages per second per channel (Slack
allows about one): a burst is queued in arrival order and waits for its
slot; nothing is dropped.
"""

import asyncio
import html
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TextIO

from services.handoff.slack_message import SlackMessage


@dataclass(frozen=True, slots=True)
class Posted:
    channel: str
    ts: str | None
    """Slack's id of the message (Web API); None where the transport gives none (webhook)."""


class Notifier(Protocol):
    name: str
    threads: bool
    """Whether replies can go into the alert's thread."""

    async def post(
        self, channel: str | None, message: SlackMessage, thread_ts: str | None = None
    ) -> Posted: ...

    async def find(self, channel: str | None, handoff_id: str, since: datetime) -> Posted | None:
        """The alert of `handoff_id` posted to `channel` since `since`, when the transport
        can look (Slack Web API); None when it is not there or cannot be known."""
        ...

    async def permalink(self, channel: str, ts: str | None) -> str | None:
        """A link to a posted message, where the transport has one."""
        ...


_SLACK_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


def _plain(mrkdwn: str) -> str:
    """Slack mrkdwn as a terminal shows it: links as `label (url)`, no escapes, no stars."""
    text = _SLACK_LINK.sub(r"\2 (\1)", mrkdwn).replace("*", "")
    return html.unescape(text)


def blocks_as_text(blocks: list[dict[str, Any]]) -> list[str]:
    """The lines a Block Kit message would show, for the console."""
    lines: list[str] = []
    for block in blocks:
        if block["type"] == "header":
            lines.append(block["text"]["text"])
        elif block["type"] == "section":
            if "fields" in block:
                fields = [_plain(f["text"]).replace("\n", ": ", 1) for f in block["fields"]]
                lines.append("   ".join(fields))
            if "text" in block:
                lines.extend(_plain(block["text"]["text"]).splitlines())
        elif block["type"] == "context":
            lines.extend(_plain(e["text"]) for e in block["elements"] if "text" in e)
    return lines


@dataclass
class ConsoleNotifier:
    """Prints alerts: what runs with nothing configured, so the pipeline works offline."""

    stream: TextIO = field(default_factory=lambda: sys.stdout)
    name: str = "console"
    threads: bool = False
    posted: int = 0

    async def post(
        self, channel: str | None, message: SlackMessage, thread_ts: str | None = None
    ) -> Posted:
        self.posted += 1
        where = channel or "console"
        lines = blocks_as_text(message.blocks) if message.blocks else [message.text]
        body = "\n".join(f"  | {line}" for line in lines)
        print(f"[hotlead alert -> {where}]\n{body}", file=self.stream, flush=True)
        return Posted(where, None)

    async def find(self, channel: str | None, handoff_id: str, since: datetime) -> Posted | None:
        return None

    async def permalink(self, channel: str, ts: str | None) -> str | None:
        return None


@dataclass
class MemoryNotifier:
    """Keeps what it was asked to post; for tests of the delivery logic."""

    name: str = "memory"
    threads: bool = True
    messages: list[tuple[str | None, SlackMessage, str | None]] = field(default_factory=list)

    async def post(
        self, channel: str | None, message: SlackMessage, thread_ts: str | None = None
    ) -> Posted:
        self.messages.append((channel, message, thread_ts))
        return Posted(channel or "memory", f"{len(self.messages)}.000100")

    async def find(self, channel: str | None, handoff_id: str, since: datetime) -> Posted | None:
        for n, (where, message, thread) in enumerate(self.messages, start=1):
            if where == channel and thread is None and message.handoff_id == handoff_id:
                return Posted(channel or "memory", f"{n}.000100")
        return None

    async def permalink(self, channel: str, ts: str | None) -> str | None:
        return f"https://slack.example/archives/{channel}/p{ts}" if ts else None


class ChannelPacer:
    """At most `rate` messages per second per channel; callers wait for their slot."""

    def __init__(
        self,
        rate_per_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}

    def reserve(self, channel: str) -> float:
        """Take the next free slot of `channel`; returns how long to wait for it."""
        now = self._clock()
        slot = max(now, self._next.get(channel, now))
        self._next[channel] = slot + self._interval
        return slot - now

    async def wait(self, channel: str) -> float:
        delay = self.reserve(channel)
        if delay > 0:
            await self._sleep(delay)
        return delay

    def push_back(self, channel: str, seconds: float) -> None:
        """Slack said Retry-After: nobody posts to this channel before then."""
        self._next[channel] = max(self._next.get(channel, 0.0), self._clock() + seconds)
