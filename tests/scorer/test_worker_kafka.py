"""The scorer worker on the real broker: events in, segments and one hand-off out."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.topics import EVENTS, HANDOFFS, SEGMENTS
from services.common.kafka_settings import KafkaSettings
from services.common.publisher import KafkaPublisher
from tests.scorer.events import make_event
from tests.scorer.worker import ScorerProcess, ids, read_topic

TABLE = "leads"

pytestmark = pytest.mark.kafka


@pytest.fixture
def scorer(kafka_settings: KafkaSettings, tmp_path: Path, unique: str) -> Iterator[ScorerProcess]:
    worker = ScorerProcess(kafka_settings, f"test-{unique}-scorer", tmp_path)
    worker.start()
    yield worker
    worker.stop()


def lead_events(lead: str) -> list:  # type: ignore[type-arg]
    return [
        make_event(
            f"{lead}-u1",
            "lead.updated",
            {"attributes": {"job_title": "営業部長", "industry": "software", "company_size": 300}},
            lead=lead,
        ),
        make_event(f"{lead}-o1", "email.opened", {"email_id": "m1"}, lead=lead, hours=1),
        make_event(
            f"{lead}-b1", "email.clicked", {"url": "https://x/"}, lead=lead, hours=1, bot="scanner"
        ),
        make_event(
            f"{lead}-f1",
            "form.submitted",
            {"form_id": "demo", "form_type": "demo_request"},
            lead=lead,
            hours=2,
        ),
        make_event(f"{lead}-k1", "email.clicked", {"url": "https://x/a"}, lead=lead, hours=3),
    ]


async def publish(bootstrap: str, topic: str, events: list) -> None:  # type: ignore[type-arg]
    publisher = KafkaPublisher(bootstrap)
    await publisher.start()
    try:
        for event in events:
            await publisher.publish(topic, event)
    finally:
        await publisher.stop()


async def wait_for(predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout_s * 4)):
        if await predicate():
            return
        await asyncio.sleep(0.25)
    raise AssertionError("condition not met in time")


async def test_events_in_segments_and_exactly_one_handoff_out(
    kafka_settings: KafkaSettings, scorer: ScorerProcess
) -> None:
    bootstrap = kafka_settings.kafka_bootstrap
    leads = ["lead-a", "lead-b", "lead-c"]
    events = [e for lead in leads for e in lead_events(lead)]
    await publish(bootstrap, kafka_settings.topic(EVENTS), events)

    async def three_handoffs() -> bool:
        return len(await read_topic(bootstrap, kafka_settings.topic(HANDOFFS), idle_s=0.5)) >= 3

    await wait_for(three_handoffs)
    # redelivery: the same events again (a client retry of the whole batch)
    await publish(bootstrap, kafka_settings.topic(EVENTS), events)
    await asyncio.sleep(3)

    handoffs = await read_topic(bootstrap, kafka_settings.topic(HANDOFFS))
    assert sorted(ids(handoffs)) == ["ho-lead-a-1", "ho-lead-b-1", "ho-lead-c-1"]
    for handoff in handoffs:
        data = handoff.data  # type: ignore[attr-defined]
        assert data.reason.kind == "threshold"
        assert data.trigger_event_id == f"{handoff.subject}-f1"
        assert data.lead.job_title == "営業部長"
        assert abs(sum(i.points for i in data.breakdown) - data.score) < 1e-9
    segments = await read_topic(bootstrap, kafka_settings.topic(SEGMENTS))
    by_lead = {
        lead: [s.data.segment.value for s in segments if s.subject == lead] for lead in leads
    }  # type: ignore[attr-defined]
    assert by_lead == {lead: ["low", "high"] for lead in leads}

    response = scorer.get("/leads/lead-a")
    assert response.status_code == 200
    body = response.json()
    assert body["handoff"] == {
        "status": "handed_off",
        "sequence": 1,
        "last_handoff_id": "ho-lead-a-1",
        "last_handoff_at": "2026-01-05T11:00:00Z",
    }
    assert body["events_applied"] == 4  # the bot click and the 5 redelivered events changed nothing
    assert body["fit"] == 45
    assert any(line.startswith("title_manager: +20.00") for line in body["explanation"])
    assert [h["event_id"] for h in body["history"]] == [
        "lead-a-u1",
        "lead-a-o1",
        "lead-a-f1",
        "lead-a-k1",
    ]
    assert body["history"][2]["segment"] == "high"
    assert scorer.get("/leads/nobody").status_code == 404

    metrics = scorer.get("/metrics").text
    assert 'hotlead_scorer_handoffs_total{reason="threshold"} 3.0' in metrics
    assert "hotlead_scorer_duplicates_skipped_total 12.0" in metrics
    assert 'hotlead_scorer_events_total{outcome="bot",type="email.clicked"} 6.0' in metrics
    assert (
        'hotlead_scorer_segment_transitions_total{cause="event",previous="low",segment="high"} 3.0'
        in metrics
    )


async def test_get_lead_is_answered_by_any_worker(
    kafka_settings: KafkaSettings, tmp_path: Path, unique: str
) -> None:
    """Two workers share the partitions; each answers for every lead, routing the
    request to the worker that owns the lead's partition."""
    app_id = f"test-{unique}-routing"
    workers = [ScorerProcess(kafka_settings, app_id, tmp_path / name) for name in ("a", "b")]
    try:
        for worker in workers:
            worker.start()
        leads = [f"lead-r{n}" for n in range(12)]
        await publish(
            kafka_settings.kafka_bootstrap,
            kafka_settings.topic(EVENTS),
            [e for lead in leads for e in lead_events(lead)],
        )

        async def every_lead_known() -> bool:
            return all(
                worker.get(f"/leads/{lead}").status_code == 200
                for worker in workers
                for lead in leads
            )

        await wait_for(every_lead_known, timeout_s=60)
        for lead in leads:
            answers = [worker.get(f"/leads/{lead}").json() for worker in workers]
            assert answers[0]["lead_id"] == answers[1]["lead_id"] == lead
            assert answers[0]["handoff"] == answers[1]["handoff"]
            assert answers[0]["fit"] == answers[1]["fit"] == 45
        # the assignment (faust's router view): both workers own partitions of the table
        assignment = workers[0].get("/router/").json()
        changelog = f"{app_id}-{TABLE}-changelog"
        owned = {url: tables.get(changelog, []) for url, tables in assignment.items()}
        assert {f"http://127.0.0.1:{worker.port}" for worker in workers} == set(owned)
        assert all(owned.values()), assignment
        assert sorted(p for parts in owned.values() for p in parts) == [0, 1, 2]
    finally:
        for worker in workers:
            worker.stop()


