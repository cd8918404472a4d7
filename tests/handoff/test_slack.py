import asyncio
import itertools
import time
from datetime import UTC, datetime

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from services.handoff.delivery import Result
from services.handoff.errors import (
    AuthenticationError,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
)
from services.handoff.notify import ChannelPacer
from services.handoff.retry import RetryAfter, RetryPolicy, decide
from services.handoff.slack import SlackWebApiNotifier, SlackWebhookNotifier
from services.handoff.slack_message import build_alert
from tests.handoff.fakes.base import Fault
from tests.handoff.fakes.slack import FakeSlack
from tests.handoff.samples import handoff_data, handoff_event
from tests.handoff.test_delivery import Parts


def web_notifier(
    server: FakeSlack, token: str = "xoxb-test-token", rate: float = 100.0
) -> SlackWebApiNotifier:
    client = AsyncWebClient(token=token, base_url=server.api_url, timeout=2, retry_handlers=[])
    return SlackWebApiNotifier(client, ChannelPacer(rate, time.monotonic), "C0DEFAULT")


MESSAGE = build_alert(handoff_data(), rep_slack_id="U0AIKO", crm_url=None)


async def test_alert_then_follow_up_in_its_thread(fake_slack: FakeSlack) -> None:
    notifier = web_notifier(fake_slack)
    posted = await notifier.post("C0APAC", MESSAGE)
    reply = await notifier.post("C0APAC", MESSAGE, thread_ts=posted.ts)
    assert posted.channel == "C0APAC"
    assert posted.ts == fake_slack.posts[0].ts
    assert fake_slack.posts[1].thread_ts == posted.ts
    assert reply.ts != posted.ts
    assert fake_slack.alert_counts() == {"ho-lead-1-1": 1}
    assert fake_slack.posts[0].blocks == MESSAGE.blocks


