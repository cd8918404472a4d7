"""Settings -> parts: which CRM and which notifier a configuration gets."""

import httpx
import pytest
from pydantic import SecretStr

from services.common.errors import ConfigurationError
from services.handoff.crm.hubspot import HubSpotCrm
from services.handoff.crm.salesforce import SalesforceCrm
from services.handoff.crm.webhook import WebhookCrm
from services.handoff.notify import ConsoleNotifier
from services.handoff.service import build_crm, build_notifier
from services.handoff.settings import HandoffSettings
from services.handoff.slack import SlackWebApiNotifier, SlackWebhookNotifier


async def test_each_crm_setting_builds_its_connector() -> None:
    async with httpx.AsyncClient() as client:
        assert build_crm(HandoffSettings(), client) is None
        sf = HandoffSettings(crm="salesforce", salesforce_client_id="id")
        assert isinstance(build_crm(sf, client), SalesforceCrm)
        hs = HandoffSettings(crm="hubspot", hubspot_token=SecretStr("pat"))
        assert isinstance(build_crm(hs, client), HubSpotCrm)
        wh = HandoffSettings(
            crm="webhook",
            webhook_url="http://127.0.0.1:1/h",
            webhook_secret=SecretStr("whsec_AA=="),
        )
        assert isinstance(build_crm(wh, client), WebhookCrm)
        for missing in ("salesforce", "hubspot", "webhook"):
            with pytest.raises(ConfigurationError, match="needs"):
                build_crm(HandoffSettings(crm=missing), client)


def test_notifier_choice() -> None:
    assert isinstance(build_notifier(HandoffSettings()), ConsoleNotifier)
    token = HandoffSettings(slack_bot_token=SecretStr("xoxb-1"))
    assert isinstance(build_notifier(token), SlackWebApiNotifier)
    hook = HandoffSettings(slack_webhook_url=SecretStr("http://127.0.0.1:1/services/x"))
    assert isinstance(build_notifier(hook), SlackWebhookNotifier)


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    settings = HandoffSettings(hubspot_token=SecretStr("pat-very-secret"))
    assert "pat-very-secret" not in repr(settings)