async def test_the_sweep_emits_the_segment_change_of_a_lead_that_cooled(
    kafka_settings: KafkaSettings, tmp_path: Path, unique: str
) -> None:
    """Events of January 2026 made the lead `high`; months later (now, by the clock),
    its engagement has decayed: the periodic sweep emits the change, once."""
    worker = ScorerProcess(
        kafka_settings,
        f"test-{unique}-sweep",
        tmp_path,
        HOTLEAD_SCORER_SWEEP_INTERVAL_S="1",
    )
    worker.start()
    try:
        bootstrap = kafka_settings.kafka_bootstrap
        await publish(bootstrap, kafka_settings.topic(EVENTS), lead_events("lead-cool"))
        segments_topic = kafka_settings.topic(SEGMENTS)

        async def swept() -> bool:
            events = await read_topic(bootstrap, segments_topic, idle_s=0.5)
            return any(e.data.cause_event_id is None for e in events)  # type: ignore[attr-defined]

        await wait_for(swept, timeout_s=60)
        await asyncio.sleep(3)  # more sweeps run meanwhile: they must not repeat the change
        changes = [
            (e.data.previous, e.data.segment, e.data.cause_event_id)  # type: ignore[attr-defined]
            for e in await read_topic(bootstrap, segments_topic)
        ]
        assert changes[:2] == [(None, "low", "lead-cool-u1"), ("low", "high", "lead-cool-f1")]
        assert changes[2:] == [("high", "low", None)]  # fit 45 + decayed engagement < 50
        assert worker.get("/leads/lead-cool").json()["segment"] == "low"
        assert "hotlead_scorer_leads 1.0" in worker.get("/metrics").text
    finally:
        worker.stop()
