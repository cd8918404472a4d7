"""GET /o/{token}.gif and GET /c/{token} on an app with an in-memory publisher."""

import asyncio
from urllib.parse import quote

import httpx
import pytest

from schemas.topics import EVENTS
from services.common.publisher import MemoryPublisher
from services.ingest.routes.tracking import GIF
from services.ingest.tokens import Keyring, TokenClaims, TokenKind, mint
from tests.ingest.conftest import KEYRING

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)
TARGET = "https://allowed.com/pricing?utm=mail#plans"


def click_token(target: str = TARGET, lead: str = "lead-1", email: str = "em-1") -> str:
    return mint(TokenClaims(TokenKind.CLICK, lead, email, "cmp-1", target), KEYRING)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("token", ["garbage", "v1.t1.x.y", "a" * 5000, "%00", "..", "v1"])
async def test_the_pixel_is_always_the_gif(
    client: httpx.AsyncClient, memory: MemoryPublisher, token: str
) -> None:
    response = await client.get(f"/o/{quote(token)}.gif")
    assert response.status_code == 200
    assert response.content == GIF
    assert response.headers["content-type"] == "image/gif"
    assert "no-store" in response.headers["cache-control"]
    await settle()
    assert memory.published == []


async def test_a_valid_pixel_writes_email_opened(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    token = mint(TokenClaims(TokenKind.OPEN, "lead-5", "em-2", "cmp-3"), KEYRING)
    response = await client.get(f"/o/{token}.gif", headers={"User-Agent": CHROME})
    assert response.content == GIF
    await settle()
    [(topic, event)] = memory.published
    assert topic == f"unit.{EVENTS}"
    assert event.type.short == "email.opened"
    assert event.subject == "lead-5"
    assert event.bot is None
    assert event.model_dump()["data"] == {"email_id": "em-2", "campaign_id": "cmp-3"}


async def test_apple_mpp_open_is_flagged_not_dropped(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    token = mint(TokenClaims(TokenKind.OPEN, "lead-5"), KEYRING)
    await client.get(f"/o/{token}.gif", headers={"User-Agent": "Mozilla/5.0"})
    await settle()
    assert [event.bot for _, event in memory.published] == ["apple_mpp"]


async def test_a_valid_click_redirects_to_exactly_the_signed_target(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    response = await client.get(f"/c/{click_token()}", headers={"User-Agent": CHROME})
    assert response.status_code == 302
    assert response.headers["location"] == TARGET
    assert response.headers["referrer-policy"] == "no-referrer"
    await settle()
    [(_, event)] = memory.published
    assert event.type.short == "email.clicked"
    assert event.model_dump()["data"]["url"] == TARGET
    assert event.bot is None


async def test_head_and_scanner_clicks_still_redirect_and_are_flagged(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    head = await client.head(f"/c/{click_token()}", headers={"User-Agent": CHROME})
    scanner = await client.get(f"/c/{click_token()}", headers={"User-Agent": "Proofpoint"})
    assert head.status_code == scanner.status_code == 302
    assert head.headers["location"] == scanner.headers["location"] == TARGET
    await settle()
    assert sorted(event.bot or "" for _, event in memory.published) == [
        "head_request",
        "link_scanner",
    ]


async def test_every_link_of_an_email_at_once_is_a_click_burst(
    client: httpx.AsyncClient, memory: MemoryPublisher
) -> None:
    for path in ("a", "b", "c"):
        token = click_token(f"https://allowed.com/{path}")
        assert (await client.get(f"/c/{token}", headers={"User-Agent": CHROME})).status_code == 302
    await settle()
    bots = [event.bot for _, event in sorted(memory.published, key=lambda p: p[1].time)]
    assert bots.count("click_burst") == 2
    assert None in bots


OPEN_REDIRECTS = [
    "//evil.com",
    "/\\evil.com",
    "https://allowed.com@evil.com",
    "%2F%2Fevil.com",
    "https://allowed.com/\r\nLocation: https://evil.com",
    "javascript:alert(document.domain)",
]


def forge(target: str) -> str:
    """A token whose payload names `target`, signed correctly by someone who has the
    key but bypassed mint's checks (the worst case): verify must still refuse it."""
    import base64
    import hashlib
    import hmac

    import orjson

    payload = base64.urlsafe_b64encode(orjson.dumps(["c", "lead-1", "", "", target]))
    payload_text = payload.rstrip(b"=").decode()
    signed = f"v1.t1.{payload_text}"
    secret = KEYRING.keys["t1"]
    signature = hmac.new(secret, signed.encode(), hashlib.sha256).digest()[:16]
    return f"{signed}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
async def test_the_open_redirect_list_never_gets_a_3xx(
    client: httpx.AsyncClient, memory: MemoryPublisher, target: str
) -> None:
    candidates = [
        f"/c/{quote(target, safe='')}",
        f"/c/{target}",
        f"/c/{forge(target)}",
        f"/c/{click_token()}?next={quote(target, safe='')}",
    ]
    for path in candidates:
        try:
            response = await client.get(path)
        except httpx.InvalidURL:
            continue  # the client itself refuses to send CR/LF
        if "next=" in path:
            # the query string is not part of the token: still the signed target only
            assert response.headers["location"] == TARGET
            continue
        assert not 300 <= response.status_code < 400, path
        assert 400 <= response.status_code < 500
        assert "location" not in response.headers


async def test_a_changed_target_with_the_old_signature_never_redirects(
    client: httpx.AsyncClient,
) -> None:
    version, key_id, _, signature = click_token().split(".")
    evil_payload = click_token("https://evil.com/").split(".")[2]
    response = await client.get(f"/c/{version}.{key_id}.{evil_payload}.{signature}")
    assert response.status_code == 404
    assert "location" not in response.headers


async def test_tampered_truncated_and_unknown_key_tokens_never_redirect(
    client: httpx.AsyncClient,
) -> None:
    token = click_token()
    other_key = mint(
        TokenClaims(TokenKind.CLICK, "lead-1", target=TARGET),
        Keyring.parse("zz:someone-elses-secret-0000"),
    )
    for bad in (token[:-1], token[:30], token.replace("v1.", "v2.", 1), other_key, token + "A"):
        response = await client.get(f"/c/{bad}")
        assert response.status_code == 404, bad
        assert "location" not in response.headers


async def test_pixel_and_click_are_counted_and_timed(client: httpx.AsyncClient) -> None:
    await client.get("/o/anything.gif")
    await client.get("/c/not-a-token")
    await client.get(f"/c/{click_token()}")
    metrics = (await client.get("/metrics")).text
    for series in (
        'hotlead_ingest_requests_total{route="/o/{token}.gif",status="200"} 1.0',
        'hotlead_ingest_requests_total{route="/c/{token}",status="404"} 1.0',
        'hotlead_ingest_requests_total{route="/c/{token}",status="302"} 1.0',
        'hotlead_ingest_request_duration_seconds_count{route="/c/{token}"} 2.0',
    ):
        assert series in metrics


class RecordingPublisher:
    """Takes records as the real producer does (no decoding on the way)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, object]] = []

    async def publish_records(self, topic: str, records: list[object]) -> None:
        self.records.extend((topic, r) for r in records)

    async def publish(self, topic: str, event: object) -> None:
        raise AssertionError("the record path is used")


async def test_pixel_and_click_records_are_what_encode_event_writes() -> None:
    from schemas.codec import decode_event, encode_event
    from services.ingest.app import create_app
    from services.ingest.records import Record
    from tests.ingest.conftest import client_for, make_settings

    publisher = RecordingPublisher()
    app = create_app(make_settings(), publisher)  # type: ignore[arg-type]
    open_token = mint(TokenClaims(TokenKind.OPEN, "lead-7", "em-2"), KEYRING)
    async with client_for(app) as client:
        await client.get(f"/o/{open_token}.gif", headers={"User-Agent": CHROME})
        await client.get(f"/o/{open_token}.gif", headers={"User-Agent": "Mozilla/5.0"})
        await client.get(f"/c/{click_token()}", headers={"User-Agent": CHROME})
        for _ in range(50):
            if len(publisher.records) == 3:
                break
            await asyncio.sleep(0.02)
    records = [r for _, r in publisher.records]
    assert len(records) == 3
    for record in records:
        assert isinstance(record, Record)
        event = decode_event(record.value)
        assert encode_event(event) == record.value  # byte for byte the model's JSON
        assert Record.of(event) == record
    kinds = sorted((decode_event(r.value).type.short, r.bot or "-") for r in records)  # type: ignore[attr-defined]
    assert kinds == [
        ("email.clicked", "-"),
        ("email.opened", "-"),
        ("email.opened", "apple_mpp"),
    ]
    assert len({r.id for r in records}) == 3  # type: ignore[attr-defined]
