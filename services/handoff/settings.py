"""Settings of the hand-off service (HOTLEAD_* environment variables)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from services.common.kafka_settings import KafkaSettings


class HandoffSettings(KafkaSettings):
    """What `hotlead handoff` reads at start. With nothing set it runs on embedded
    defaults: one team, a console notifier, no CRM."""

    handoff_host: str = Field(default="127.0.0.1", description="Address of /metrics and probes.")
    handoff_port: int = Field(default=8002, description="Port of /metrics, /healthz, /readyz.")
    handoff_group_id: str = Field(
        default="hotlead-handoff", description="Consumer group of the hand-off service."
    )
    handoff_concurrency: int = Field(
        default=16, ge=1, description="Hand-offs delivered at the same time (different leads)."
    )
    assignment_file: Path | None = Field(
        default=None, description="YAML file with teams, reps and territories; none: one queue."
    )
    crm: Literal["none", "salesforce", "hubspot", "webhook"] = Field(
        default="none", description="Which CRM receives hand-offs; `none` calls no CRM."
    )
    salesforce_login_url: str = Field(
        default="https://login.salesforce.com",
        description="Salesforce OAuth host (your My Domain URL for client credentials).",
    )
    salesforce_client_id: str = Field(default="", description="Connected app consumer key.")
    salesforce_client_secret: SecretStr = Field(
        default=SecretStr(""), description="Connected app consumer secret."
    )
    salesforce_api_version: str = Field(default="62.0", description="REST API version.")
    salesforce_external_id_field: str = Field(
        default="Hotlead_Lead_Id__c",
        description="Lead field marked External ID, holding the lead id.",
    )
    hubspot_token: SecretStr = Field(default=SecretStr(""), description="Private app access token.")
    hubspot_base_url: str = Field(default="https://api.hubapi.com", description="HubSpot API host.")
    hubspot_api_version: str = Field(
        default="v3",
        description="CRM API version: `v3` (/crm/v3/objects/...) or a date such as `2026-03` "
        "(/crm/objects/2026-03/...).",
    )
    hubspot_id_property: str = Field(
        default="email", description="Unique contact property the upsert matches on."
    )
    hubspot_portal_id: str | None = Field(
        default=None, description="Portal (hub) id, for links to the contact in alerts."
    )
    webhook_url: str = Field(default="", description="Generic CRM webhook URL.")
    webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="Standard Webhooks secret (whsec_...)."
    )
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Bot token (xoxb-...) for chat.postMessage and threads."
    )
    slack_webhook_url: SecretStr | None = Field(
        default=None, description="Incoming webhook URL, when no bot token is set."
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL."
    )
    slack_default_channel: str = Field(
        default="#hot-leads", description="Channel of teams without their own channel."
    )
    slack_channel_rate_per_s: float = Field(
        default=1.0, gt=0, description="Messages per second per channel; more wait their turn."
    )
    slack_lookup_before_repost: bool = Field(
        default=True,
        description="Before posting again after an unknown outcome, look the alert up in "
        "conversations.history (needs channels:history and channel ids).",
    )
    http_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of each HTTP call.")
    retry_max_attempts: int = Field(
        default=6, ge=1, description="Attempts before a hand-off goes to the dead-letter topic."
    )
    retry_base_delay_s: float = Field(default=1.0, gt=0, description="First backoff step.")
    retry_max_delay_s: float = Field(default=60.0, gt=0, description="Longest backoff step.")
    followup_remind_after_s: float = Field(
        default=4 * 3600.0, gt=0, description="Remind the rep when no CRM status came by then."
    )
    followup_escalate_after_s: float = Field(
        default=4 * 3600.0, gt=0, description="Escalate to the team this long after the reminder."
    )
    followup_check_interval_s: float = Field(
        default=30.0, gt=0, description="How often due follow-ups are looked for."
    )
    progress_keep_days: float = Field(
        default=30.0,
        gt=0,
        description="Days a finished hand-off's progress record is kept; keep it longer than "
        "the hand-off topic's retention, or a replayed record could be delivered again.",
    )
    feedback_fetch_wait_ms: int = Field(
        default=500,
        ge=0,
        description="How long the broker may hold a fetch of the event log (CRM feedback) to "
        "fill it: the service reads every event to find the few status changes, and one fetch "
        "per few events cost more CPU than the hand-offs themselves.",
    )
    handoff_fetch_wait_ms: int = Field(
        default=0,
        ge=0,
        description="How long the broker may hold a fetch of the hand-off topic to gather "
        "more hand-offs (0: answer as soon as one is there). Each fetch costs the service "
        "about as much CPU as delivering a hand-off; a wait shares fetches between "
        "hand-offs at low rates, and adds up to this much to the alert's latency.",
    )
    handoff_log_level: str = Field(default="INFO", description="Log level of the service.")
