"""The bench's stand-in for Slack, as the benches use it: its own process, queried
over HTTP for when each alert arrived."""

import time

import httpx

from benchmarks.receiver import Receiver, alert_ids
from benchmarks.report import free_port


async def test_arrivals_are_stamped_once_per_id_and_duplicates_counted() -> None:
    receiver = Receiver("hotlead", port=free_port())
    await receiver.start()
    try:
        before = time.time_ns()
        async with httpx.AsyncClient() as client:
            for text in ["alert ho-prabc123x0-1 and ho-prabc123x20-1", "again ho-prabc123x0-1"]:
                answer = await client.post(f"{receiver.url}/webhook", content=text.encode())
                assert answer.status_code == 200
        after = time.time_ns()
        for _ in range(3):  # one client serves every query
            arrivals, duplicates = await receiver.arrivals()
        assert sorted(arrivals) == ["prabc123x0", "prabc123x20"]
        assert all(before <= at <= after for at in arrivals.values())
        assert duplicates == 1
    finally:
        await receiver.stop()


def test_alert_ids_are_the_probes_of_the_hand_offs() -> None:
    body = b'{"text": "ho-prab12cdx7-1 ho-prab12cdx7-1 ho-enab12cdx3-1 ho-prab12cdx12-1"}'
    assert alert_ids(body) == ["prab12cdx12", "prab12cdx7"]
