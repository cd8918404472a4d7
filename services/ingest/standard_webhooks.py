"""Standard Webhooks signature verification (pure; the clock is passed in).

A sender signs `<webhook-id>.<webhook-timestamp>.<body>` with HMAC-SHA256 and
sends `webhook-signature: v1,<base64> [v1,<base64> ...]` (several signatures
while keys rotate). Secrets are written `whsec_<base64>`; the HMAC key is the
decoded bytes. A timestamp further than the tolerance from now is refused, so
a captured request cannot be replayed later.
"""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from services.common.errors import ConfigurationError
from services.ingest.errors import SignatureError

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret."""
    try:
        key = base64.b64decode(secret.strip().removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "a Standard Webhooks secret must be whsec_ followed by base64"
        ) from None
    if len(key) < 16:
        raise ConfigurationError("a Standard Webhooks secret must be at least 16 bytes")
    return key


def sign(key: bytes, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """One `v1,<base64>` signature (what a sender puts in webhook-signature)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: float,
    tolerance_s: float = 300,
) -> str:
    """The webhook id when one offered signature matches one of `keys`; else SignatureError."""
    webhook_id = headers.get(ID_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    signatures = headers.get(SIGNATURE_HEADER)
    if not webhook_id or not timestamp or not signatures:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    if abs(now_s - sent_at) > tolerance_s:
        raise SignatureError("webhook-timestamp is outside the tolerance")
    offered = []
    for part in signatures.split(" "):
        version, _, value = part.partition(",")
        if version == "v1" and value:
            offered.append(value.encode())
    for key in keys:
        expected = sign(key, webhook_id, timestamp, body).removeprefix("v1,").encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return webhook_id
    raise SignatureError("no webhook-signature matches")
