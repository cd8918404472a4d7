"""End to end: HTTP into ingest, scores in the scorer, alerts out of handoff,
all three as real processes on the real broker, Slack and Salesforce faked."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from schemas.data import AssetDownloadedData
from schemas.events import AssetDownloaded, EmailClicked, HandoffRequested, SegmentChanged
from schemas.topics import EVENTS, HANDOFFS, SEGMENTS
from services.common.publisher import KafkaPublisher
from services.ingest.settings import IngestSettings
from services.ingest.tokens import mint_click_url
from tests.e2e.conftest import Pipeline, wait_for
from tests.handoff.harness import read_events

pytestmark = pytest.mark.kafka

EXECUTIVE = {
    "first_name": "Haruka", "last_name": "Sato", "company": "Sato Manufacturing",
    "job_title": "取締役 営業本部長", "industry": "manufacturing", "company_size": 1200,
}  # fmt: skip
"""Fit 60 under the default rules: executive title 30, target industry 15, enterprise 15."""
MANAGER = {"job_title": "営業部長", "industry": "software", "company_size": 300}
"""Fit 45: manager 20, target industry 15, mid-market 10."""


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def download(event_id: str, lead: str, at: datetime, asset: str = "wp-1") -> dict[str, object]:
    return {
        "id": event_id, "type": "asset.downloaded", "lead_id": lead, "time": iso(at),
        "data": {"asset_id": asset, "asset_type": "whitepaper"},
    }  # fmt: skip


def page_view(event_id: str, lead: str, at: datetime, path: str) -> dict[str, object]:
    return {
        "id": event_id, "type": "page.viewed", "lead_id": lead, "time": iso(at),
        "data": {"url": f"https://www.example.com{path}"},
    }  # fmt: skip


async def handoffs_of(pipeline: Pipeline, lead: str) -> list[HandoffRequested]:
    events = await read_events(pipeline.kafka.kafka_bootstrap, pipeline.kafka.topic(HANDOFFS))
    return [e for e in events if isinstance(e, HandoffRequested) and e.subject == lead]


async def test_the_pipeline(pipeline: Pipeline, unique: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    earlier = now - timedelta(days=10)

    # 1. A lead crossing 70 gets exactly one alert, with the right breakdown.
    # (ten days ago, so that the cooldown has passed when it qualifies again in step 5)
    hot = f"e2e-{unique}-hot"
    await pipeline.post_events(
        {"id": f"{hot}-u1", "type": "lead.updated", "lead_id": hot, "time": iso(earlier),
         "data": {"attributes": EXECUTIVE}},
        download(f"{hot}-d1", hot, earlier),
    )  # fmt: skip
    await wait_for(lambda: pipeline.alerts_for(hot), what="the alert for the hot lead")
    [handoff] = await handoffs_of(pipeline, hot)
    data = handoff.data
    assert data.reason.kind == "threshold"
    assert data.score >= 70
    assert math.isclose(sum(item.points for item in data.breakdown), data.score, abs_tol=1e-6)
    rules = {item.rule for item in data.breakdown}
    assert {"title_executive", "industry_target", "size_enterprise", "download"} <= rules
    assert f"{hot}-d1" in next(i for i in data.breakdown if i.rule == "download").events
    assert pipeline.alerts_for(hot) == [data.handoff_id]
    assert len(pipeline.salesforce.leads_with(hot)) == 1

    # 2. The pricing page hands off a lead of 50 or more below the threshold.
    pricing = f"e2e-{unique}-pricing"
    await pipeline.put_lead(pricing, **MANAGER)
    await pipeline.post_events(download(f"{pricing}-d1", pricing, now - timedelta(hours=1)))
    await pipeline.post_events(page_view(f"{pricing}-p1", pricing, now, "/pricing"))
    await wait_for(lambda: pipeline.alerts_for(pricing), what="the pricing-page alert")
    [priced] = await handoffs_of(pipeline, pricing)
    assert priced.data.reason.kind == "trigger"
    assert priced.data.reason.name == "pricing_page"
    assert 50 <= priced.data.score < 70

    # 3. Duplicates and replayed batches never count twice.
    applied_before = (await pipeline.lead(pricing))["events_applied"]
    replay = await pipeline.post_events(
        download(f"{pricing}-d1", pricing, now - timedelta(hours=1)),
        page_view(f"{pricing}-p1", pricing, now, "/pricing"),
    )
    assert replay["accepted"] == 0
    assert replay["duplicates"] == 2
    # A copy that reaches Kafka past ingest's memory (another ingest replica, a producer
    # retry): the scorer skips it by its event id.
    publisher = KafkaPublisher(pipeline.kafka.kafka_bootstrap)
    await publisher.start()
    try:
        copy = AssetDownloaded(
            id=f"{hot}-d1", source="/v1/events/dev", subject=hot, time=earlier,
            data=AssetDownloadedData(asset_id="wp-1", asset_type="whitepaper"),
        )  # fmt: skip
        await publisher.publish(pipeline.kafka.topic(EVENTS), copy)
    finally:
        await publisher.stop()

    # 4. A lead with only bot activity never alerts: a link scanner clicks everything.
    scanned = f"e2e-{unique}-scanned"
    await pipeline.put_lead(scanned, **EXECUTIVE)
    keyring = IngestSettings().keyring()
    for n in range(6):
        url = mint_click_url(
            pipeline.ingest_url, keyring, scanned, f"https://www.example.com/page-{n}",
            email_id="nl-1",
        )  # fmt: skip
        answer = await pipeline.client.get(
            url, headers={"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel (EE))"}
        )
        assert answer.status_code == 302

    async def clicks_flagged() -> bool:
        events = await read_events(pipeline.kafka.kafka_bootstrap, pipeline.kafka.topic(EVENTS), 1)
        clicks = [e for e in events if e.subject == scanned and isinstance(e, EmailClicked)]
        return len(clicks) == 6 and all(e.bot for e in clicks)

    await wait_for(clicks_flagged, what="the scanner's six clicks, flagged, in the event log")
    # a person's event after them, on the same partition: once it is applied, so are they
    await pipeline.post_events(
        {"id": f"{scanned}-sent", "type": "email.sent", "lead_id": scanned, "data": {}}
    )
    await wait_for(lambda: _events_applied(pipeline, scanned, 2), what="the scanned lead's events")
    assert (await pipeline.lead(scanned))["score"] == 60
    assert pipeline.alerts_for(scanned) == []

    # 5. CRM feedback "rejected" recycles the lead; a later qualification alerts again.
    await pipeline.feedback(
        hot, "rejected", crm="salesforce", id=f"{hot}-fb1", time=iso(earlier + timedelta(hours=1))
    )
    await pipeline.post_events(
        download(f"{hot}-d2", hot, now, asset="wp-2"),
        download(f"{hot}-d3", hot, now, asset="wp-3"),
    )
    await wait_for(lambda: len(pipeline.alerts_for(hot)) == 2, what="the second alert")
    assert pipeline.alerts_for(hot) == [f"ho-{hot}-1", f"ho-{hot}-2"]
    # u1, d1, the feedback, d2, d3: the copy of d1 (before d2 on the same partition) was skipped
    assert (await pipeline.lead(hot))["events_applied"] == 5

    # nothing counted twice: the replays applied nothing and alerted no one again
    # (the hot lead's events after the replay were applied, so the replay was read too)
    assert (await pipeline.lead(pricing))["events_applied"] == applied_before
    assert pipeline.alerts_for(pricing) == [priced.data.handoff_id]
    assert len(await handoffs_of(pipeline, hot)) == 2

    # 6. Segment changes appear on hotlead.segments.v1.
    segments = await read_events(pipeline.kafka.kafka_bootstrap, pipeline.kafka.topic(SEGMENTS))
    moves = [
        (e.data.previous, e.data.segment)
        for e in segments
        if isinstance(e, SegmentChanged) and e.subject == hot
    ]
    assert ("mid", "high") in [(str(p) if p else None, str(s)) for p, s in moves]


async def _events_applied(pipeline: Pipeline, lead: str, count: int) -> bool:
    answer = await pipeline.client.get(f"{pipeline.scorer_url}/leads/{lead}")
    return answer.status_code == 200 and answer.json()["events_applied"] >= count
