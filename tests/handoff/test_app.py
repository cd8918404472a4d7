import httpx

from services.handoff.app import Health, create_app
from services.handoff.metrics import HandoffMetrics


async def test_probes_and_metrics() -> None:
    metrics, health = HandoffMetrics(), Health()
    metrics.handoffs.labels("delivered").inc(3)
    metrics.trigger_to_slack_seconds.observe(1.5)
    transport = httpx.ASGITransport(app=create_app(metrics, health))
    async with httpx.AsyncClient(transport=transport, base_url="http://handoff") as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        health.ready = True
        assert (await client.get("/readyz")).status_code == 200
        text = (await client.get("/metrics")).text
    assert 'hotlead_handoff_handoffs_total{result="delivered"} 3.0' in text
    assert "hotlead_handoff_trigger_to_slack_seconds_count 1.0" in text
