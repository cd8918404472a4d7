"""SendGrid's Event Webhook: signature verification and event mapping (pure).

SendGrid signs each POST with ECDSA (P-256, SHA-256) over the bytes of the
`X-Twilio-Email-Event-Webhook-Timestamp` header followed by the raw body; the
base64 DER signature is in `X-Twilio-Email-Event-Webhook-Signature`, and the
verification key is the base64 DER public key shown in SendGrid's settings.

The body is a JSON array of events. Which lead an event is about comes from
the custom args the sending side set on the message (SendGrid copies them
onto every event): `hotlead_lead_id` (required), `hotlead_email_id` and
`hotlead_campaign_id` (optional; the email id falls back to `sg_message_id`).
`sg_event_id` becomes the event id, so SendGrid's retries are idempotent.
"""

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import ValidationError

from schemas.codec import describe_errors
from schemas.envelope import CloudEvent
from schemas.event_types import EventType
from schemas.events import event_model
from services.common.errors import ConfigurationError
from services.ingest.bots import BotReason, RequestFacts, classify_click
from services.ingest.errors import SignatureError

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
SOURCE = "/webhooks/sendgrid"
LEAD_ARG = "hotlead_lead_id"
EMAIL_ARG = "hotlead_email_id"
CAMPAIGN_ARG = "hotlead_campaign_id"

EVENT_TYPES: dict[str, EventType] = {
    "processed": EventType.EMAIL_SENT,
    "delivered": EventType.EMAIL_DELIVERED,
    "open": EventType.EMAIL_OPENED,
    "click": EventType.EMAIL_CLICKED,
    "bounce": EventType.EMAIL_BOUNCED,
    "spamreport": EventType.EMAIL_SPAM_REPORTED,
    "unsubscribe": EventType.EMAIL_UNSUBSCRIBED,
    "group_unsubscribe": EventType.EMAIL_UNSUBSCRIBED,
}
IGNORED = frozenset({"deferred", "dropped", "group_resubscribe"})
"""Events with no meaning for lead scoring: acknowledged and counted, not written."""


def load_public_key(base64_der: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 of DER SubjectPublicKeyInfo)."""
    try:
        key = load_der_public_key(base64.b64decode(base64_der.strip(), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ConfigurationError(f"the SendGrid verification key cannot be read: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigurationError("the SendGrid verification key is not an ECDSA key")
    return key


def verify_signature(
    key: ec.EllipticCurvePublicKey,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: float,
    tolerance_s: float,
) -> None:
    """Raise SignatureError unless `body` is signed by `key` within the tolerance."""
    signature = headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise SignatureError("missing SendGrid signature or timestamp header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError("the SendGrid timestamp is not a number") from None
    if abs(now_s - sent_at) > tolerance_s:
        raise SignatureError("the SendGrid timestamp is outside the tolerance")
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("the SendGrid signature does not match") from None


@dataclass(frozen=True, slots=True)
class Mapped:
    event: CloudEvent


@dataclass(frozen=True, slots=True)
class Ignored:
    kind: str


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str
    errors: list[str]
    lead_id: str | None


MappingResult = Mapped | Ignored | Invalid


def _ids(item: Mapping[str, Any]) -> dict[str, Any]:
    email_id = item.get(EMAIL_ARG) or item.get("sg_message_id")
    campaign_id = item.get(CAMPAIGN_ARG) or item.get("marketing_campaign_id")
    ids = {"email_id": email_id, "campaign_id": campaign_id}
    return {k: str(v) for k, v in ids.items() if v not in (None, "")}


def _data(kind: str, item: Mapping[str, Any]) -> dict[str, Any]:
    data = _ids(item)
    if kind == "click":
        data["url"] = item.get("url")
    elif kind == "bounce":
        data["bounce"] = "soft" if item.get("type") == "blocked" else "hard"
        if item.get("reason"):
            data["reason"] = str(item["reason"])[:1024]
    elif kind in ("unsubscribe", "group_unsubscribe"):
        data["scope"] = "list" if kind == "group_unsubscribe" else "all"
    return data


def _bot(kind: str, item: Mapping[str, Any]) -> str | None:
    if kind == "open" and item.get("sg_machine_open") is True:
        return BotReason.MACHINE_OPEN.value
    if kind == "click":
        facts = RequestFacts(user_agent=item.get("useragent") or None)
        reason = classify_click(facts)
        return reason.value if reason else None
    return None


def map_event(item: Any, received_at: datetime) -> MappingResult:
    """One SendGrid event as a hotlead event, or why not."""
    if not isinstance(item, dict):
        return Invalid("not a JSON object", ["(event): expected an object"], None)
    kind = item.get("event")
    lead_id = item.get(LEAD_ARG)
    lead = lead_id if isinstance(lead_id, str) else None
    if not isinstance(kind, str):
        return Invalid("no event kind", ["event: missing"], lead)
    if kind in IGNORED:
        return Ignored(kind)
    event_type = EVENT_TYPES.get(kind)
    if event_type is None:
        return Invalid(f"unknown SendGrid event {kind[:64]!r}", ["event: unknown"], lead)
    if lead is None:
        return Invalid(
            f"no {LEAD_ARG} custom arg", [f"{LEAD_ARG}: set it on the message's custom args"], None
        )
    event_id = item.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id:
        return Invalid("no sg_event_id", ["sg_event_id: missing"], lead)
    timestamp = item.get("timestamp")
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        return Invalid("no timestamp", ["timestamp: expected unix seconds"], lead)
    try:
        occurred = datetime.fromtimestamp(timestamp, tz=UTC)
        event = event_model(event_type).model_validate(
            {
                "id": event_id,
                "source": SOURCE,
                "type": event_type,
                "subject": lead,
                "time": occurred,
                "receivedat": received_at,
                "bot": _bot(kind, item),
                "data": _data(kind, item),
            }
        )
    except (ValueError, OverflowError, OSError) as exc:
        errors = describe_errors(exc) if isinstance(exc, ValidationError) else [str(exc)]
        return Invalid("invalid SendGrid event", errors, lead)
    return Mapped(event)
