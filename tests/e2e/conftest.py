"""The whole pipeline as real processes: ingest, scorer and handoff started by
the same supervisor as `make run`, on this test's own topics, with fake Slack
and Salesforce servers."""

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.common.kafka_settings import KafkaSettings
from services.ingest.settings import DEV_API_KEYS
from services.stack.supervisor import ProcessSpec, Supervisor
from tests.handoff.fakes.salesforce import FakeSalesforce
from tests.handoff.fakes.slack import FakeSlack
from tests.handoff.harness import TWO_REPS, service_env

API_KEY = DEV_API_KEYS.split(":", 1)[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Pipeline:
    kafka: KafkaSettings
    ingest_url: str
    scorer_url: str
    slack: FakeSlack
    salesforce: FakeSalesforce
    client: httpx.AsyncClient

    async def post_events(self, *events: dict[str, object]) -> dict[str, object]:
        answer = await self.client.post(
            f"{self.ingest_url}/v1/events",
            json={"events": list(events)},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    async def put_lead(self, lead_id: str, **attributes: object) -> None:
        answer = await self.client.put(
            f"{self.ingest_url}/v1/leads/{lead_id}",
            json=attributes,
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert answer.status_code == 200, answer.text

    async def feedback(self, lead_id: str, status: str, **fields: object) -> None:
        answer = await self.client.post(
            f"{self.ingest_url}/v1/crm/feedback",
            json={"lead_id": lead_id, "status": status, **fields},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert answer.status_code == 200, answer.text

    async def lead(self, lead_id: str) -> dict[str, object]:
        answer = await self.client.get(f"{self.scorer_url}/leads/{lead_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    def alerts_for(self, lead_id: str) -> list[str]:
        return [
            post.handoff_id or "?"
            for post in self.slack.alerts()
            if post.handoff_id and post.handoff_id.startswith(f"ho-{lead_id}-")
        ]


async def wait_for(check: object, within: float = 45.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check() if callable(check) else check  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def pipeline(
    kafka_settings: KafkaSettings, unique: str, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    slack, salesforce = FakeSlack(), FakeSalesforce()
    await slack.start()
    await salesforce.start()
    assignment = tmp_path / "assignment.yaml"
    assignment.write_text(TWO_REPS)
    ingest_port, scorer_port, handoff_port = free_port(), free_port(), free_port()
    common = {
        "HOTLEAD_KAFKA_BOOTSTRAP": kafka_settings.kafka_bootstrap,
        "HOTLEAD_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "HOTLEAD_PARTITIONS": str(kafka_settings.partitions),
        "HOTLEAD_EVENTS_PARTITIONS": str(kafka_settings.events_partitions),
    }
    handoff_env = service_env(kafka_settings, unique, assignment, salesforce, slack)
    handoff_env["HOTLEAD_HANDOFF_PORT"] = str(handoff_port)
    hotlead = [sys.executable, "-m", "services.cli"]
    specs = [
        ProcessSpec(
            "ingest", [*hotlead, "ingest", "--port", str(ingest_port)],
            ready_url=f"http://127.0.0.1:{ingest_port}/readyz",
            env={**common, "HOTLEAD_INGEST_LOG_LEVEL": "WARNING"},
        ),
        ProcessSpec(
            "scorer", [*hotlead, "scorer"],
            ready_url=f"http://127.0.0.1:{scorer_port}/metrics",
            env={
                **common,
                "HOTLEAD_SCORER_APP_ID": f"scorer-{unique}",
                "HOTLEAD_SCORER_WEB_PORT": str(scorer_port),
                "HOTLEAD_SCORER_DATADIR": str(tmp_path / "scorer"),
                "HOTLEAD_SCORER_LOG_LEVEL": "WARNING",
            },
        ),
        ProcessSpec(
            "handoff", [*hotlead, "handoff"],
            ready_url=f"http://127.0.0.1:{handoff_port}/readyz",
            env={**handoff_env, "HOTLEAD_HANDOFF_LOG_LEVEL": "WARNING"},
        ),
    ]  # fmt: skip
    supervisor = Supervisor(specs, ready_timeout_s=120, grace_s=20)
    running = asyncio.ensure_future(supervisor.run())
    ready = asyncio.ensure_future(supervisor.ready.wait())
    await asyncio.wait([running, ready], return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        ready.cancel()
        pytest.fail(f"the pipeline did not start (exit {running.result()})")
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            yield Pipeline(
                kafka_settings,
                f"http://127.0.0.1:{ingest_port}",
                f"http://127.0.0.1:{scorer_port}",
                slack,
                salesforce,
                client,
            )
    finally:
        supervisor.request_stop()
        await asyncio.wait_for(running, 90)
        await slack.stop()
        await salesforce.stop()
