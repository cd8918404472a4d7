"""Signed tokens for pixel and click URLs (pure: no I/O, no clock).

Format (ASCII, URL-safe, no padding):

    v1.<key id>.<payload>.<signature>

- `payload` is base64url of the compact JSON array
  `[kind, lead_id, email_id, campaign_id, target]` where kind is `o` (open pixel)
  or `c` (click), unknown ids are `""` and `target` is `""` for opens.
- `signature` is base64url of the first 16 bytes (128 bits) of
  HMAC-SHA256(secret of <key id>, "v1.<key id>.<payload>").
- The key id selects the secret, so keys rotate: mint with the new key while
  the old one still verifies, then drop the old one.

A token carries ids only, never an email address or a name: minting refuses
ids that are not plain identifiers. Only absolute http(s) URLs without
credentials, whitespace, control characters or backslashes can be click
targets, and `verify` checks the target again, so even a token signed by a
careless caller never turns into an open redirect.
"""

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple
from urllib.parse import urlsplit

import orjson

from services.ingest.errors import MintError, TokenError

VERSION = "v1"
SIGNATURE_BYTES = 16
MAX_TOKEN_CHARS = 6000
MAX_TARGET_CHARS = 4096
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
# Matched in full (`$` would also match before a trailing newline): the same
# ids as schemas.envelope.LeadId accepts.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_ID = rb"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}"  # IDENTIFIER; no JSON escapes possible
_PLAIN_OPEN = re.compile(rb'\["o","(%s)","(%s|)","(%s|)",""\]' % (_ID, _ID, _ID))
"""An open token's payload as mint writes it, ids already matching IDENTIFIER;
anything else goes through orjson and the checks one by one."""
_FORBIDDEN_IN_TARGET = re.compile(r"[\x00-\x20\x7f\\]")


class TokenKind(StrEnum):
    OPEN = "o"
    CLICK = "c"


class TokenClaims(NamedTuple):
    """What a token says: who, which email/campaign, and (clicks) where to.
    (Immutable; a tuple because verify builds one per pixel and click.)"""

    kind: TokenKind
    lead_id: str
    email_id: str | None = None
    campaign_id: str | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Keyring:
    """Signing secrets by key id; `active` is the one new tokens are minted with."""

    keys: Mapping[str, bytes]
    active: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise MintError("the token keyring is empty: configure at least one key")
        for key_id, secret in self.keys.items():
            if not KEY_ID.match(key_id):
                raise MintError(f"token key id {key_id!r} must be 1-16 of A-Z a-z 0-9 _ -")
            if len(secret) < 16:
                raise MintError(f"token key {key_id!r} is too short: use at least 16 bytes")
        if self.active not in self.keys:
            raise MintError(f"the active token key {self.active!r} is not in the keyring")

    @classmethod
    def parse(cls, spec: str, active: str | None = None) -> "Keyring":
        """Read `kid1:secret1,kid2:secret2`; the active key is `active` or the first one."""
        keys: dict[str, bytes] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            key_id, sep, secret = part.partition(":")
            if not sep or not secret:
                raise MintError(f"token key {key_id!r}: write it as <key id>:<secret>")
            keys[key_id.strip()] = secret.strip().encode()
        first = next(iter(keys), "")
        return cls(keys=keys, active=active or first)


def check_target(url: str) -> str:
    """`url` if it may be a click target, else MintError saying why."""
    if len(url) > MAX_TARGET_CHARS:
        raise MintError(f"the target URL is longer than {MAX_TARGET_CHARS} characters")
    if not url.isascii():
        raise MintError("the target URL must be ASCII (percent-encode other characters)")
    if _FORBIDDEN_IN_TARGET.search(url):
        raise MintError("the target URL contains whitespace, control characters or a backslash")
    lowered = url.lower()
    if not (lowered.startswith("http://") or lowered.startswith("https://")):
        raise MintError("the target URL must be absolute and start with http:// or https://")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MintError(f"the target URL cannot be parsed: {exc}") from None
    if "@" in parts.netloc:
        raise MintError("the target URL must not carry credentials (user@host)")
    if not parts.hostname:
        raise MintError("the target URL has no host")
    if port == 0:
        raise MintError("the target URL has an invalid port")
    return url