async def test_429_then_503_then_200_is_one_message_after_the_wait(fake_slack: FakeSlack) -> None:
    """Through the real retry policy: the second try waits Retry-After (2 s)."""
    fake_slack.script(
        "/api/chat.postMessage",
        Fault(429, retry_after=2, body={"ok": False, "error": "ratelimited"}),
        Fault(503, body="<html>503 Service Unavailable</html>"),
    )
    notifier = web_notifier(fake_slack)
    policy = RetryPolicy(base_delay_s=0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    attempt = 0
    errors: list[Exception] = []
    while True:
        attempt += 1
        try:
            await notifier.post("C0APAC", MESSAGE)
            break
        except TransientDeliveryError as exc:
            errors.append(exc)
            decision = decide(policy, attempt, exc, rand=0.5)
            assert isinstance(decision, RetryAfter)
            await asyncio.sleep(decision.delay_s)
    assert [type(e) for e in errors] == [RateLimitedError, TransientDeliveryError]
    assert len(fake_slack.posts) == 1
    first_fault = fake_slack.seen[0].at
    second_try = fake_slack.seen[1].at
    assert second_try - first_fault >= 2.0
    assert fake_slack.seen[-1].status == 200
    assert loop.time() - started >= 2.0


async def test_permanent_slack_errors(fake_slack: FakeSlack) -> None:
    with pytest.raises(AuthenticationError):
        await web_notifier(fake_slack, token="xoxb-wrong").post("C0APAC", MESSAGE)
    strict = FakeSlack(channels=("C0APAC",))
    await strict.start()
    try:
        with pytest.raises(PermanentDeliveryError, match="channel_not_found"):
            await web_notifier(strict).post("C0NOPE", MESSAGE)
    finally:
        await strict.stop()


async def test_a_timeout_is_transient(fake_slack: FakeSlack) -> None:
    fake_slack.script("/api/chat.postMessage", Fault(200, delay=3, then_handle=True))
    with pytest.raises(TransientDeliveryError):
        await web_notifier(fake_slack).post("C0APAC", MESSAGE)


async def test_bursts_wait_for_their_slot_and_are_not_dropped(fake_slack: FakeSlack) -> None:
    notifier = web_notifier(fake_slack, rate=5.0)  # 200 ms apart
    channels = ["C0APAC"] * 5 + ["C0OTHER"]
    await asyncio.gather(*(notifier.post(channel, MESSAGE) for channel in channels))
    same_channel = [p.at for p in fake_slack.posts if p.channel == "C0APAC"]
    assert len(same_channel) == 5
    gaps = [b - a for a, b in itertools.pairwise(same_channel)]
    assert min(gaps) >= 0.15
    other = next(p.at for p in fake_slack.posts if p.channel == "C0OTHER")
    assert other < same_channel[2]  # another channel does not queue behind the burst


async def test_incoming_webhook(fake_slack: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        notifier = SlackWebhookNotifier(
            fake_slack.webhook_url, ChannelPacer(100, time.monotonic), session, timeout_s=0.5
        )
        posted = await notifier.post(None, MESSAGE)
        await notifier.post(None, MESSAGE)
        assert posted.ts is None
        assert fake_slack.webhook_posts[0]["blocks"] == MESSAGE.blocks
        assert fake_slack.webhook_posts[0]["text"] == MESSAGE.text
        assert fake_slack.webhook_posts[0]["unfurl_links"] is False
        assert len(fake_slack.webhook_posts) == 2
        fake_slack.script(
            "/services",
            Fault(429, retry_after=1, body="rate_limited"),
            Fault(500, body="oops"),
            Fault(delay=2),
            Fault(404, body="no_service"),
        )
        with pytest.raises(RateLimitedError) as limited:
            await notifier.post(None, MESSAGE)
        assert limited.value.retry_after == 1.0
        with pytest.raises(TransientDeliveryError):
            await notifier.post(None, MESSAGE)
        with pytest.raises(TransientDeliveryError, match="Timeout"):
            await notifier.post(None, MESSAGE)
        with pytest.raises(PermanentDeliveryError, match="no_service"):
            await notifier.post(None, MESSAGE)
        assert len(fake_slack.webhook_posts) == 2
    # without a shared session, one of its own per post (closed after)
    notifier = SlackWebhookNotifier(fake_slack.webhook_url, ChannelPacer(100, time.monotonic))
    await notifier.post(None, MESSAGE)
    assert len(fake_slack.webhook_posts) == 3


def test_pacer_reserves_slots_in_order() -> None:
    now = [100.0]
    pacer = ChannelPacer(1.0, lambda: now[0])
    assert [pacer.reserve("c") for _ in range(3)] == [0.0, 1.0, 2.0]
    assert pacer.reserve("d") == 0.0
    now[0] = 105.0
    assert pacer.reserve("c") == 0.0
    pacer.push_back("c", 2.0)
    assert pacer.reserve("c") == 2.0


async def test_find_looks_the_alert_up_by_its_metadata(fake_slack: FakeSlack) -> None:
    notifier = web_notifier(fake_slack)
    since = datetime.now(UTC)
    assert await notifier.find("C0APAC", "ho-lead-1-1", since) is None
    posted = await notifier.post("C0APAC", MESSAGE)
    await notifier.post("C0APAC", MESSAGE, thread_ts=posted.ts)  # a reply is not the alert
    assert await notifier.find("C0APAC", "ho-lead-1-1", since) == posted
    assert await notifier.find("C0APAC", "ho-other-1", since) is None
    fake_slack.history_enabled = False
    assert await notifier.find("C0APAC", "ho-lead-1-1", since) is None  # cannot know


async def test_a_timeout_after_slack_accepted_does_not_post_twice(fake_slack: FakeSlack) -> None:
    """Slack takes the message but the answer comes after our timeout: the retry finds it."""
    fake_slack.script("/api/chat.postMessage", Fault(200, delay=1.5, slow_answer=True))
    client = AsyncWebClient(
        token=fake_slack.token, base_url=fake_slack.api_url, timeout=1, retry_handlers=[]
    )
    notifier = SlackWebApiNotifier(client, ChannelPacer(100, time.monotonic), "C0DEFAULT")
    parts = Parts(notifier=notifier)  # type: ignore[arg-type]
    deliverer = parts.deliverer()
    assert await deliverer.deliver(handoff_event("lead-1")) is Result.DELIVERED
    await asyncio.sleep(1.0)  # let the slow first request finish on the server
    assert len(fake_slack.posts) == 1
    assert deliverer.metrics.alerts_recovered._value.get() == 1  # type: ignore[attr-defined]
    progress = deliverer.progress.get("ho-lead-1-1")
    assert progress is not None
    assert progress.slack_ts == fake_slack.posts[0].ts
