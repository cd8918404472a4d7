"""Fake SaaS servers for the hand-off tests, each on its own OS-assigned port."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.handoff.fakes.hubspot import FakeHubSpot
from tests.handoff.fakes.salesforce import FakeSalesforce
from tests.handoff.fakes.slack import FakeSlack


@pytest.fixture
async def fake_salesforce() -> AsyncIterator[FakeSalesforce]:
    server = FakeSalesforce()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fake_hubspot() -> AsyncIterator[FakeHubSpot]:
    server = FakeHubSpot(unique=("hotlead_lead_id",))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0)) as client:
        yield client