def _check_id(name: str, value: str | None, *, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise MintError(f"{name} is required")
        return ""
    if not IDENTIFIER.fullmatch(value):
        raise MintError(
            f"{name} must be an identifier (1-128 of letters, digits, . _ : -), "
            "never an email address or a name"
        )
    return value


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _unb64(text: str) -> bytes:
    """base64url without padding, decoded (what base64.urlsafe_b64decode does, in one call)."""
    return binascii.a2b_base64(
        (text + "=" * (-len(text) % 4)).encode("ascii").translate(_FROM_URLSAFE)
    )


def _signature(secret: bytes, signed: str) -> str:
    inner, outer = _keyed_sha256(secret)
    inner = inner.copy()
    inner.update(signed.encode("ascii"))
    outer = outer.copy()
    outer.update(inner.digest())
    return _b64(outer.digest()[:SIGNATURE_BYTES])


@functools.lru_cache(maxsize=64)
def _keyed_sha256(secret: bytes) -> tuple["hashlib._Hash", "hashlib._Hash"]:
    """HMAC-SHA256 (RFC 2104) with the key already absorbed into the inner and
    outer hashes: copying them costs a third of keying `hmac` anew for every
    token (verify runs once per pixel and click). Same bytes as `hmac.digest`."""
    block = 64  # SHA-256's block size
    key = hashlib.sha256(secret).digest() if len(secret) > block else secret
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def mint(claims: TokenClaims, keyring: Keyring) -> str:
    """The signed token for `claims`, with the keyring's active key."""
    lead_id = _check_id("lead_id", claims.lead_id, required=True)
    email_id = _check_id("email_id", claims.email_id)
    campaign_id = _check_id("campaign_id", claims.campaign_id)
    if claims.kind is TokenKind.CLICK:
        if not claims.target:
            raise MintError("a click token needs a target URL")
        target = check_target(claims.target)
    elif claims.target:
        raise MintError("an open token has no target URL")
    else:
        target = ""
    payload = _b64(orjson.dumps([claims.kind.value, lead_id, email_id, campaign_id, target]))
    signed = f"{VERSION}.{keyring.active}.{payload}"
    return f"{signed}.{_signature(keyring.keys[keyring.active], signed)}"


def verify(token: str, keyring: Keyring, kind: TokenKind) -> TokenClaims:
    """The claims of a genuine token of `kind`; TokenError for anything else."""
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise TokenError("malformed token")
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise TokenError("malformed token")
    _, key_id, payload, signature = parts
    secret = keyring.keys.get(key_id)
    if secret is None:
        raise TokenError("unknown token key")
    expected = _signature(secret, token[: len(token) - len(signature) - 1])
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        raise TokenError("bad token signature")
    try:
        raw = _unb64(payload)
    except (binascii.Error, ValueError):
        raise TokenError("malformed token payload") from None
    if kind is TokenKind.OPEN:
        plain = _PLAIN_OPEN.fullmatch(raw)
        if plain is not None:  # what mint writes for an open: the checks in one match
            lead_id, email_id, campaign_id = plain.groups()
            return TokenClaims(kind, lead_id.decode(), email_id.decode() or None,
                               campaign_id.decode() or None)  # fmt: skip
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TokenError("malformed token payload") from None
    if type(fields) is not list or len(fields) != 5:
        raise TokenError("malformed token payload")
    token_kind, lead_id, email_id, campaign_id, target = fields
    if not (
        type(token_kind) is str
        and type(lead_id) is str
        and type(email_id) is str
        and type(campaign_id) is str
        and type(target) is str
    ):
        raise TokenError("malformed token payload")
    if token_kind != kind:
        raise TokenError("token of another kind")
    try:
        claims = TokenClaims(
            kind=kind,
            lead_id=_check_id("lead_id", lead_id, required=True),
            email_id=_check_id("email_id", email_id) or None,
            campaign_id=_check_id("campaign_id", campaign_id) or None,
            target=check_target(target) if kind is TokenKind.CLICK else None,
        )
    except MintError as exc:
        raise TokenError(f"token claims refused: {exc}") from None
    return claims


def open_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/o/{token}.gif"


def click_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/c/{token}"


def mint_open_url(
    base_url: str,
    keyring: Keyring,
    lead_id: str,
    *,
    email_id: str | None = None,
    campaign_id: str | None = None,
) -> str:
    """The pixel URL to put in an email for `lead_id`."""
    claims = TokenClaims(TokenKind.OPEN, lead_id, email_id, campaign_id)
    return open_url(base_url, mint(claims, keyring))


def mint_click_url(
    base_url: str,
    keyring: Keyring,
    lead_id: str,
    target: str,
    *,
    email_id: str | None = None,
    campaign_id: str | None = None,
) -> str:
    """The tracked link to put in an email in place of `target`."""
    claims = TokenClaims(TokenKind.CLICK, lead_id, email_id, campaign_id, target)
    return click_url(base_url, mint(claims, keyring))
