"""X-Forwarded-For only from trusted proxies; rate limits per client on public routes."""

import asyncio

import orjson

from schemas.topics import EVENTS
from services.common.publisher import MemoryPublisher
from services.ingest.app import create_app
from services.ingest.routes.tracking import GIF
from services.ingest.tokens import TokenClaims, TokenKind, mint
from tests.ingest.conftest import KEYRING, ORIGIN, client_for, make_settings

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
APPLE = "17.58.1.2"


async def opened_bots(peer: str, forwarded_for: str, trusted: str) -> list[str | None]:
    memory = MemoryPublisher()
    app = create_app(make_settings(trusted_proxies=trusted), memory)
    token = mint(TokenClaims(TokenKind.OPEN, "lead-1"), KEYRING)
    async with client_for(app, peer=peer) as client:
        headers = {"User-Agent": CHROME, "X-Forwarded-For": forwarded_for}
        assert (await client.get(f"/o/{token}.gif", headers=headers)).content == GIF
        await asyncio.sleep(0.1)
    return [event.bot for _, event in memory.published]


async def test_forwarded_for_from_a_trusted_proxy_names_the_client() -> None:
    assert await opened_bots("10.1.2.3", APPLE, trusted="10.0.0.0/8") == ["apple_mpp"]


async def test_forwarded_for_from_anyone_else_is_ignored() -> None:
    assert await opened_bots("198.51.100.9", APPLE, trusted="10.0.0.0/8") == [None]
    assert await opened_bots("10.1.2.3", APPLE, trusted="") == [None]


async def test_public_routes_are_rate_limited_per_client() -> None:
    memory = MemoryPublisher()
    app = create_app(make_settings(client_rate_per_s=0.001, client_burst=2), memory)
    view = {"url": "http://127.0.0.1/p", "anonymous_id": "anon-1"}
    async with (
        client_for(app, peer="198.51.100.1") as first,
        client_for(app, peer="198.51.100.2") as second,
    ):
        codes = [
            (await first.post("/b", content=orjson.dumps(view), headers={"Origin": ORIGIN}))
            for _ in range(3)
        ]
        assert [r.status_code for r in codes] == [204, 204, 429]
        assert int(codes[2].headers["retry-after"]) >= 1
        other = await second.post("/b", content=orjson.dumps(view), headers={"Origin": ORIGIN})
        assert other.status_code == 204  # another client has its own budget
        # The pixel still answers over the limit, but its event is counted, not written.
        token = mint(TokenClaims(TokenKind.OPEN, "lead-1"), KEYRING)
        pixel = await first.get(f"/o/{token}.gif")
        assert pixel.content == GIF
        metrics = (await first.get("/metrics")).text
    await asyncio.sleep(0.1)
    assert len(memory.on(f"unit.{EVENTS}")) == 3
    assert (
        'hotlead_ingest_events_unwritten_total{reason="rate_limited",route="/o/{token}.gif"} 1.0'
        in metrics
    )
