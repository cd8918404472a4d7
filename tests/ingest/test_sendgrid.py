import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from schemas.event_types import EventType
from services.common.errors import ConfigurationError
from services.ingest.errors import SignatureError
from services.ingest.sendgrid import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Ignored,
    Invalid,
    Mapped,
    load_public_key,
    map_event,
    verify_signature,
)

PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC_B64 = base64.b64encode(
    PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
NOW = 1_760_000_000
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)


def signed_headers(body: bytes, timestamp: int = NOW, key: Any = PRIVATE) -> dict[str, str]:
    signature = key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        TIMESTAMP_HEADER: str(timestamp),
    }


def test_a_signed_body_verifies() -> None:
    body = b'[{"event":"open"}]'
    verify_signature(
        load_public_key(PUBLIC_B64), signed_headers(body), body, now_s=NOW, tolerance_s=300
    )


def test_tampered_stale_or_foreign_signatures_are_refused() -> None:
    key = load_public_key(PUBLIC_B64)
    body = b'[{"event":"open"}]'
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(key, signed_headers(body), body + b" ", now_s=NOW, tolerance_s=300)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature(key, signed_headers(body, NOW - 600), body, now_s=NOW, tolerance_s=300)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(key, signed_headers(body, key=other), body, now_s=NOW, tolerance_s=300)
    with pytest.raises(SignatureError, match="missing"):
        verify_signature(key, {}, body, now_s=NOW, tolerance_s=300)
    bad = {**signed_headers(body), SIGNATURE_HEADER: "%%%"}
    with pytest.raises(SignatureError):
        verify_signature(key, bad, body, now_s=NOW, tolerance_s=300)


def test_a_bad_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        load_public_key("bm90IGEga2V5")


def sg(event: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": "ann@example.com",
        "timestamp": NOW,
        "event": event,
        "sg_event_id": f"sg-{event}",
        "sg_message_id": "msg-1.filter",
        "hotlead_lead_id": "lead-7",
        "hotlead_campaign_id": "spring",
        **extra,
    }


@pytest.mark.parametrize(
    ("item", "event_type", "data", "bot"),
    [
        (sg("processed"), EventType.EMAIL_SENT, {}, None),
        (sg("delivered"), EventType.EMAIL_DELIVERED, {}, None),
        (sg("open", sg_machine_open=False), EventType.EMAIL_OPENED, {}, None),
        (sg("open", sg_machine_open=True), EventType.EMAIL_OPENED, {}, "machine_open"),
        (
            sg("click", url="https://x.example/p", useragent="Mozilla/5.0 (X11) Firefox/130"),
            EventType.EMAIL_CLICKED,
            {"url": "https://x.example/p"},
            None,
        ),
        (
            sg("click", url="https://x.example/p", useragent="Proofpoint"),
            EventType.EMAIL_CLICKED,
            {"url": "https://x.example/p"},
            "link_scanner",
        ),
        (
            sg("bounce", type="bounce", reason="550 no such user"),
            EventType.EMAIL_BOUNCED,
            {"bounce": "hard", "reason": "550 no such user"},
            None,
        ),
        (sg("bounce", type="blocked"), EventType.EMAIL_BOUNCED, {"bounce": "soft"}, None),
        (sg("spamreport"), EventType.EMAIL_SPAM_REPORTED, {}, None),
        (sg("unsubscribe"), EventType.EMAIL_UNSUBSCRIBED, {"scope": "all"}, None),
        (
            sg("group_unsubscribe", asm_group_id=3),
            EventType.EMAIL_UNSUBSCRIBED,
            {"scope": "list"},
            None,
        ),
    ],
)
def test_sendgrid_events_map_to_hotlead_events(
    item: dict[str, Any], event_type: EventType, data: dict[str, Any], bot: str | None
) -> None:
    result = map_event(item, RECEIVED)
    assert isinstance(result, Mapped)
    event = result.event
    assert event.type == event_type
    assert event.id == item["sg_event_id"]
    assert event.subject == "lead-7"
    assert event.source == "/webhooks/sendgrid"
    assert event.time == datetime.fromtimestamp(NOW, tz=UTC)
    assert event.bot == bot
    dumped = orjson.loads(event.model_dump_json(exclude_none=True))
    assert dumped["data"] == {"email_id": "msg-1.filter", "campaign_id": "spring", **data}
    assert "ann@example.com" not in event.model_dump_json()


def test_deferred_and_dropped_are_ignored() -> None:
    assert map_event(sg("deferred"), RECEIVED) == Ignored("deferred")
    assert map_event(sg("dropped"), RECEIVED) == Ignored("dropped")


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({k: v for k, v in sg("open").items() if k != "hotlead_lead_id"}, "no hotlead_lead_id"),
        (sg("open", sg_event_id=None), "no sg_event_id"),
        (sg("open", timestamp="yesterday"), "no timestamp"),
        (sg("click"), "invalid SendGrid event"),  # a click without its url
        (sg("open", hotlead_lead_id="not a lead id"), "invalid SendGrid event"),
        (sg("teleported"), "unknown SendGrid event"),
        ("open", "not a JSON object"),
    ],
)
def test_invalid_events_say_why(item: Any, reason: str) -> None:
    result = map_event(item, RECEIVED)
    assert isinstance(result, Invalid)
    assert result.reason.startswith(reason)
