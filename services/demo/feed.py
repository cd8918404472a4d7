"""Play the personas against a running ingest, over its public HTTP API."""

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import orjson

from services.common.logging import get_logger
from services.demo.personas import Step, StepKind, cycle_steps
from services.ingest.tokens import Keyring, mint_click_url, mint_open_url

log = get_logger(__name__)


@dataclass
class FeedStats:
    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class FeedTarget:
    base_url: str
    api_key: str
    keyring: Keyring
    origin: str = "http://demo.localhost"


class DemoFeed:
    def __init__(
        self,
        client: httpx.AsyncClient,
        target: FeedTarget,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        run_id: str | None = None,
    ) -> None:
        self.client = client
        self.target = target
        self.clock = clock
        self.stats = FeedStats()
        self.run_id = run_id or secrets.token_hex(2)

    async def run(self, *, rate: float, cycles: int = 0) -> FeedStats:
        """Send `rate` bursts per second; `cycles` 0 runs until cancelled."""
        cycle = 0
        while cycles == 0 or cycle < cycles:
            cycle += 1
            for burst in cycle_steps(cycle, self.clock(), self.run_id):
                started = time.monotonic()
                await asyncio.gather(*(self.send(step) for step in burst))
                await asyncio.sleep(max(0.0, 1.0 / rate - (time.monotonic() - started)))
            log.info("demo_cycle_done", cycle=cycle, sent=dict(self.stats.sent))
        return self.stats

    async def send(self, step: Step) -> None:
        try:
            response = await self._request(step)
        except httpx.HTTPError as exc:
            self.stats.failed[step.kind] += 1
            log.warning("demo_step_failed", persona=step.persona, step=step.kind, error=str(exc))
            return
        if response.status_code >= 400:
            self.stats.failed[step.kind] += 1
            log.warning(
                "demo_step_refused",
                persona=step.persona,
                step=step.kind,
                status=response.status_code,
                answer=response.text[:300],
            )
        else:
            self.stats.sent[step.kind] += 1

    async def _request(self, step: Step) -> httpx.Response:
        target = self.target
        browser = {"User-Agent": step.user_agent}
        api = {"Authorization": f"Bearer {target.api_key}"}
        lead = step.lead_id or ""
        match step.kind:
            case StepKind.LEAD:
                return await self.client.put(
                    f"{target.base_url}/v1/leads/{lead}", json=step.body, headers=api
                )
            case StepKind.EVENT:
                return await self.client.post(
                    f"{target.base_url}/v1/events", json={"events": [step.body]}, headers=api
                )
            case StepKind.BEACON:
                # as navigator.sendBeacon sends it: text/plain, no CORS preflight
                headers = {**browser, "Origin": target.origin, "Content-Type": "text/plain"}
                body = orjson.dumps(step.body)
                return await self.client.post(f"{target.base_url}/b", content=body, headers=headers)
            case StepKind.OPEN:
                url = mint_open_url(
                    target.base_url,
                    target.keyring,
                    lead,
                    email_id=step.email_id,
                    campaign_id=step.campaign_id,
                )
                return await self.client.get(url, headers=browser)
            case StepKind.CLICK:
                url = mint_click_url(
                    target.base_url,
                    target.keyring,
                    lead,
                    step.target or "",
                    email_id=step.email_id,
                    campaign_id=step.campaign_id,
                )
                method = "HEAD" if step.head else "GET"
                return await self.client.request(method, url, headers=browser)
