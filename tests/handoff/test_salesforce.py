import httpx
import pytest

from services.handoff.crm.base import CrmRecord
from services.handoff.crm.salesforce import SalesforceConfig, SalesforceCrm
from services.handoff.errors import (
    AuthenticationError,
    MultipleMatchError,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
)
from tests.handoff.fakes.base import Fault
from tests.handoff.fakes.salesforce import FakeSalesforce
from tests.handoff.samples import handoff_data

LEAD_PATH = "/services/data/v62.0/sobjects/Lead"


def crm(server: FakeSalesforce, client: httpx.AsyncClient, secret: str = "s3cret") -> SalesforceCrm:
    config = SalesforceConfig(server.url, "hotlead-client", secret)
    return SalesforceCrm(config, client)


async def test_create_then_update_is_one_record(
    fake_salesforce: FakeSalesforce, http_client: httpx.AsyncClient
) -> None:
    sf = crm(fake_salesforce, http_client)
    first = await sf.upsert_lead(handoff_data("lead-7", 1), owner_id="005OWNER")
    second = await sf.upsert_lead(handoff_data("lead-7", 2, job_title="CTO"), owner_id="005OWNER")
    assert first.created
    assert not second.created
    assert first.record_id == second.record_id
    assert fake_salesforce.leads_with("lead-7") == [first.record_id]
    stored = fake_salesforce.leads[first.record_id]
    assert stored["Title"] == "CTO"
    assert stored["OwnerId"] == "005OWNER"
    assert first.url == f"{fake_salesforce.url}/{first.record_id}"
    assert fake_salesforce.token_requests == 1  # the token is cached


async def test_legacy_204_update_looks_the_id_up(
    fake_salesforce: FakeSalesforce, http_client: httpx.AsyncClient
) -> None:
    sf = crm(fake_salesforce, http_client)
    first = await sf.upsert_lead(handoff_data("lead-8"), None)
    fake_salesforce.legacy_204 = True
    second = await sf.upsert_lead(handoff_data("lead-8"), None)
    assert second == CrmRecord(first.record_id, False, first.url)


async def test_task_carries_the_breakdown_and_is_not_created_twice(
    fake_salesforce: FakeSalesforce, http_client: httpx.AsyncClient
) -> None:
    sf = crm(fake_salesforce, http_client)
    handoff = handoff_data("lead-9")
    record = await sf.upsert_lead(handoff, None)
    task_id = await sf.record_breakdown(handoff, record, "005OWNER")
    again = await sf.record_breakdown(handoff, record, "005OWNER")
    assert again == task_id
    assert len(fake_salesforce.tasks) == 1
    task = fake_salesforce.tasks[task_id]
    assert task["WhoId"] == record.record_id
    assert "pricing_page" in task["Description"]
    assert "score 72 >= 70" in task["Description"]


async def test_multiple_match_is_permanent(
    fake_salesforce: FakeSalesforce, http_client: httpx.AsyncClient
) -> None:
    fake_salesforce.add_lead("lead-dup", LastName="A", Company="X")
    fake_salesforce.add_lead("lead-dup", LastName="B", Company="X")
    with pytest.raises(MultipleMatchError, match="2 Leads") as caught:
        await crm(fake_salesforce, http_client).upsert_lead(handoff_data("lead-dup"), None)
    assert not caught.value.retriable
    assert caught.value.status == 300


async def test_expired_session_gets_one_fresh_token(
    fake_salesforce: FakeSalesforce, http_client: httpx.AsyncClient
) -> None:
    sf = crm(fake_salesforce, http_client)
    await sf.upsert_lead(handoff_data("lead-1"), None)
    fake_salesforce.expire_sessions()
    record = await sf.upsert_lead(handoff_data("lead-1"), None)
    assert not record.created
    assert fake_salesforce.token_requests == 2


async def test_bad_client_secret_is_an_authentication_error(
    fake_salesforce: FakeSalesforce, http_client: httpx.AsyncClient
) -> None:
    with pytest.raises(AuthenticationError, match="client credentials"):
        await crm(fake_salesforce, http_client, "wrong").upsert_lead(handoff_data(), None)


async def test_throttling_outages_and_timeouts_are_transient(
    fake_salesforce: FakeSalesforce, http_client: httpx.AsyncClient
) -> None:
    sf = crm(fake_salesforce, http_client)
    fake_salesforce.script(
        LEAD_PATH,
        Fault(429, retry_after=3, body=[{"errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
        Fault(503, body="<html>down</html>"),
        Fault(200, delay=1.5),
    )
    with pytest.raises(RateLimitedError) as limited:
        await sf.upsert_lead(handoff_data(), None)
    assert limited.value.retry_after == 3.0
    with pytest.raises(TransientDeliveryError) as down:
        await sf.upsert_lead(handoff_data(), None)
    assert down.value.status == 503
    with pytest.raises(TransientDeliveryError, match="timed out"):
        await sf.upsert_lead(handoff_data(), None)
    record = await sf.upsert_lead(handoff_data(), None)
    assert record.created
    assert len(fake_salesforce.leads) == 1


async def test_a_missing_required_field_is_permanent(
    fake_salesforce: FakeSalesforce, http_client: httpx.AsyncClient
) -> None:
    sf = SalesforceCrm(
        SalesforceConfig(
            fake_salesforce.url, "hotlead-client", "s3cret", external_id_field="Nope__c"
        ),
        http_client,
    )
    with pytest.raises(PermanentDeliveryError) as caught:
        await sf.upsert_lead(handoff_data(), None)
    assert caught.value.status == 404
