import httpx
import pytest

from services.handoff.crm.hubspot import HubSpotConfig, HubSpotCrm, objects_path
from services.handoff.errors import (
    AuthenticationError,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
)
from tests.handoff.fakes.base import Fault
from tests.handoff.fakes.hubspot import FakeHubSpot
from tests.handoff.samples import handoff_data


def crm(server: FakeHubSpot, client: httpx.AsyncClient, **kw: str) -> HubSpotCrm:
    config = HubSpotConfig(**{"token": "pat-na1-test", "base_url": server.url, **kw})
    return HubSpotCrm(config, client)


async def test_upsert_by_email_then_note(
    fake_hubspot: FakeHubSpot, http_client: httpx.AsyncClient
) -> None:
    hs = crm(fake_hubspot, http_client, portal_id="4242")
    first = await hs.upsert_lead(handoff_data("lead-1"), owner_id="77")
    second = await hs.upsert_lead(handoff_data("lead-1", 2, job_title="CEO"), owner_id="77")
    assert first.created
    assert not second.created
    assert first.record_id == second.record_id
    assert len(fake_hubspot.contacts) == 1
    contact = fake_hubspot.contacts[first.record_id]
    assert contact["jobtitle"] == "CEO"
    assert contact["hubspot_owner_id"] == "77"
    assert first.url == f"https://app.hubspot.com/contacts/4242/record/0-1/{first.record_id}"
    note_id = await hs.record_breakdown(handoff_data("lead-1"), first, "77")
    note = fake_hubspot.notes[note_id]
    assert note["associations"][0]["to"]["id"] == first.record_id
    assert "pricing_page" in note["properties"]["hs_note_body"]


async def test_upsert_by_another_unique_property(
    fake_hubspot: FakeHubSpot, http_client: httpx.AsyncClient
) -> None:
    hs = crm(fake_hubspot, http_client, id_property="hotlead_lead_id")
    first = await hs.upsert_lead(handoff_data("lead-2", email="a@x.example"), None)
    second = await hs.upsert_lead(handoff_data("lead-2", email="new@x.example"), None)
    assert first.record_id == second.record_id
    assert fake_hubspot.contacts[first.record_id]["email"] == "new@x.example"


def test_version_paths() -> None:
    assert objects_path("v3") == "/crm/v3/objects"
    assert objects_path("2026-03") == "/crm/objects/2026-03"


async def test_api_version_path_is_configurable(http_client: httpx.AsyncClient) -> None:
    server = FakeHubSpot(api_version="2026-03")
    await server.start()
    try:
        record = await crm(server, http_client, api_version="2026-03").upsert_lead(
            handoff_data(), None
        )
        assert record.created
        with pytest.raises(PermanentDeliveryError) as caught:
            await crm(server, http_client).upsert_lead(handoff_data(), None)
        assert caught.value.status == 404
    finally:
        await server.stop()


async def test_failures_map_to_the_error_tree(
    fake_hubspot: FakeHubSpot, http_client: httpx.AsyncClient
) -> None:
    with pytest.raises(AuthenticationError):
        await crm(fake_hubspot, http_client, token="wrong").upsert_lead(handoff_data(), None)
    fake_hubspot.script(
        "/crm/v3/objects/contacts",
        Fault(429, retry_after=10, body={"status": "error", "errorType": "RATE_LIMIT"}),
        Fault(502),
        Fault(200, delay=1.5),
    )
    hs = crm(fake_hubspot, http_client)
    with pytest.raises(RateLimitedError) as limited:
        await hs.upsert_lead(handoff_data(), None)
    assert limited.value.retry_after == 10.0
    with pytest.raises(TransientDeliveryError):
        await hs.upsert_lead(handoff_data(), None)
    with pytest.raises(TransientDeliveryError, match="timed out"):
        await hs.upsert_lead(handoff_data(), None)
    assert (await hs.upsert_lead(handoff_data(), None)).created
    with pytest.raises(PermanentDeliveryError, match="no email"):
        await hs.upsert_lead(handoff_data("lead-x", email=None), None)
