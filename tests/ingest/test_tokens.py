import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.errors import MintError, TokenError
from services.ingest.tokens import (
    Keyring,
    TokenClaims,
    TokenKind,
    check_target,
    mint,
    mint_click_url,
    mint_open_url,
    verify,
)

KEYS = Keyring.parse("k1:first-secret-0123456789,k2:second-secret-0123456789")
ROTATED = Keyring.parse("k2:second-secret-0123456789,k3:third-secret-0123456789", active="k3")
CLICK = TokenClaims(TokenKind.CLICK, "lead-42", "em-1", "cmp-9", "https://example.com/pricing?a=1")

identifiers = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:\-]{0,40}\Z")
paths = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_/?=&%.~", max_size=60)


@given(lead=identifiers, email=identifiers, campaign=identifiers, path=paths)
def test_click_tokens_round_trip(lead: str, email: str, campaign: str, path: str) -> None:
    claims = TokenClaims(TokenKind.CLICK, lead, email, campaign, f"https://site.example/{path}")
    assert verify(mint(claims, KEYS), KEYS, TokenKind.CLICK) == claims


@given(lead=identifiers)
def test_open_tokens_round_trip(lead: str) -> None:
    claims = TokenClaims(TokenKind.OPEN, lead)
    assert verify(mint(claims, KEYS), KEYS, TokenKind.OPEN) == claims


@given(position=st.integers(min_value=0, max_value=10_000), char=st.sampled_from("AbZ09-_."))
def test_any_changed_character_is_refused(position: int, char: str) -> None:
    token = mint(CLICK, KEYS)
    index = position % len(token)
    if token[index] == char:
        return
    tampered = token[:index] + char + token[index + 1 :]
    with pytest.raises(TokenError):
        verify(tampered, KEYS, TokenKind.CLICK)


def test_a_changed_target_with_the_old_signature_is_refused() -> None:
    version, key_id, _payload, signature = mint(CLICK, KEYS).split(".")
    other = mint(
        TokenClaims(TokenKind.CLICK, "lead-42", "em-1", "cmp-9", "https://evil.com/"), KEYS
    )
    forged = ".".join([version, key_id, other.split(".")[2], signature])
    with pytest.raises(TokenError, match="signature"):
        verify(forged, KEYS, TokenKind.CLICK)


@pytest.mark.parametrize("cut", [1, 5, 22, 40])
def test_truncated_tokens_are_refused(cut: int) -> None:
    token = mint(CLICK, KEYS)
    with pytest.raises(TokenError):
        verify(token[:-cut], KEYS, TokenKind.CLICK)


def test_keys_rotate_old_tokens_verify_until_their_key_is_dropped() -> None:
    old = mint(CLICK, KEYS)  # minted with k1
    assert old.split(".")[1] == "k1"
    with pytest.raises(TokenError, match="unknown token key"):
        verify(old, ROTATED, TokenKind.CLICK)
    middle = Keyring.parse("k1:first-secret-0123456789,k2:second-secret-0123456789", active="k2")
    assert verify(old, middle, TokenKind.CLICK) == CLICK
    new = mint(CLICK, middle)
    assert new.split(".")[1] == "k2"
    assert verify(new, ROTATED, TokenKind.CLICK) == CLICK


def test_same_key_id_with_another_secret_is_refused() -> None:
    token = mint(CLICK, KEYS)
    other = Keyring.parse("k1:a-different-secret-000000")
    with pytest.raises(TokenError, match="signature"):
        verify(token, other, TokenKind.CLICK)


def test_an_open_token_is_not_a_click_token() -> None:
    token = mint(TokenClaims(TokenKind.OPEN, "lead-1"), KEYS)
    with pytest.raises(TokenError, match="another kind"):
        verify(token, KEYS, TokenKind.CLICK)


