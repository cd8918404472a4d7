"""A generic webhook signed with Standard Webhooks (webhook-id / -timestamp / -signature).

    POST {url}   body: {"type": "hotlead.handoff", "data": {...hand-off, owner...}}
    webhook-id:        the hand-off id (the receiver's idempotency key)
    webhook-timestamp: seconds since the epoch
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">

The secret is `whsec_` + base64, as Standard Webhooks libraries make it. The
receiver answers 2xx, optionally with {"record_id": "...", "url": "..."}.
"""

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from schemas.data import HandoffRequestedData
from services.handoff.crm.base import CrmRecord
from services.handoff.crm.http import fail, send

TARGET = "webhook"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    secret: str


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookCrm:
    name = "webhook"

    def __init__(
        self, config: WebhookConfig, client: httpx.AsyncClient, clock: Callable[[], float]
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock

    async def upsert_lead(self, handoff: HandoffRequestedData, owner_id: str | None) -> CrmRecord:
        payload: dict[str, Any] = {
            "type": "hotlead.handoff",
            "data": {**handoff.model_dump(mode="json"), "owner_id": owner_id},
        }
        body = orjson.dumps(payload)
        timestamp = int(self._clock())
        headers = {
            "content-type": "application/json",
            "webhook-id": handoff.handoff_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._config.secret, handoff.handoff_id, timestamp, body),
        }
        response = await send(
            self._client, TARGET, "POST", self._config.url, content=body, headers=headers
        )
        if not response.is_success:
            raise fail(TARGET, response)
        answer: dict[str, Any] = {}
        if response.content:
            try:
                parsed = response.json()
            except ValueError:
                parsed = {}
            answer = parsed if isinstance(parsed, dict) else {}
        record_id = str(answer.get("record_id") or handoff.lead_id)
        url = answer.get("url")
        return CrmRecord(record_id, created=False, url=str(url) if url else None)

    async def record_breakdown(
        self, handoff: HandoffRequestedData, record: CrmRecord, owner_id: str | None
    ) -> str:
        return f"in-webhook:{handoff.handoff_id}"  # the breakdown travelled in the upsert
