import time

import httpx
import pytest

from services.handoff.crm.webhook import WebhookConfig, WebhookCrm
from services.handoff.errors import AuthenticationError, TransientDeliveryError
from tests.handoff.fakes.base import Fault
from tests.handoff.fakes.webhook import FakeWebhookReceiver
from tests.handoff.samples import handoff_data

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def test_signed_delivery_with_the_handoff_id_as_webhook_id(
    http_client: httpx.AsyncClient,
) -> None:
    server = FakeWebhookReceiver(SECRET)
    await server.start()
    try:
        hook = WebhookCrm(
            WebhookConfig(f"{server.url}/hooks/hotlead", SECRET), http_client, time.time
        )
        record = await hook.upsert_lead(handoff_data("lead-5"), owner_id="aiko")
        assert record.record_id == "ext-ho-lead-5-1"
        assert server.deliveries == {"ho-lead-5-1": 1}
        body = server.bodies[0]
        assert body["type"] == "hotlead.handoff"
        assert body["data"]["owner_id"] == "aiko"
        assert body["data"]["breakdown"][0]["rule"] == "role_manager"

        wrong = WebhookCrm(
            WebhookConfig(f"{server.url}/hooks/hotlead", "whsec_" + "A" * 32),
            http_client,
            time.time,
        )
        with pytest.raises(AuthenticationError):
            await wrong.upsert_lead(handoff_data("lead-5"), None)
        server.script("/hooks", Fault(503, retry_after=1))
        with pytest.raises(TransientDeliveryError) as caught:
            await hook.upsert_lead(handoff_data("lead-5"), None)
        assert caught.value.retry_after == 1.0
    finally:
        await server.stop()
