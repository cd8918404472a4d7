"""Slack: the Web API through slack-sdk (chat.postMessage, threads), or an incoming webhook.

Slack errors become the DeliveryError tree: HTTP 429 (with Retry-After) and
5xx and `ratelimited` / `internal_error` are transient, bad tokens and
unknown channels are permanent. The SDK's own retries are switched off so
that the one retry policy (and its dead-letter step) decides.

Slack has no idempotency key. Every Web API alert carries message metadata
(`hotlead_handoff` with the hand-off id); before posting again after an
attempt whose outcome is unknown (a crash, a timeout after Slack accepted),
`find` looks the alert up in conversations.history and reuses it. Where that
lookup is impossible (incoming webhooks, a channel given by name, a token
without channels:history) a crash between Slack's answer and the progress
record can still double-post; docs/handoff.md measures that window.
"""

from datetime import datetime
from typing import Any

import aiohttp
import orjson
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from services.common.logging import get_logger
from services.handoff.errors import (
    AuthenticationError,
    DeliveryError,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
    classify_status,
)
from services.handoff.notify import ChannelPacer, Posted
from services.handoff.slack_message import SlackMessage

TARGET = "slack"
METADATA_TYPE = "hotlead_handoff"
LOOKBACK_S = 60.0
"""Look this far before the first attempt (clock skew between us and Slack)."""
MAX_PAGES = 5
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
log = get_logger(__name__)
TRANSIENT_CODES = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
AUTH_CODES = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


def slack_error(exc: SlackApiError) -> DeliveryError:
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    headers: Any = getattr(response, "headers", {}) or {}
    retry_after = headers.get("Retry-After") or headers.get("retry-after")
    data = getattr(response, "data", None)
    code = str(data.get("error", "")) if isinstance(data, dict) else ""
    if status != 200:
        return classify_status(TARGET, status, code or "unexpected answer", retry_after)
    if code == "ratelimited":
        return RateLimitedError(TARGET, code, retry_after=None)
    if code in TRANSIENT_CODES:
        return TransientDeliveryError(TARGET, code)
    if code in AUTH_CODES:
        return AuthenticationError(TARGET, f"{code}: check HOTLEAD_SLACK_BOT_TOKEN")
    return PermanentDeliveryError(TARGET, code or "not ok")


class SlackWebApiNotifier:
    """chat.postMessage with the bot token; replies go into the alert's thread."""

    name = "slack"
    threads = True

    def __init__(self, client: AsyncWebClient, pacer: ChannelPacer, default_channel: str) -> None:
        self._client = client
        self._pacer = pacer
        self._default_channel = default_channel

    async def post(
        self, channel: str | None, message: SlackMessage, thread_ts: str | None = None
    ) -> Posted:
        where = channel or self._default_channel
        await self._pacer.wait(where)
        try:
            response = await self._client.chat_postMessage(
                channel=where,
                text=message.text,
                blocks=message.blocks,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": METADATA_TYPE,
                    "event_payload": {"handoff_id": message.handoff_id},
                },
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            if error.retry_after:
                self._pacer.push_back(where, error.retry_after)
            raise error from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientDeliveryError(TARGET, f"{type(exc).__name__}: {exc}") from exc
        return Posted(str(response["channel"]), str(response["ts"]))

    async def permalink(self, channel: str, ts: str | None) -> str | None:
        """chat.getPermalink; None when Slack will not say (the link is a nicety)."""
        if ts is None:
            return None
        try:
            response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except (SlackApiError, TimeoutError, aiohttp.ClientError):
            return None
        link = response.get("permalink")
        return str(link) if link else None

    async def find(self, channel: str | None, handoff_id: str, since: datetime) -> Posted | None:
        where = channel or self._default_channel
        oldest = f"{since.timestamp() - LOOKBACK_S:.6f}"
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            try:
                page = await self._client.conversations_history(
                    channel=where,
                    oldest=oldest,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            except SlackApiError as exc:
                error = slack_error(exc)
                if error.retriable:
                    raise error from exc
                log.warning("slack_lookup_unavailable", channel=where, error=str(error)[:200])
                return None  # cannot know: post (the documented window)
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise TransientDeliveryError(TARGET, f"{type(exc).__name__}: {exc}") from exc
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (
                    metadata.get("event_type") == METADATA_TYPE
                    and payload.get("handoff_id") == handoff_id
                    and message.get("thread_ts") in (None, message.get("ts"))
                ):
                    return Posted(where, str(message["ts"]))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or cursor is None:
                break
        return None


class SlackWebhookNotifier:
    """An incoming webhook: one fixed channel, no thread replies (follow-ups are new posts).

    A webhook is one JSON POST answered by `ok` (or an error text with a status), so it
    is posted with aiohttp on the service's keep-alive session: slack-sdk's webhook
    client adds no behaviour here (its retries are off) but costs about as much CPU
    per post as the HTTP request itself (a stdlib JSON encode, a None-pruning copy of
    the blocks, header dicts, a response object)."""

    name = "slack-webhook"
    threads = False

    def __init__(
        self,
        url: str,
        pacer: ChannelPacer,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._url = url
        self._pacer = pacer
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def post(
        self, channel: str | None, message: SlackMessage, thread_ts: str | None = None
    ) -> Posted:
        await self._pacer.wait("webhook")
        body = orjson.dumps(
            {
                "text": message.text,
                "blocks": message.blocks,
                "unfurl_links": False,
                "unfurl_media": False,
            }
        )
        try:
            if self._session is not None and not self._session.closed:
                status, retry_after, answer = await self._send(self._session, body)
            else:  # no shared session: one for this post (what slack-sdk does)
                async with aiohttp.ClientSession(timeout=self._timeout) as session:
                    status, retry_after, answer = await self._send(session, body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientDeliveryError(TARGET, f"{type(exc).__name__}: {exc}") from exc
        if status != 200:
            error = classify_status(TARGET, status, answer[:200], retry_after)
            if error.retry_after:
                self._pacer.push_back("webhook", error.retry_after)
            raise error
        return Posted("webhook", None)

    async def _send(
        self, session: aiohttp.ClientSession, body: bytes
    ) -> tuple[int, str | None, str]:
        async with session.post(
            self._url, data=body, headers=JSON_HEADERS, timeout=self._timeout
        ) as response:
            answer = (await response.read()).decode("utf-8", "replace")
            return response.status, response.headers.get("Retry-After"), answer

    async def find(self, channel: str | None, handoff_id: str, since: datetime) -> Posted | None:
        return None  # an incoming webhook cannot read the channel

    async def permalink(self, channel: str, ts: str | None) -> str | None:
        return None