def test_tokens_carry_no_email_address() -> None:
    with pytest.raises(MintError, match="never an email address"):
        mint(TokenClaims(TokenKind.OPEN, "ann@example.com"), KEYS)
    with pytest.raises(MintError, match="never an email address"):
        mint(TokenClaims(TokenKind.OPEN, "lead-1", email_id="ann@example.com"), KEYS)
    with pytest.raises(MintError):
        mint(TokenClaims(TokenKind.OPEN, "Ann Smith"), KEYS)
    payload = mint(CLICK, KEYS).split(".")[2]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert decoded == b'["c","lead-42","em-1","cmp-9","https://example.com/pricing?a=1"]'


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "/\\evil.com",
        "https://allowed.com@evil.com",
        "https://user:pw@evil.com/",
        "%2F%2Fevil.com",
        "https://ok.example/\r\nLocation: https://evil.com",
        "https://ok.example/%0d%0a\n",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.com/file",
        "https:///nohost",
        "https://exa mple.com/",
        "https://example.com\\@evil.com",
        "https://ex\u00e4mple.com/",
        "http://example.com:99999/",
        "",
    ],
)
def test_only_plain_http_targets_can_be_minted(target: str) -> None:
    with pytest.raises(MintError):
        check_target(target)
    with pytest.raises(MintError):
        mint(TokenClaims(TokenKind.CLICK, "lead-1", target=target), KEYS)


def test_url_helpers_build_pixel_and_click_urls() -> None:
    pixel = mint_open_url("https://t.example.com/", KEYS, "lead-1", campaign_id="c1")
    assert pixel.startswith("https://t.example.com/o/v1.k1.")
    assert pixel.endswith(".gif")
    token = pixel.removeprefix("https://t.example.com/o/").removesuffix(".gif")
    assert verify(token, KEYS, TokenKind.OPEN).campaign_id == "c1"
    click = mint_click_url("https://t.example.com", KEYS, "lead-1", "http://example.com/x")
    assert click.startswith("https://t.example.com/c/v1.k1.")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("k1", "<key id>:<secret>"),
        ("k1:short", "too short"),
        ("b@d:" + "x" * 20, "key id"),
    ],
)
def test_bad_keyrings_are_refused_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(MintError, match=message):
        Keyring.parse(spec)


def test_the_signature_is_hmac_sha256_of_the_signed_part() -> None:
    import hmac

    from services.ingest.tokens import _signature

    for secret in (b"k" * 16, b"a-longer-secret-" * 5, bytes(range(70))):
        signed = "v1.k1.eyJhIjoxfQ"
        expected = base64.urlsafe_b64encode(hmac.digest(secret, signed.encode(), "sha256")[:16])
        assert _signature(secret, signed) == expected.rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("payload", "claims"),
    [
        (b'["o","lead-1","em-1","",""]', TokenClaims(TokenKind.OPEN, "lead-1", "em-1")),
        (b'[ "o", "lead-1", "", "cmp", "" ]', TokenClaims(TokenKind.OPEN, "lead-1", None, "cmp")),
        (b'["o","lead-1\\n","","",""]', None),
        (b'["o","a@b.c","","",""]', None),
        (b'["o","lead-1","","","https://x.example/"]', TokenClaims(TokenKind.OPEN, "lead-1")),
        (b'["o","lead-1","",""]', None),
        (b'["o","lead-1",1,"",""]', None),
    ],
)
def test_open_payloads_not_written_by_mint_are_judged_by_the_full_checks(
    payload: bytes, claims: TokenClaims | None
) -> None:
    """The one-regex path covers only what mint writes; everything else gets the
    same answer from orjson and the field checks."""
    from services.ingest.tokens import _signature

    signed = f"v1.k1.{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}"
    token = f"{signed}.{_signature(KEYS.keys['k1'], signed)}"
    if claims is None:
        with pytest.raises(TokenError):
            verify(token, KEYS, TokenKind.OPEN)
    else:
        assert verify(token, KEYS, TokenKind.OPEN) == claims
