"""A fake Slack: Web API chat.postMessage / chat.getPermalink and an incoming webhook.

Like Slack: the Web API answers HTTP 200 with {"ok": false, "error": ...}
for bad tokens and unknown channels, HTTP 429 with Retry-After when rate
limited; the webhook answers `ok` as text, or an error text with a status.
"""

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.handoff.fakes.base import FakeServer

WEBHOOK_PATH = "/services/T000TEST/B000TEST/abcdefXYZ"


@dataclass(frozen=True)
class SlackPost:
    channel: str
    ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None
    handoff_id: str | None
    at: float


class FakeSlack(FakeServer):
    def __init__(self, token: str = "xoxb-test-token", channels: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.token = token
        self.channels = set(channels)
        """Known channel ids; empty: every channel exists."""
        self.posts: list[SlackPost] = []
        self.webhook_posts: list[dict[str, Any]] = []
        self._ts = itertools.count(1)
        self.app.router.add_post("/api/chat.postMessage", self._post_message)
        self.app.router.add_get("/api/chat.getPermalink", self._permalink)
        self.app.router.add_get("/api/conversations.history", self._history)
        self.hold_answers: range = range(0)
        """1-based numbers of posts whose answer is held `hold_s` after they took effect
        (Slack accepted them; the client does not know yet)."""
        self.hold_s = 0.0
        self.history_enabled = True
        """False: answers `missing_scope` like a token without channels:history."""
        self.app.router.add_post(WEBHOOK_PATH, self._webhook)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    def alerts(self) -> list[SlackPost]:
        """Top-level messages (not thread replies)."""
        return [post for post in self.posts if post.thread_ts is None]

    def alert_counts(self) -> Counter[str]:
        return Counter(post.handoff_id or "?" for post in self.alerts())

    async def _args(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            body: dict[str, Any] = await request.json()
            return body
        return dict(await request.post())

    async def _post_message(self, request: web.Request) -> web.Response:
        args = await self._args(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        channel = str(args.get("channel", ""))
        if not channel or (self.channels and channel not in self.channels):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if not args.get("text") and not args.get("blocks"):
            return web.json_response({"ok": False, "error": "no_text"})
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        metadata = args.get("metadata") or {}
        handoff_id = (metadata.get("event_payload") or {}).get("handoff_id")
        loop_time = asyncio.get_running_loop().time()
        self.posts.append(
            SlackPost(
                channel,
                ts,
                str(args.get("text", "")),
                list(args.get("blocks") or []),
                args.get("thread_ts"),
                handoff_id,
                loop_time,
            )
        )
        if len(self.posts) in self.hold_answers:
            await asyncio.sleep(self.hold_s)
        return web.json_response(
            {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text")}}
        )

    async def _history(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if not self.history_enabled:
            return web.json_response(
                {"ok": False, "error": "missing_scope", "needed": "channels:history"}
            )
        channel = request.query.get("channel", "")
        if channel.startswith("#"):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        oldest = float(request.query.get("oldest", "0"))
        with_metadata = request.query.get("include_all_metadata") in ("1", "true", "True")
        limit = int(request.query.get("limit", "100"))
        start = int(request.query.get("cursor") or 0)
        found = [p for p in reversed(self.posts) if p.channel == channel and float(p.ts) >= oldest]
        page = found[start : start + limit]
        messages = []
        for post in page:
            message: dict[str, Any] = {"type": "message", "ts": post.ts, "text": post.text}
            if post.thread_ts:
                message["thread_ts"] = post.thread_ts
            if with_metadata and post.handoff_id:
                message["metadata"] = {
                    "event_type": "hotlead_handoff",
                    "event_payload": {"handoff_id": post.handoff_id},
                }
            messages.append(message)
        more = start + limit < len(found)
        return web.json_response(
            {
                "ok": True,
                "messages": messages,
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            }
        )

    async def _permalink(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        channel, ts = request.query.get("channel", ""), request.query.get("message_ts", "")
        if not any(p.channel == channel and p.ts == ts for p in self.posts):
            return web.json_response({"ok": False, "error": "message_not_found"})
        return web.json_response(
            {
                "ok": True,
                "channel": channel,
                "permalink": f"https://slack.example/archives/{channel}/p{ts.replace('.', '')}",
            }
        )

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("text") and not body.get("blocks"):
            return web.Response(status=400, text="no_text")
        self.webhook_posts.append(body)
        return web.Response(status=200, text="ok")
