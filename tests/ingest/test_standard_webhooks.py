import base64

import pytest

from services.common.errors import ConfigurationError
from services.ingest.errors import SignatureError
from services.ingest.standard_webhooks import decode_secret, sign, verify

OLD = decode_secret("whsec_" + base64.b64encode(b"old-secret-0123456789").decode())
NEW = decode_secret("whsec_" + base64.b64encode(b"new-secret-0123456789").decode())
BODY = b'{"type":"form.submitted","lead_id":"lead-1"}'
NOW = 1_760_000_000


def headers(signature: str, webhook_id: str = "msg_1", timestamp: int = NOW) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_a_valid_signature_returns_the_webhook_id() -> None:
    signature = sign(NEW, "msg_1", NOW, BODY)
    assert verify([NEW], headers(signature), BODY, now_s=NOW + 10) == "msg_1"


def test_any_of_several_signatures_and_keys_may_match() -> None:
    both = f"v1,bm90LWl0 {sign(OLD, 'msg_1', NOW, BODY)} v2,ignored"
    assert verify([NEW, OLD], headers(both), BODY, now_s=NOW) == "msg_1"


@pytest.mark.parametrize(
    ("changed_headers", "body", "message"),
    [
        (headers(sign(NEW, "msg_1", NOW, BODY)), BODY + b" ", "no webhook-signature matches"),
        (headers(sign(NEW, "msg_1", NOW, BODY), webhook_id="msg_2"), BODY, "matches"),
        (headers(sign(OLD, "msg_1", NOW, BODY)), BODY, "matches"),
        (headers(sign(NEW, "msg_1", NOW - 301, BODY), timestamp=NOW - 301), BODY, "tolerance"),
        (headers(sign(NEW, "msg_1", NOW + 301, BODY), timestamp=NOW + 301), BODY, "tolerance"),
        ({"webhook-id": "msg_1", "webhook-timestamp": str(NOW)}, BODY, "missing"),
        ({**headers("v1,x"), "webhook-timestamp": "soon"}, BODY, "not a number"),
        (headers("v1,"), BODY, "matches"),
    ],
)
def test_bad_or_stale_signatures_are_refused(
    changed_headers: dict[str, str], body: bytes, message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        verify([NEW], changed_headers, body, now_s=NOW)


@pytest.mark.parametrize(
    "secret", ["whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()]
)
def test_bad_secrets_are_a_configuration_error(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        decode_secret(secret)
