"""POST /v1/events, PUT /v1/leads/{id}, POST /v1/crm/feedback on an in-memory publisher."""

import httpx
import orjson
import pytest

from schemas.topics import EVENTS, REJECTED
from services.common.publisher import MemoryPublisher
from services.ingest.app import create_app
from tests.ingest.conftest import AUTH, OTHER_API_KEY, client_for, make_settings

GOOD = {"type": "page.viewed", "lead_id": "lead-1", "data": {"url": "https://a.example/pricing"}}


async def test_a_batch_is_answered_per_event_and_rejects_kept_as_evidence(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    events = [
        {**GOOD, "id": "e-1", "time": "2026-01-16T09:30:00+09:00"},
        {"type": "form.submitted", "lead_id": "lead-2", "data": {}},
        {"type": "segment.changed", "lead_id": "lead-3", "data": {}},
        "not an object",
        {**GOOD, "id": "e-1"},
    ]
    response = await client.post("/v1/events", headers=AUTH, json={"events": events})
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"], body["duplicates"]) == (1, 3, 1)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted", "rejected", "rejected", "rejected", "duplicate"]
    assert body["results"][1]["errors"] == ["data.form_id: Field required"]
    written = memory.on(f"unit.{EVENTS}")
    assert [e.id for e in written] == ["e-1"]
    assert written[0].time.isoformat() == "2026-01-16T00:30:00+00:00"
    assert written[0].source == "/v1/events/crm"
    rejected = memory.on(f"unit.{REJECTED}")
    assert len(rejected) == 3
    first = rejected[0].model_dump()
    assert rejected[0].subject == "lead-2"
    assert first["data"]["route"] == "/v1/events"
    assert orjson.loads(first["data"]["payload"]) == events[1]


async def test_a_retried_batch_creates_no_new_events(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    batch = {"events": [GOOD, {**GOOD, "lead_id": "lead-2"}, {**GOOD, "id": "mine"}]}
    first = (await client.post("/v1/events", headers=AUTH, json=batch)).json()
    again = (await client.post("/v1/events", headers=AUTH, json=batch)).json()
    assert first["accepted"] == 3
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert [r["id"] for r in first["results"]] == [r["id"] for r in again["results"]]
    assert len(memory.on(f"unit.{EVENTS}")) == 3


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key-0000000000"}, {"Authorization": "Basic abc"}],
)
async def test_api_routes_need_a_known_key(
    client: httpx.AsyncClient, memory: MemoryPublisher, headers: dict[str, str]
) -> None:
    for method, path, body in (
        ("POST", "/v1/events", {"events": [GOOD]}),
        ("PUT", "/v1/leads/lead-1", {"role": "manager"}),
        ("POST", "/v1/crm/feedback", {"lead_id": "lead-1", "status": "won"}),
    ):
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert memory.published == []


async def test_each_key_names_its_source(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    headers = {"Authorization": f"Bearer {OTHER_API_KEY}"}
    await client.post("/v1/events", headers=headers, json={"events": [GOOD]})
    assert memory.on(f"unit.{EVENTS}")[0].source == "/v1/events/shop"


async def test_batch_limits_on_count_and_bytes(memory: MemoryPublisher) -> None:
    app = create_app(make_settings(max_batch_events=3, max_body_bytes=2048), memory)
    async with client_for(app) as client:
        four = {"events": [GOOD] * 4}
        assert (await client.post("/v1/events", headers=AUTH, json=four)).status_code == 413
        big = {"events": [{**GOOD, "data": {"url": "https://a.example/" + "x" * 3000}}]}
        assert (await client.post("/v1/events", headers=AUTH, json=big)).status_code == 413
    assert memory.published == []


async def test_a_body_that_is_not_a_batch_is_400_and_kept(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    response = await client.post("/v1/events", headers=AUTH, content=b"{not json")
    assert response.status_code == 400
    [evidence] = memory.on(f"unit.{REJECTED}")
    assert evidence.model_dump()["data"]["payload"] == "{not json"


async def test_put_lead_writes_lead_updated(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    attributes = {"job_title": "営業部長", "company_size": 250, "country": "JP", "email": "a@b.jp"}
    response = await client.put("/v1/leads/lead-9", headers=AUTH, json=attributes)
    assert response.status_code == 200
    [event] = memory.on(f"unit.{EVENTS}")
    assert event.type.short == "lead.updated"
    assert event.subject == "lead-9"
    assert event.model_dump(exclude_none=True)["data"] == {"attributes": attributes}


async def test_put_lead_is_idempotent_with_an_idempotency_key(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    headers = {**AUTH, "Idempotency-Key": "req-1"}
    first = await client.put("/v1/leads/lead-9", headers=headers, json={"role": "manager"})
    second = await client.put("/v1/leads/lead-9", headers=headers, json={"role": "manager"})
    assert first.json()["status"] == "accepted"
    assert second.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert len(memory.on(f"unit.{EVENTS}")) == 1


async def test_invalid_lead_attributes_are_422_and_kept(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    response = await client.put("/v1/leads/lead-9", headers=AUTH, json={"country": "Japan"})
    assert response.status_code == 422
    assert response.json()["errors"][0].startswith("country:")
    [evidence] = memory.on(f"unit.{REJECTED}")
    assert evidence.subject == "lead-9"
    assert memory.on(f"unit.{EVENTS}") == []


async def test_crm_feedback_writes_crm_status_changed(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    body = {"lead_id": "lead-9", "status": "rejected", "crm": "salesforce", "reason": "no budget"}
    response = await client.post("/v1/crm/feedback", headers=AUTH, json=body)
    assert response.status_code == 200
    [event] = memory.on(f"unit.{EVENTS}")
    assert event.type.short == "crm.status_changed"
    assert event.model_dump(exclude_none=True)["data"] == {
        "status": "rejected", "crm": "salesforce", "reason": "no budget",
    }  # fmt: skip
    bad = await client.post("/v1/crm/feedback", headers=AUTH, json={"lead_id": "x", "status": "?"})
    assert bad.status_code == 422


async def test_api_sources_are_rate_limited(memory: MemoryPublisher) -> None:
    app = create_app(make_settings(source_rate_per_s=0.01, source_burst=2), memory)
    async with client_for(app) as client:
        codes = [
            (await client.post("/v1/events", headers=AUTH, json={"events": [GOOD]})).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        limited = await client.post("/v1/events", headers=AUTH, json={"events": [GOOD]})
        assert int(limited.headers["retry-after"]) >= 1
